// The running server's end of the queue commands (docs/DELIVERY.md "Queue commands", wire form in
// QueueControl.cs): a Unix stream socket DIR/control.sock, mode 0600, that takes one request line per
// connection, hands it to an IQueueControl (the delivery agent) and writes "exit N" LF and the output back.
// Accepts and I/O are async socket calls: no thread per connection, since a handful of operators use it; at
// most MaxConnections at once (more are answered "exit 2" and closed, so a stuck script cannot pile up tasks).
// Bounds: a request is at most 4 KiB and must arrive within 5 s; the answer must be taken within 60 s.
// The socket file: a stale one (a server killed before its stop) is removed at Start; ours is removed at stop.
// Only the spool's lock holder starts one, so a live server's socket is never taken over.
// What it is not: authentication beyond the file mode (0600: the spool's owner, and root), or a general RPC.
// How it fails: Start throws IOException when the socket cannot be made (a path over the 107 bytes of
// sockaddr_un, a directory in the way); a bad request is "exit 2" and one line; a control that throws is
// "exit 2" and its message; a client that stalls or goes away is closed. Nothing a client sends ends the server.
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Delivery;

public sealed class ControlServer : IAsyncDisposable
{
    public const string SocketName = "control.sock";
    public const int MaxConnections = 8;
    public static readonly TimeSpan RequestDeadline = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan AnswerDeadline = TimeSpan.FromSeconds(60);
    // sockaddr_un.sun_path is 108 bytes on Linux, the terminating NUL included (unix(7)).
    private const int MaxSocketPathBytes = 107;

    private readonly IQueueControl _control;
    private readonly TimeProvider _time;
    private readonly Action<string>? _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly HashSet<Task> _connections = [];
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private int _disposed;
    private int _open;

    public ControlServer(string spoolDirectory, IQueueControl control, TimeProvider? time = null, Action<string>? log = null)
    {
        SocketPath = Path.Combine(Path.GetFullPath(spoolDirectory), SocketName);
        _control = control;
        _time = time ?? TimeProvider.System;
        _log = log;
    }

    public string SocketPath { get; }

    /// <summary>Binds DIR/control.sock (a stale one removed first), sets mode 0600, and starts accepting.</summary>
    public void Start()
    {
        if (_listener is not null) throw new InvalidOperationException("the control socket is already started");
        // A Unix socket's only access control is its file mode (unix(7)); EdgeMta runs on Linux.
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the control socket needs Unix file modes");
        if (Encoding.UTF8.GetByteCount(SocketPath) > MaxSocketPathBytes)
            throw new IOException($"control socket path {SocketPath} is longer than {MaxSocketPathBytes} bytes (sockaddr_un); use a shorter spool path");
        if (Directory.Exists(SocketPath)) throw new IOException($"{SocketPath} is a directory; the control socket cannot be made");
        // A socket file outlives a killed server; bind fails with EADDRINUSE on it. Only the spool lock's holder
        // gets here, so the file is never a live server's.
        File.Delete(SocketPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
            File.SetUnixFileMode(SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(MaxConnections);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"cannot listen on {SocketPath}: {e.Message}", e);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        _acceptLoop = AcceptLoopAsync(listener);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                // Resource pressure: back off a little rather than spin on the same error.
                _log?.Invoke($"control socket accept: {e.SocketErrorCode}; retrying in 100 ms");
                try { await Task.Delay(TimeSpan.FromMilliseconds(100), _time, stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                continue;
            }
            catch (SocketException e)
            {
                // Transient (a client that reset before the accept): the next accept is unaffected.
                _log?.Invoke($"control socket accept: {e.SocketErrorCode}");
                continue;
            }
            Track(ServeAsync(client, stop));
        }
    }

    private void Track(Task connection)
    {
        lock (_gate) _connections.Add(connection);
        connection.ContinueWith(t => { lock (_gate) _connections.Remove(t); }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task ServeAsync(Socket client, CancellationToken stop)
    {
        int open = Interlocked.Increment(ref _open);
        try
        {
            if (open > MaxConnections)
            {
                await AnswerAsync(client, 2, "too many control connections at once; try again\n", stop).ConfigureAwait(false);
                return;
            }
            await ExchangeAsync(client, stop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            _log?.Invoke($"control connection: {e.Message}");   // one client's trouble, never the server's
        }
        finally
        {
            Interlocked.Decrement(ref _open);
            client.Dispose();
        }
    }

    private async Task ExchangeAsync(Socket client, CancellationToken stop)
    {
        var (request, error) = await ReadRequestAsync(client, stop).ConfigureAwait(false);
        if (request is null)
        {
            if (error is not null) await AnswerAsync(client, 2, error + "\n", stop).ConfigureAwait(false);
            return;
        }
        QueueResult result;
        try
        {
            result = await _control.RunAsync(request, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await AnswerAsync(client, 2, "the server is stopping; try again offline\n", CancellationToken.None).ConfigureAwait(false);
            return;
        }
        catch (Exception e)
        {
            _log?.Invoke($"control {QueueRequestLine.Name(request.Verb)}: {e.GetType().Name}: {e.Message}");
            result = new QueueResult(2, $"error: {e.Message}\n");
        }
        await AnswerAsync(client, result.ExitCode, result.Output, stop).ConfigureAwait(false);
    }

    // One line, at most 4 KiB, within 5 s. Null request and null error: the client went away (nothing to say).
    private async Task<(QueueRequest? Request, string? Error)> ReadRequestAsync(Socket client, CancellationToken stop)
    {
        byte[] buffer = new byte[QueueRequestLine.MaxLineBytes];
        int filled = 0;
        using var deadline = new CancellationTokenSource(RequestDeadline, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, deadline.Token);
        try
        {
            while (true)
            {
                int n = await client.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, linked.Token).ConfigureAwait(false);
                int lf = Array.IndexOf(buffer, (byte)'\n', filled, n);
                filled += n;
                if (lf >= 0) return Parse(buffer.AsSpan(0, lf));
                if (n == 0) return filled == 0 ? (null, null) : Parse(buffer.AsSpan(0, filled));   // half-closed, no LF
                if (filled == buffer.Length) return (null, $"a request is at most {QueueRequestLine.MaxLineBytes} bytes, LF included");
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            return (null, $"no request line within {RequestDeadline.TotalSeconds:0} s");
        }
        catch (OperationCanceledException) { return (null, null); }
        catch (SocketException) { return (null, null); }
    }

    private static (QueueRequest?, string?) Parse(ReadOnlySpan<byte> line)
        => QueueRequestLine.TryParse(line, out var request, out string error) ? (request, null) : (null, error);

    private async Task AnswerAsync(Socket client, int exitCode, string output, CancellationToken stop)
    {
        byte[] bytes = Encoding.UTF8.GetBytes($"exit {exitCode}\n{output}");
        using var deadline = new CancellationTokenSource(AnswerDeadline, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, deadline.Token);
        try
        {
            int sent = 0;
            while (sent < bytes.Length)
            {
                int n = await client.SendAsync(bytes.AsMemory(sent), SocketFlags.None, linked.Token).ConfigureAwait(false);
                if (n <= 0) return;
                sent += n;
            }
            client.Shutdown(SocketShutdown.Send);
            DiscardUnread(client);
        }
        catch (OperationCanceledException) { }   // a client that does not read: closed, the server goes on
        catch (SocketException) { }              // a client that went away
    }

    // A socket closed with bytes unread resets the connection (unix(7), as TCP does), and the client may lose the
    // answer before reading it: what it sent and we did not take (past the line, or when a deadline cut the read
    // short) is read and dropped first. At most one request's worth: a client still sending more is cut off.
    private static void DiscardUnread(Socket client)
    {
        int available = Math.Min(client.Available, QueueRequestLine.MaxLineBytes);
        if (available <= 0) return;
        Span<byte> sink = stackalloc byte[QueueRequestLine.MaxLineBytes];
        client.Receive(sink[..available], SocketFlags.None);
    }

    /// <summary>Stops accepting, ends the connections still open, and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        Task[] open;
        lock (_gate) open = [.. _connections];
        await Task.WhenAll(open).ConfigureAwait(false);
        if (_listener is not null)
        {
            try { File.Delete(SocketPath); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log?.Invoke($"cannot remove {SocketPath}: {e.Message}"); }
        }
        _stop.Dispose();
    }
}
