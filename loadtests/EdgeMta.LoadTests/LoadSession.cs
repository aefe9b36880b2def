using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.LoadTests;

/// <summary>
/// One simulated sender: takes message numbers from the run, waits until each is due, and drives an
/// SmtpClientMachine over one socket, reconnecting when the machine closes. Costs per message are kept
/// to what the protocol needs: preformatted command bytes, one 8 KiB receive buffer and one 1 KiB send
/// buffer per session (allocated once), replies parsed in place, Stopwatch timestamps, and awaits on
/// Socket's ValueTask operations (no Stream, no per-operation CancellationTokenSource: a watchdog in
/// LoadRun disposes the socket of a session that waits longer than the timeout).
/// </summary>
public sealed class LoadSession
{
    readonly LoadRun _run;
    readonly LoadOptions _options;
    readonly MessageBody _body;
    readonly SmtpClientMachine _machine;
    readonly RunMetrics _metrics;
    readonly byte[] _receive = new byte[8192];
    readonly byte[] _send = new byte[1024];
    int _start, _end;
    Socket? _socket;
    long _waitingSince;      // Stopwatch timestamp while a socket operation is pending, else 0
    static long _connections;   // numbers connections across sessions: each gets its own PROXY client
    volatile bool _timedOut;

    public LoadSession(LoadRun run, LoadOptions options, MessageBody body, RunMetrics metrics)
    {
        _run = run;
        _options = options;
        _body = body;
        _metrics = metrics;
        _machine = new SmtpClientMachine(metrics, options.Pipelining);
    }

    public SmtpClientMachine Machine => _machine;

    /// <summary>Called by the watchdog: abort the pending operation if it has waited past the timeout.</summary>
    public void CheckTimeout(long now, long timeoutTicks)
    {
        long since = Volatile.Read(ref _waitingSince);
        if (since == 0 || now - since < timeoutTicks) return;
        _timedOut = true;
        _socket?.Dispose();
    }

    public async Task RunAsync()
    {
        await Task.Yield();
        while (_run.TryTakeMessage(out long index))
        {
            long due = _run.StartTimestamp + _options.Shape.DueTicks(index);
            if (_run.IsPastEnd(due)) break;                   // due after --duration: never sent
            long now = Stopwatch.GetTimestamp();
            if (due > now)
            {
                long waitMs = (due - now) * 1000 / Stopwatch.Frequency;
                if (waitMs > 0)
                {
                    try { await Task.Delay((int)Math.Min(waitMs, int.MaxValue), _run.Stopping).ConfigureAwait(false); }
                    catch (OperationCanceledException) { }
                }
                if (_run.Stopping.IsCancellationRequested) break;    // due after the stop: never sent
            }
            _run.MessageAttempted();
            await SendMessageAsync(_options.Sizes.EntryFor(index)).ConfigureAwait(false);
        }
        await QuitAsync().ConfigureAwait(false);
    }

    async Task SendMessageAsync(int entry)
    {
        Decision d = _machine.StartMessage(Stopwatch.GetTimestamp(), _options.PerMessageConnections);
        while (true)
        {
            if (d.Outcome == MessageOutcome.Delivered) _metrics.AddBytes(_body.SizeOf(entry));
            if (d.Next == NextMove.Connect)
            {
                long t0 = Stopwatch.GetTimestamp();
                bool ok = await ConnectAsync().ConfigureAwait(false);
                d = ok ? _machine.ConnectSucceeded(t0, Stopwatch.GetTimestamp()) : _machine.ConnectFailed(Stopwatch.GetTimestamp());
                continue;
            }
            if (d.Send != Commands.None && !await WriteAsync(d.Send, entry).ConfigureAwait(false) && d.Next != NextMove.Close)
            {
                d = Lost();
                continue;
            }
            switch (d.Next)
            {
                case NextMove.AwaitReply:
                    d = await ReadReplyAsync().ConfigureAwait(false);
                    continue;
                case NextMove.Close:
                    CloseSocket();
                    return;
                default:
                    return;    // Ready: the next message goes on this connection
            }
        }
    }

    /// <summary>At the end of the run: QUIT and wait for its reply, so the server sees an orderly end.</summary>
    async Task QuitAsync()
    {
        if (_socket is null || !_machine.Connected) { CloseSocket(); return; }
        if (await WriteAsync(Commands.Quit, 0).ConfigureAwait(false))
        {
            // The machine expects no QUIT reply here (it was not asked to send one); read it raw and drop it.
            Volatile.Write(ref _waitingSince, Stopwatch.GetTimestamp());
            try { await _socket.ReceiveAsync(_receive.AsMemory(), SocketFlags.None).ConfigureAwait(false); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            Volatile.Write(ref _waitingSince, 0);
        }
        CloseSocket();
    }

    async ValueTask<bool> ConnectAsync()
    {
        CloseSocket();
        var socket = new Socket(_options.Target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        _timedOut = false;
        Volatile.Write(ref _waitingSince, Stopwatch.GetTimestamp());
        try
        {
            await socket.ConnectAsync(_options.Target).ConfigureAwait(false);
            if (_options.Proxy != ProxyVersion.None)
            {
                // The header goes before the greeting is read, as HAProxy sends it (doc/proxy-protocol.txt §2).
                IPEndPoint source = ProxyPreamble.SourceFor(Interlocked.Increment(ref _connections) - 1, _options.Target);
                int n = ProxyPreamble.Write(_options.Proxy, source, _options.Target, _send);
                await SendAllAsync(socket, _send.AsMemory(0, n)).ConfigureAwait(false);
            }
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            CloseSocket();
            return false;
        }
        finally { Volatile.Write(ref _waitingSince, 0); }
    }

    async ValueTask<bool> WriteAsync(Commands send, int entry)
    {
        Socket? socket = _socket;
        if (socket is null) return false;
        int n = 0;
        if ((send & Commands.Ehlo) != 0) n = Append(_body.Ehlo, n);
        if ((send & Commands.Rset) != 0) n = Append(MessageBody.Rset, n);
        if ((send & (Commands.Mail | Commands.Rcpt | Commands.Data)) == (Commands.Mail | Commands.Rcpt | Commands.Data))
            n = Append(_body.Envelope, n);
        else
        {
            if ((send & Commands.Mail) != 0) n = Append(_body.Mail, n);
            if ((send & Commands.Rcpt) != 0) n = Append(_body.Rcpt, n);
            if ((send & Commands.Data) != 0) n = Append(MessageBody.Data, n);
        }
        Volatile.Write(ref _waitingSince, Stopwatch.GetTimestamp());
        try
        {
            if ((send & Commands.Body) != 0)
            {
                if (n > 0) { await SendAllAsync(socket, _send.AsMemory(0, n)).ConfigureAwait(false); n = 0; }
                await SendAllAsync(socket, _body.Contents[entry]).ConfigureAwait(false);
            }
            if ((send & Commands.LoneDot) != 0) n = Append(MessageBody.LoneDot, n);
            if ((send & Commands.Quit) != 0) n = Append(MessageBody.Quit, n);
            if (n > 0) await SendAllAsync(socket, _send.AsMemory(0, n)).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { return false; }
        finally { Volatile.Write(ref _waitingSince, 0); }
    }

    static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int sent = await socket.SendAsync(bytes, SocketFlags.None).ConfigureAwait(false);
            if (sent <= 0) throw new SocketException((int)SocketError.ConnectionReset);
            bytes = bytes[sent..];
        }
    }

    int Append(byte[] bytes, int at)
    {
        bytes.CopyTo(_send, at);
        return at + bytes.Length;
    }

    async ValueTask<Decision> ReadReplyAsync()
    {
        while (true)
        {
            ReplyParse parse = SmtpReplyReader.TryRead(_receive.AsSpan(_start, _end - _start), out int code, out int consumed);
            if (parse == ReplyParse.Complete)
            {
                Decision d = _machine.OnReply(code, _receive.AsSpan(_start, consumed), Stopwatch.GetTimestamp());
                _start += consumed;
                if (_start == _end) _start = _end = 0;
                return d;
            }
            if (parse == ReplyParse.Malformed) return _machine.MalformedReply(Stopwatch.GetTimestamp());
            if (_start > 0)
            {
                Buffer.BlockCopy(_receive, _start, _receive, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _receive.Length) return _machine.MalformedReply(Stopwatch.GetTimestamp());   // a reply over 8 KiB
            Socket? socket = _socket;
            if (socket is null) return Lost();
            int received;
            Volatile.Write(ref _waitingSince, Stopwatch.GetTimestamp());
            try { received = await socket.ReceiveAsync(_receive.AsMemory(_end), SocketFlags.None).ConfigureAwait(false); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { received = 0; }
            finally { Volatile.Write(ref _waitingSince, 0); }
            if (received == 0) return Lost();
            _end += received;
        }
    }

    Decision Lost()
    {
        long now = Stopwatch.GetTimestamp();
        return _timedOut ? _machine.TimedOut(now) : _machine.ConnectionLost(now);
    }

    void CloseSocket()
    {
        _socket?.Dispose();
        _socket = null;
        _start = _end = 0;
    }
}
