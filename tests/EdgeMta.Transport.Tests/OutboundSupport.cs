// Test scaffolding for outbound connections: a transport with no listener of its own, a plain Socket peer
// standing in for the next hop, and a line-scripted IOutboundHandler that records every call it gets, in order.
// Every wait is bounded (Bounded.Wait), so a hang fails the test instead of blocking CI.
using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Transport.Tests;

/// <summary>A started transport that only connects out (no endpoint); its inbound factory is never used.</summary>
internal sealed class OutboundTransport : IAsyncDisposable
{
    public OutboundTransport(Action<TransportOptions>? configure = null)
    {
        Options = new TransportOptions { TimerPeriod = TimeSpan.FromMilliseconds(100) };
        configure?.Invoke(Options);
        Server = new TransportServer(Options, new DelegateFactory(() => throw new InvalidOperationException("No inbound here.")));
        Server.Start();
    }

    public TransportOptions Options { get; }
    public TransportServer Server { get; }

    public async ValueTask DisposeAsync() => await Server.StopAsync(TimeSpan.Zero).WaitAsync(Bounded.Wait);
}

/// <summary>The next hop: a plain listening socket and the one connection it accepts.</summary>
internal sealed class PeerListener : IDisposable
{
    private readonly Socket _listener;

    private PeerListener(Socket listener, EndPoint endPoint)
    {
        _listener = listener;
        EndPoint = endPoint;
    }

    public EndPoint EndPoint { get; }

    public static PeerListener Tcp(int backlog = 16)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(backlog);
        return new PeerListener(listener, listener.LocalEndPoint!);
    }

    public static PeerListener Unix(string path)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var endPoint = new UnixDomainSocketEndPoint(path);
        listener.Bind(endPoint);
        listener.Listen(16);
        return new PeerListener(listener, endPoint);
    }

    public async Task<TestClient> AcceptAsync()
    {
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        return new TestClient(await _listener.AcceptAsync(timeout.Token));
    }

    public void Dispose() => _listener.Dispose();
}

/// <summary>
/// Answers each complete line it receives from the peer through <see cref="OnLine"/> (by default: a line
/// starting with a key of <see cref="Replies"/> is answered with its value, "221" closes), and records what the
/// transport did, in order, in <see cref="Events"/>.
/// </summary>
internal class ScriptedClient : IOutboundHandler
{
    public readonly ConcurrentQueue<string> Events = new();
    public readonly ConcurrentQueue<string> Lines = new();
    public readonly Dictionary<string, string> Replies = new(StringComparer.Ordinal);
    public ConnectionInfo Info;
    public int OpenedCount;
    public int ClosedCount;
    public int ShutdownCalls;
    public int TimedOutCalls;
    public int TlsEstablishedCalls;
    public volatile string? TlsFailure;
    public SocketError? ConnectError;
    private int _connectFailedCount;

    public int ConnectFailedCount => Volatile.Read(ref _connectFailedCount);

    public SslClientAuthenticationOptions ClientTlsOptions { get; set; } = new();

    public virtual HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
    {
        Info = info;
        Events.Enqueue("opened");
        Interlocked.Increment(ref OpenedCount);
        return HandlerStatus.Continue; // a client waits for the greeting
    }

    public HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        consumed = 0;
        while (true)
        {
            int lf = input[consumed..].IndexOf((byte)'\n');
            if (lf < 0)
            {
                return HandlerStatus.Continue;
            }
            string line = Encoding.ASCII.GetString(input.Slice(consumed, lf + 1).TrimEnd("\r\n"u8));
            consumed += lf + 1;
            Lines.Enqueue(line);
            Events.Enqueue("line " + line);
            HandlerStatus status = OnLine(line, output);
            if (status != HandlerStatus.Continue)
            {
                return status; // what follows is kept and offered again later
            }
        }
    }

    protected virtual HandlerStatus OnLine(string line, IBufferWriter<byte> output)
    {
        foreach (KeyValuePair<string, string> reply in Replies)
        {
            if (line.StartsWith(reply.Key, StringComparison.Ordinal))
            {
                output.Write(Encoding.ASCII.GetBytes(reply.Value));
                break;
            }
        }
        return line.StartsWith("221", StringComparison.Ordinal) ? HandlerStatus.Close : HandlerStatus.Continue;
    }

    public virtual HandlerStatus OnResumed(IBufferWriter<byte> output) => HandlerStatus.Continue;

    public virtual HandlerStatus OnTimedOut(IBufferWriter<byte> output)
    {
        Events.Enqueue("timed out");
        Interlocked.Increment(ref TimedOutCalls);
        output.Write("QUIT\r\n"u8);
        return HandlerStatus.Close;
    }

    public virtual HandlerStatus OnShutdown(IBufferWriter<byte> output)
    {
        Events.Enqueue("shutdown");
        Interlocked.Increment(ref ShutdownCalls);
        output.Write("QUIT\r\n"u8);
        return HandlerStatus.Close;
    }

    public virtual HandlerStatus OnTlsEstablished(IBufferWriter<byte> output)
    {
        Events.Enqueue("tls");
        Interlocked.Increment(ref TlsEstablishedCalls);
        output.Write("EHLO again\r\n"u8); // RFC 3207 §4.2: the client starts over
        return HandlerStatus.Continue;
    }

    public void OnTlsFailed(string reason)
    {
        Events.Enqueue("tls failed");
        TlsFailure = reason;
    }

    public virtual HandlerStatus OnWritable(IBufferWriter<byte> output) => HandlerStatus.Continue;

    public void OnConnectFailed(SocketError error)
    {
        Events.Enqueue("connect failed");
        ConnectError = error;
        Interlocked.Increment(ref _connectFailedCount);
    }

    public void OnClosed()
    {
        Events.Enqueue("closed");
        Interlocked.Increment(ref ClosedCount);
    }
}
