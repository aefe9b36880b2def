// Contract: the metrics port. Its own listening socket and accept loop, apart from the SMTP transport (no
// handler, buffer pool or connection limit shared with it), serving `GET /metrics` as HTTP/1.1 and closing
// the connection after each response (`Connection: close`).
//
// Bounded against every kind of bad client, so nothing on this port can reach the SMTP side:
//  - at most MaxConnections at once (4): one more is closed at accept, unanswered;
//  - a request head over MaxHeadBytes (8 KiB) is answered 431 and closed: no client makes it buffer more;
//  - a head not complete within HeadTimeout (10 s) is closed unanswered (slowloris);
//  - a response not taken within SendTimeout (10 s) is dropped with its connection (a client that never
//    reads holds one slot and one body buffer for that long, then nothing).
// I/O is asynchronous on the thread pool: a stalled client holds no thread. Deadlines run on the injected
// TimeProvider, so tests move time instead of sleeping.
// What it does not do: TLS, authentication, keep-alive. Bind it to loopback or a management network
// (docs/OPERATIONS.md); it serves anyone who can connect, as chasquid's and maddy's metrics ports do.
// How it fails: a bind error is the caller's (Start throws SocketException). Accept errors are sorted:
// resource pressure (EMFILE, ENOBUFS) backs off 100 ms, a peer gone before accept is skipped, anything else
// ends the loop (the port then refuses, and Prometheus shows the target down).
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Metrics;

/// <summary>Settings of the metrics port; the defaults are what `--metrics-listen` runs with.</summary>
public sealed class MetricsListenerOptions
{
    public required IPEndPoint EndPoint { get; init; }
    public int MaxConnections { get; init; } = 4;
    public int MaxHeadBytes { get; init; } = 8 * 1024;
    public TimeSpan HeadTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Largest body a render may produce (EdgeMta's is about 10 KB).</summary>
    public int MaxBodyBytes { get; init; } = 4 << 20;
    public TimeProvider Clock { get; init; } = TimeProvider.System;
}

/// <summary>Serves `GET /metrics` with what <c>render</c> writes.</summary>
public sealed partial class MetricsListener : IAsyncDisposable
{
    private static readonly TimeSpan AcceptBackoff = TimeSpan.FromMilliseconds(100);

    private readonly MetricsListenerOptions _options;
    private readonly Action<PrometheusTextWriter> _render;
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private Task _acceptLoop = Task.CompletedTask;
    private int _open;
    private int _stopped;

    // What happened to connections, for tests and for the log at stop.
    internal long _served, _refused, _headTimeouts, _sendTimeouts, _tooLarge;

    private MetricsListener(MetricsListenerOptions options, Action<PrometheusTextWriter> render, Socket socket)
    {
        _options = options;
        _render = render;
        _socket = socket;
    }

    /// <summary>The address actually bound (port 0 resolved).</summary>
    public IPEndPoint BoundEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    internal int Open => Volatile.Read(ref _open);

    /// <summary>Binds and starts accepting. <paramref name="render"/> runs once per scrape, on the thread pool,
    /// concurrently with everything else: it must only read (counters, gauges).</summary>
    /// <exception cref="SocketException">The address cannot be bound.</exception>
    public static MetricsListener Start(MetricsListenerOptions options, Action<PrometheusTextWriter> render)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxHeadBytes, 64);
        var socket = new Socket(options.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(options.EndPoint);
            socket.Listen(16);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var listener = new MetricsListener(options, render, socket);
        listener._acceptLoop = listener.AcceptLoopAsync();
        return listener;
    }

    private async Task AcceptLoopAsync()
    {
        // Bounded by the listener's life: every path either accepts, backs off, or returns once stopped.
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset or SocketError.Interrupted)
            {
                continue; // the peer left before accept
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                try
                {
                    await Task.Delay(AcceptBackoff, _options.Clock, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            catch (SocketException)
            {
                return;
            }
            if (Interlocked.Increment(ref _open) > _options.MaxConnections)
            {
                Interlocked.Decrement(ref _open);
                Interlocked.Increment(ref _refused);
                client.Dispose();
                continue;
            }
            _ = ServeAsync(client);
        }
    }

    /// <summary>Stops accepting and aborts every connection still open.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        _stop.Cancel();
        _socket.Dispose();
        await _acceptLoop.ConfigureAwait(false);
    }
}
