// HandlerStatus.WriteMore: a message far larger than the output buffer leaves in chunks, byte-exact, each chunk
// asked for only once the previous one has been sent; input that arrives meanwhile is kept, then offered.
using System.Buffers;
using System.Net.Sockets;

namespace EdgeMta.Transport.Tests;

public sealed class OutboundWriteMoreTests
{
    private const int MessageBytes = 5 * 1024 * 1024;
    private const int OutputBytes = 256 * 1024;

    [Fact]
    public async Task WriteMoreStreamsFiveMebibytesThroughAQuarterMebibyteBufferByteExact()
    {
        byte[] message = new byte[MessageBytes];
        new Random(20261206).NextBytes(message);
        await using var transport = new OutboundTransport(o => o.MaxOutputBytes = OutputBytes);
        using PeerListener peer = PeerListener.Tcp();
        var handler = new StreamingClient(message);

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        // "early" comes with the go-ahead, in one segment: the handler consumes only the first line, and must
        // not be offered the second until the whole message is out.
        await next.SendAsync("354 go ahead\r\nearly\r\n");
        byte[] received = await ReadExactlyAsync(next.Socket, MessageBytes);

        Assert.True(received.AsSpan().SequenceEqual(message), "the streamed bytes differ from the message");
        Assert.True(await Bounded.UntilAsync(() => handler.Lines.Contains("early")));
        Assert.Equal(0, Volatile.Read(ref handler.OfferedWhileStreaming));
        // One chunk from OnReceived, every other from OnWritable: 26 chunks, so 25 calls (at least 20 = 5 MiB / 256 KiB).
        Assert.Equal((MessageBytes + handler.ChunkBytes - 1) / handler.ChunkBytes - 1, Volatile.Read(ref handler.WritableCalls));
        Assert.Equal(["opened", "line 354 go ahead", "line early"], handler.Events);
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        byte[] buffer = new byte[count];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        int read = 0;
        while (read < count)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                throw new IOException($"The stream ended after {read} of {count} bytes.");
            }
            read += n;
        }
        return buffer;
    }

    /// <summary>On "354", writes the message a chunk at a time with WriteMore, the last chunk with Continue.</summary>
    private sealed class StreamingClient(byte[] message) : ScriptedClient
    {
        // Not a divisor of the message: the last chunk is a short one. Under the output limit, as a writer
        // that leaves room for dot-stuffing would be.
        public readonly int ChunkBytes = 200 * 1024 + 7;
        public int WritableCalls;
        public int OfferedWhileStreaming;
        private int _sent;
        private volatile bool _streaming;

        protected override HandlerStatus OnLine(string line, IBufferWriter<byte> output)
        {
            if (_streaming)
            {
                Interlocked.Increment(ref OfferedWhileStreaming);
            }
            if (!line.StartsWith("354", StringComparison.Ordinal))
            {
                return HandlerStatus.Continue;
            }
            _streaming = true;
            return WriteChunk(output);
        }

        public override HandlerStatus OnWritable(IBufferWriter<byte> output)
        {
            Interlocked.Increment(ref WritableCalls);
            return WriteChunk(output);
        }

        private HandlerStatus WriteChunk(IBufferWriter<byte> output)
        {
            int count = Math.Min(ChunkBytes, message.Length - _sent);
            output.Write(message.AsSpan(_sent, count));
            _sent += count;
            if (_sent < message.Length)
            {
                return HandlerStatus.WriteMore;
            }
            _streaming = false;
            return HandlerStatus.Continue;
        }
    }
}
