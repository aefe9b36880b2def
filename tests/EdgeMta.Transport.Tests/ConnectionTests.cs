using System.Buffers;
using System.Net;
using System.Text;

namespace EdgeMta.Transport.Tests;

public sealed class ConnectionTests
{
    [Fact]
    public async Task PortZeroBindsAFreePortAndExposesIt()
    {
        await using var server = new TestServer(() => new EchoLineHandler());
        Assert.NotEqual(0, server.EndPoint.Port);
        Assert.Equal(IPAddress.Loopback, server.EndPoint.Address);
        using TestClient client = await server.ConnectAsync();
        Assert.Equal("hello\r\n", await client.ReadUntilAsync("\r\n"));
    }

    [Fact]
    public async Task EchoHandlerAnswersEachLine()
    {
        await using var server = new TestServer(() => new EchoLineHandler());
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("one\r\n");
        Assert.Equal("one\r\n", await client.ReadUntilAsync("one\r\n"));
        await client.SendAsync("two\r\n");
        Assert.Equal("two\r\n", await client.ReadUntilAsync("two\r\n"));
    }

    [Fact]
    public async Task LineSplitAtEveryByteIsKeptAndOfferedAgainUntilWhole()
    {
        var handler = new EchoLineHandler();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        byte[] line = Encoding.ASCII.GetBytes("split line\r\n");
        for (int i = 0; i < line.Length; i++)
        {
            int before = Volatile.Read(ref handler.ReceivedCalls);
            await client.SendAsync(new[] { line[i] });
            Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ReceivedCalls) > before));
        }
        Assert.Equal("split line\r\n", await client.ReadUntilAsync("\r\n"));
        // Each receive offered everything kept so far plus the new byte: 1, 2, ..., 12.
        Assert.Equal(Enumerable.Range(1, line.Length), handler.OfferedLengths);
    }

    [Fact]
    public async Task PipelinedLinesAreAnsweredInOneSend()
    {
        // One line per call, and a pause inside the second call: if the transport sent the first
        // reply before offering the second line, the client's first read would hold only "a".
        var handler = new OneLinePerCallHandler();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("a\r\nb\r\nc\r\n");
        Assert.Equal("a\r\nb\r\nc\r\n", await client.ReadOnceAsync());
        Assert.Equal(3, handler.ReceivedCalls);
    }

    [Fact]
    public async Task HandlerThatClosesAfterItsReplyGetsItDeliveredThenTheConnectionEnds()
    {
        var handler = new EchoLineHandler();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("x\r\nquit\r\nnever\r\n");
        Assert.Equal("x\r\nbye\r\n", await client.ReadToEndAsync());
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 0));
        Assert.Equal(1, handler.ClosedCount);
    }

    [Fact]
    public async Task GreetingThatClosesAtOnceIsStillDelivered()
    {
        await using var server = new TestServer(() => new ClosingGreeter());
        using TestClient client = await server.ConnectAsync();
        Assert.Equal("521 no mail here\r\n", await client.ReadToEndAsync());
    }

    [Fact]
    public async Task HandlerThatNeverConsumesIsClosedAtTheInputCap()
    {
        var handler = new NeverConsumes();
        await using var server = new TestServer(() => handler, o => { o.ReceiveBufferSize = 4096; o.MaxInputBytes = 16384; });
        using TestClient client = await server.ConnectAsync();
        var chunk = new byte[4096];
        Array.Fill(chunk, (byte)'x');
        try
        {
            for (int i = 0; i < 16 && Volatile.Read(ref handler.ClosedCount) == 0; i++)
            {
                await client.SendAsync(chunk);
                await Task.Delay(20);
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // The server may already have closed: that is what is tested.
        }
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, server.Server.Counters.InputOverflows);
        Assert.True(handler.MaxOffered <= 16384);
    }

    [Fact]
    public async Task HandlerThatThrowsLosesOnlyItsConnection()
    {
        await using var server = new TestServer(() => new ThrowsOnInput());
        using TestClient victim = await server.ConnectAsync();
        await victim.SendAsync("boom\r\n");
        Assert.Equal("", await victim.ReadToEndAsync().ContinueWith(t => t.IsFaulted ? "" : t.Result));
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Faulted == 1));
        using TestClient next = await server.ConnectAsync();
        await next.SendAsync("fine\r\n");
        Assert.Equal("ok\r\n", await next.ReadUntilAsync("\r\n"));
    }

    [Fact]
    public async Task LongStreamIsDeliveredWholeAcrossManyTurns()
    {
        // 8 MiB in one write: hundreds of receives, many completing synchronously, so the connection
        // yields its thread every few of them and must lose nothing when it comes back.
        var handler = new CountingSink();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        var data = new byte[8 << 20];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)('a' + (i % 26));
        }
        data[^1] = (byte)'\n';
        await client.SendAsync(data);
        Assert.Equal("done\r\n", await client.ReadUntilAsync("done\r\n"));
        Assert.Equal(data.Length, handler.Consumed);
        Assert.True(handler.InOrder);
    }

    /// <summary>Consumes everything but the last byte, checks the a-z pattern runs on, says "done" at a line feed.</summary>
    private sealed class CountingSink : EchoLineHandler
    {
        public long Consumed;
        public bool InOrder = true;

        public override HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
        {
            consumed = input.Length;
            for (int i = 0; i < input.Length; i++)
            {
                long at = Consumed + i;
                byte expected = at == (8 << 20) - 1 ? (byte)'\n' : (byte)('a' + (at % 26));
                InOrder &= input[i] == expected;
            }
            Consumed += input.Length;
            if (input[^1] == (byte)'\n')
            {
                output.Write("done\r\n"u8);
            }
            return HandlerStatus.Continue;
        }
    }

    private sealed class OneLinePerCallHandler : EchoLineHandler
    {
        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            output.Write("hello\r\n"u8);
            return HandlerStatus.Continue;
        }

        public override HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
        {
            int calls = Interlocked.Increment(ref ReceivedCalls);
            int lf = input.IndexOf((byte)'\n');
            consumed = lf < 0 ? 0 : lf + 1;
            if (lf >= 0)
            {
                if (calls == 2)
                {
                    Thread.Sleep(200); // give a wrongly sent first reply time to reach the client
                }
                output.Write(input[..consumed]);
            }
            return HandlerStatus.Continue;
        }
    }

    private sealed class ClosingGreeter : EchoLineHandler
    {
        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            output.Write("521 no mail here\r\n"u8);
            return HandlerStatus.Close;
        }
    }

    private sealed class NeverConsumes : EchoLineHandler
    {
        public int MaxOffered;

        public override HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
        {
            MaxOffered = Math.Max(MaxOffered, input.Length);
            consumed = 0;
            return HandlerStatus.Continue;
        }
    }

    private sealed class ThrowsOnInput : EchoLineHandler
    {
        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output) => HandlerStatus.Continue;

        protected override HandlerStatus OnLine(ReadOnlySpan<byte> line, IBufferWriter<byte> output)
        {
            if (line.SequenceEqual("boom"u8))
            {
                throw new InvalidOperationException("handler bug");
            }
            output.Write("ok\r\n"u8);
            return HandlerStatus.Continue;
        }
    }
}
