// Test scaffolding: a server on loopback port 0 with a handler factory made of a delegate, and a client
// whose every wait is bounded (a hang fails the test instead of blocking CI).
using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Transport.Tests;

internal static class Bounded
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    /// <summary>Polls a condition until it holds or the bound passes; returns whether it held.</summary>
    public static async Task<bool> UntilAsync(Func<bool> condition, TimeSpan? bound = null)
    {
        DateTime end = DateTime.UtcNow + (bound ?? Wait);
        while (!condition())
        {
            if (DateTime.UtcNow > end)
            {
                return false;
            }
            await Task.Delay(10);
        }
        return true;
    }
}

internal sealed class DelegateFactory(Func<IConnectionHandler> create) : IConnectionHandlerFactory
{
    public readonly ConcurrentQueue<IConnectionHandler> Created = new();
    public readonly ConcurrentQueue<ConnectionRejection> Rejections = new();

    public IConnectionHandler Create()
    {
        IConnectionHandler handler = create();
        Created.Enqueue(handler);
        return handler;
    }

    public void Return(IConnectionHandler handler) { }

    public void WriteRejection(ConnectionInfo info, ConnectionRejection reason, IBufferWriter<byte> output)
    {
        Rejections.Enqueue(reason);
        output.Write(reason == ConnectionRejection.TooManyConnections ? "421 too many connections\r\n"u8 : "421 too many from you\r\n"u8);
    }
}

internal sealed class TestServer : IAsyncDisposable
{
    public TestServer(Func<IConnectionHandler> create, Action<TransportOptions>? configure = null, IPAddress? address = null)
    {
        Options = new TransportOptions { TimerPeriod = TimeSpan.FromMilliseconds(100) };
        Options.EndPoints.Add(new IPEndPoint(address ?? IPAddress.Loopback, 0));
        configure?.Invoke(Options);
        Factory = new DelegateFactory(create);
        Server = new TransportServer(Options, Factory);
        Server.Start();
    }

    public TransportOptions Options { get; }
    public DelegateFactory Factory { get; }
    public TransportServer Server { get; }
    public IPEndPoint EndPoint => Server.BoundEndPoints[0];

    public async Task<TestClient> ConnectAsync(IPAddress? from = null)
    {
        var socket = new Socket(EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (from is not null)
        {
            socket.Bind(new IPEndPoint(from, 0));
        }
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await socket.ConnectAsync(EndPoint, timeout.Token);
        return new TestClient(socket);
    }

    public async ValueTask DisposeAsync() => await Server.StopAsync(TimeSpan.Zero).WaitAsync(Bounded.Wait);
}

internal sealed class TestClient(Socket socket) : IDisposable
{
    private readonly StringBuilder _received = new();

    public Socket Socket { get; } = socket;

    public Task SendAsync(string text) => SendAsync(Encoding.ASCII.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await Socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
    }

    /// <summary>One receive: what a single read returns (empty at the peer's FIN).</summary>
    public async Task<string> ReadOnceAsync()
    {
        var buffer = new byte[64 * 1024];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    /// <summary>Reads until the text received so far contains <paramref name="expected"/>; returns all of it and forgets it.</summary>
    public async Task<string> ReadUntilAsync(string expected)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        while (!_received.ToString().Contains(expected, StringComparison.Ordinal))
        {
            int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                throw new IOException($"Connection closed before '{expected}'; got '{_received}'.");
            }
            _received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        string all = _received.ToString();
        _received.Clear();
        return all;
    }

    /// <summary>Reads and drops bytes until the server's FIN; true if it came (false: reset).</summary>
    public async Task<string> ReadToEndAsync()
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        while (true)
        {
            int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                string all = _received.ToString();
                _received.Clear();
                return all;
            }
            _received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
    }

    public void Dispose() => Socket.Dispose();
}

/// <summary>
/// Greets with "hello", echoes each complete line, answers "quit" with "bye" and Close. Records what the
/// transport did to it, for the tests to check.
/// </summary>
internal class EchoLineHandler : IConnectionHandler
{
    public ConnectionInfo Info;
    public int ClosedCount;
    public int ReceivedCalls;
    public int ShutdownCalls;
    public int TimedOutCalls;
    public volatile bool Paused;
    public int ReceivedWhilePaused;
    public readonly ConcurrentQueue<int> OfferedLengths = new();

    public virtual HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
    {
        Info = info;
        output.Write("hello\r\n"u8);
        return HandlerStatus.Continue;
    }

    public virtual HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        Interlocked.Increment(ref ReceivedCalls);
        OfferedLengths.Enqueue(input.Length);
        if (Paused)
        {
            Interlocked.Increment(ref ReceivedWhilePaused);
        }
        consumed = 0;
        while (true)
        {
            int lf = input[consumed..].IndexOf((byte)'\n');
            if (lf < 0)
            {
                return HandlerStatus.Continue;
            }
            ReadOnlySpan<byte> line = input.Slice(consumed, lf + 1);
            consumed += lf + 1;
            HandlerStatus status = OnLine(line.TrimEnd("\r\n"u8), output);
            if (status != HandlerStatus.Continue)
            {
                return status;
            }
        }
    }

    protected virtual HandlerStatus OnLine(ReadOnlySpan<byte> line, IBufferWriter<byte> output)
    {
        if (line.SequenceEqual("quit"u8))
        {
            output.Write("bye\r\n"u8);
            return HandlerStatus.Close;
        }
        output.Write(line);
        output.Write("\r\n"u8);
        return HandlerStatus.Continue;
    }

    public virtual HandlerStatus OnResumed(IBufferWriter<byte> output)
    {
        Paused = false;
        output.Write("resumed\r\n"u8);
        return HandlerStatus.Continue;
    }

    public virtual HandlerStatus OnTimedOut(IBufferWriter<byte> output)
    {
        Interlocked.Increment(ref TimedOutCalls);
        output.Write("421 idle\r\n"u8);
        return HandlerStatus.Close;
    }

    public virtual HandlerStatus OnShutdown(IBufferWriter<byte> output)
    {
        Interlocked.Increment(ref ShutdownCalls);
        output.Write("421 shutting down\r\n"u8);
        return HandlerStatus.Close;
    }

    public virtual HandlerStatus OnTlsEstablished(IBufferWriter<byte> output) => HandlerStatus.Continue;

    public void OnClosed() => Interlocked.Increment(ref ClosedCount);
}
