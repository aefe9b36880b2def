// Contract: one SMTP connection, joining the three parts. The transport gives bytes; the protocol
// session (EdgeMta.Protocol) decides every reply; the spool (EdgeMta.Spool) keeps the messages. This
// class only translates between them: it owns no protocol rule and no storage format.
//
// The asynchronous step is the durable commit at the end of a message (RFC 5321 §6.1: 250 only
// once the message cannot be lost). The session stops with AwaitingCommit; the handler starts the
// spool's commit and answers Pause; a spool writer thread completes the commit and calls Resume; the
// transport then calls OnResumed, where the session writes 250 (or 451/452) and the pipelined input that
// waited is processed. The other pause: a streamed message whose chunks wait for the spool's writer stops
// reading until they are written (SpoolMessage.PauseWhileBacklogged). Nothing here blocks and nothing here
// touches a file: the transport may call it on the socket engine's epoll thread.
//
// STARTTLS (RFC 3207) is a status, not an I/O step here: the session writes 220 and stops with StartTls
// (having consumed, and so discarded, anything pipelined after the command); the handler answers the
// transport's StartTls, which sends the 220, runs the handshake and calls OnTlsEstablished, where the
// session starts over in state 2 (RFC 3207 §4.2). A failed handshake simply closes the connection.
//
// Logging: with --verbose, each command line is logged as the session parses it (ISessionObserver), never
// message text (README). Commands are counted by verb in the session itself (SmtpSessionOptions.Commands),
// which also sees the over-long lines no observer call reports.
//
// Lifetime: handlers are pooled. A connection can close while its commit is in flight (the client
// vanished after the dot); the handler then stays out of the pool until the commit completes, so the
// writer's completion never touches a handler that already serves someone else.
using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Transport;
using SpoolCommit = EdgeMta.Spool.CommitResult;

namespace EdgeMta.Server;

internal sealed partial class SmtpConnectionHandler : IConnectionHandler, ISessionObserver
{
    // Commit states. When a connection closes mid-commit, two parties hold the handler: the transport
    // (which gives it back through the factory after OnClosed) and the commit (whose completion still
    // writes to it). Whichever lets go last puts it in the pool, once.
    private const int Idle = 0, Committing = 1, ClosedWhileCommitting = 2, ReleasedWhileCommitting = 3;

    private readonly SmtpServerContext _context;
    private readonly SmtpSession _session;
    private readonly Action _onCommitted;
    private readonly Action _onDrained;
    private bool _streamPaused;
    private readonly ReplyCountingWriter _replies;
    private readonly byte[] _clientAddress = new byte[64];
    private ConnectionInfo _connection;
    private int _clientAddressLength;
    private readonly byte[] _proxyAddress = new byte[64];
    private int _proxyAddressLength;
    private TimeSpan _timeout;
    private ConfiguredValueTaskAwaitable<SpoolCommit>.ConfiguredValueTaskAwaiter _commit;
    private int _commitState;
    private CommitOutcome _outcome;
    private long _openedAt;
    private int _messages;
    private bool _tls;

    public SmtpConnectionHandler(SmtpServerContext context)
    {
        _context = context;
        // The directory comes with each Start (the one current at connect, after any reload); between
        // sessions a pooled one holds the empty Sink, so it keeps no reloaded-away directory alive.
        // The observer only logs, and only with --verbose (fixed for the process): without it the session
        // gets none, and no interface call per command.
        _session = new SmtpSession(context.SessionOptions, RecipientDirectory.Sink, context.Clock,
            observer: context.Log.Verbose ? this : null);
        _onCommitted = OnCommitted;
        _onDrained = OnDrained;
        _replies = new ReplyCountingWriter(context.Counters);
    }

    private ReadOnlySpan<byte> ClientAddress => _clientAddress.AsSpan(0, _clientAddressLength);

    private ReadOnlySpan<byte> ProxyAddress => _proxyAddress.AsSpan(0, _proxyAddressLength);

    /// <summary>The address as text (IPv4-mapped IPv6 written as IPv4), with no allocation; 0 for none.</summary>
    private static int FormatAddress(IPEndPoint? endPoint, byte[] into)
    {
        IPAddress? address = endPoint?.Address;
        if (address is null)
        {
            return 0;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return address.TryFormat(into, out int written) ? written : 0;
    }

    public HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
    {
        _replies.Reset();
        output = _replies.Over(output); // metrics: replies by code
        _connection = info;
        _openedAt = _context.Clock.GetTimestamp();
        _messages = 0;
        _tls = false;
        _clientAddressLength = 0;
        // docs/SCREENING.md: the client is the one a PROXY header named; the proxy appears only as proxy=.
        _clientAddressLength = FormatAddress(info.ClientEndPoint, _clientAddress);
        _proxyAddressLength = FormatAddress(info.ProxyEndPoint, _proxyAddress);
        if (_context.Log.Verbose)
        {
            ServerLog.LineWriter opened = _context.Log.Begin(LogEvent.SessionOpened).Field("conn"u8, info.Id).Field("client"u8, ClientAddress);
            if (_proxyAddressLength > 0)
            {
                opened = opened.Field("proxy"u8, ProxyAddress);
            }
            opened.End();
        }
        SessionStatus status = _session.Start(new ClientInfo(ClientAddress), this, output, _context.Directory);
        if (_session.AwaitingGreeting)
        {
            // The transport's idle timer doubles as the greet-delay timer: OnTimedOut sends the 220.
            SetTimeout(_context.SessionOptions.GreetDelay);
            return HandlerStatus.Continue;
        }
        return After(status, output);
    }

    public HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        output = _replies.Over(output);
        SessionStatus status = _session.Process(input, output, out consumed);
        // A message streaming faster than the spool writes it: stop reading until the writer catches up (or
        // the spool's deadline fails the message). Memory per message stays at the spool's ring of chunks.
        if (status == SessionStatus.Continue && _message is not null && _message.PauseWhileBacklogged(_onDrained))
        {
            _streamPaused = true;
            return HandlerStatus.Pause;
        }
        return After(status, output);
    }

    public HandlerStatus OnResumed(IBufferWriter<byte> output)
    {
        output = _replies.Over(output);
        if (_streamPaused)
        {
            _streamPaused = false;
            return After(SessionStatus.Continue, output);   // the input kept while paused is offered next
        }
        SessionStatus status = _session.CompleteMessage(_outcome, output);
        return After(status, output);
    }

    // On a spool writer (or its deadline timer): the stream's backlog is written; read on.
    private void OnDrained() => _connection.Resume();

    public HandlerStatus OnTimedOut(IBufferWriter<byte> output)
    {
        output = _replies.Over(output);
        if (_session.AwaitingGreeting)
        {
            SessionStatus greeted = _session.OnGreetDelayElapsed(output);
            return After(greeted, output);
        }
        return After(_session.OnTimeout(output), output);
    }

    public HandlerStatus OnShutdown(IBufferWriter<byte> output)
    {
        output = _replies.Over(output);
        return After(_session.OnShutdown(output), output);
    }

    public HandlerStatus OnTlsEstablished(IBufferWriter<byte> output)
    {
        _tls = true;
        _session.OnTlsEstablished();
        return After(SessionStatus.Continue, output); // nothing to say: the client speaks first (EHLO again)
    }

    public void OnClosed()
    {
        ServerLog.LineWriter closed = _context.Log.Begin(LogEvent.SessionClosed)
            .Field("conn"u8, _connection.Id)
            .Field("client"u8, ClientAddress)
            .Field("messages"u8, _messages)
            .Field("tls"u8, _tls ? 1 : 0)
            .Field("ms"u8, (long)_context.Clock.GetElapsedTime(_openedAt).TotalMilliseconds);
        if (_proxyAddressLength > 0)
        {
            closed = closed.Field("proxy"u8, ProxyAddress);
        }
        closed.End();
        AbortOpenMessage();
        if (Interlocked.CompareExchange(ref _commitState, ClosedWhileCommitting, Committing) == Committing)
        {
            return; // OnCommitted finishes the cleanup and gives the handler back.
        }
        Recycle();
    }

    /// <summary>
    /// The transport is done with this handler. True: put it in the pool now. False: a commit is still in
    /// flight and its completion will put it there (<see cref="SmtpServerContext.ReturnOrphan"/>).
    /// </summary>
    internal bool ReleaseFromTransport() =>
        Interlocked.CompareExchange(ref _commitState, ReleasedWhileCommitting, ClosedWhileCommitting) != ClosedWhileCommitting;

    /// <summary>A commit was started and its completion has not yet let go of the handler.</summary>
    internal bool CommitInFlight => Volatile.Read(ref _commitState) != Idle;

    private void Recycle()
    {
        _streamPaused = false;
        _session.Reset();
        _connection = default;
        _timeout = default;
    }

    // Maps the session's answer to the transport's, and starts the commit when a message is complete.
    private HandlerStatus After(SessionStatus status, IBufferWriter<byte> output)
    {
        switch (status)
        {
            case SessionStatus.Continue:
                SetTimeout(_session.CurrentTimeout);
                return HandlerStatus.Continue;
            case SessionStatus.AwaitingCommit:
                return StartCommit(output);
            case SessionStatus.StartTls:
                // The 220 is in the output; the transport sends it, drops whatever input it still keeps,
                // and runs the handshake. The session's own timeouts resume after OnTlsEstablished.
                return HandlerStatus.StartTls;
            default:
                return HandlerStatus.Close;
        }
    }

    private HandlerStatus StartCommit(IBufferWriter<byte> output)
    {
        if (_message is null)
        {
            // The session only asks for a commit after a successful Begin; answer 451 rather than trust a bug.
            return After(_session.CompleteMessage(CommitOutcome.Failed451, output), output);
        }
        Volatile.Write(ref _commitState, Committing);
        _commit = _message.CommitAsync().ConfigureAwait(false).GetAwaiter();
        if (_commit.IsCompleted)
        {
            Volatile.Write(ref _commitState, Idle);
            _outcome = TakeCommitOutcome();
            return After(_session.CompleteMessage(_outcome, output), output);
        }
        _commit.UnsafeOnCompleted(_onCommitted);
        return HandlerStatus.Pause;
    }

    // On the spool's flusher thread: record the outcome and resume the connection, which writes the reply
    // (OnResumed) on this same thread unless another thread is driving it.
    private void OnCommitted()
    {
        _outcome = TakeCommitOutcome();
        // Read before the exchange: once the state is Idle, a close on the transport's thread may recycle the
        // handler and pool it for another connection, and this Resume must reach only the connection that
        // waits (its generation makes a late one harmless; the field may already be someone else's).
        ConnectionInfo connection = _connection;
        if (Interlocked.CompareExchange(ref _commitState, Idle, Committing) == Committing)
        {
            connection.Resume();
            return;
        }
        // The connection closed while the flush was running: the message is on disk (or not), but nobody
        // is left to tell. A client that saw no 250 sends it again; a duplicate is allowed, a loss is not.
        Recycle();
        if (Interlocked.CompareExchange(ref _commitState, Idle, ClosedWhileCommitting) == ClosedWhileCommitting)
        {
            return; // the transport has not let go yet; its Return will pool the handler
        }
        Volatile.Write(ref _commitState, Idle);
        _context.ReturnOrphan(this);
    }

    private void SetTimeout(TimeSpan timeout)
    {
        if (timeout == _timeout) return;
        _timeout = timeout;
        _connection.SetIdleTimeout(timeout);
    }

    // The session reports each command line as it parses it, DATA and every pipelined command included;
    // message text never comes this way (SessionObserver.cs), so it never reaches the log.
    void ISessionObserver.OnCommand(SmtpVerb verb, ReadOnlySpan<byte> line)
    {
        _context.Log.Begin(LogEvent.Command).Field("conn"u8, _connection.Id).Field("in"u8, line).End();
    }
}
