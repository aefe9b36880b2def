// One accepted socket (or one this process connected: Connection.Outbound.cs) and the loop that moves its
// bytes between the socket and its handler.
//
// Contract
// - Handler callbacks for one connection never overlap. Every event (a receive or send completing,
//   Resume, the timer, stop, abort) is posted as a bit into one 64-bit state word whose high half is
//   the connection's generation; whoever sets the Running bit owns the connection and drives it until
//   no bit is left (Connection.Drive.cs). A post carrying an old generation is refused, which is what
//   makes a late Resume() on a pooled, reused object harmless.
// - I/O completions drive the connection on the thread that completed them (the epoll thread with
//   inline completions, a pool thread without); Resume drives it on the thread that called Resume (the
//   spool's writer: the reply goes out without a thread hop); the timer and stop queue the drive to
//   the thread pool.
// - Socket outcomes are values: SocketError and BytesTransferred are read, never thrown. Synchronous
//   completions are handled by the drive loop itself, never by recursion.
// - An idle connection waits with a zero-byte receive and holds no buffer; a buffer is taken only when
//   data is ready and given back when the handler consumed all of it (docs/PERF-NOTES.md: 3.3 KB instead of
//   19.3 KB per idle connection). A paused connection parks the few bytes it keeps in a small array of its
//   own and gives the pooled buffer back too (Connection.Park.cs). A wait that completes with nothing to
//   read (a stale readiness) is re-armed, not answered with a buffer (Connection.Io.cs, OnReceiveResult).
// - While a send is pending nothing else happens: no input is processed, so output cannot grow while a
//   client is not reading; a send that makes no progress for SendTimeout closes the connection.
// - Close is graceful: flush output, shutdown(SHUT_WR), read and discard until the peer's FIN or
//   LingerTimeout, then close. Never SO_LINGER: with it close(2) blocks, possibly on the epoll thread.
//   A fault, a timeout of a send, a reset or stop's deadline close at once.
//
// TLS: STARTTLS (RFC 3207) is a mode switch below the seam (Connection.Tls.cs). The handler, having
// consumed every byte up to and including the STARTTLS line (and discarded anything pipelined after it,
// CVE-2011-0411), writes 220 and answers HandlerStatus.StartTls. The transport flushes the 220, drops any
// input it still keeps, and moves the connection into stream mode: an SslStream over a NetworkStream on
// the same socket, AuthenticateAsServerAsync, then IConnectionHandler.OnTlsEstablished; from then on a
// receive is a ReadAsync on the SslStream (zero-byte waits included) and a send a WriteAsync. Everything
// above, the Running word, the drive loop's order of checks, the input/output buffers and every handler
// callback, stays as it is: only PostReceive/PostSend and their completion sources change.
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport;

internal sealed partial class Connection : IThreadPoolWorkItem, IConnectionControl
{
    // The state word: generation << 32 | signals | Running.
    private const long Running = 1;
    private const long SignalReceived = 1 << 1;
    private const long SignalSent = 1 << 2;
    private const long SignalResume = 1 << 3;
    internal const long SignalTimer = 1 << 4;
    internal const long SignalShutdown = 1 << 5;
    internal const long SignalAbort = 1 << 6;
    private const long SignalContinue = 1 << 7;
    private const long SignalHandshake = 1 << 8;
    internal const long SignalShorten = 1 << 9;
    private const long SignalMask = 0x3FE;

    internal enum PostResult { Stale, Posted, MustRun }

    private readonly TransportServer _server;
    private readonly SocketAsyncEventArgs _receiveArgs;
    private readonly SocketAsyncEventArgs _sendArgs;
    private readonly OutputBuffer _output;
    private long _state;

    // Read by the timer thread (under the table lock); written by the owner.
    private long _deadline;

    // Everything below belongs to whoever holds Running.
    private Socket? _socket;
    private IConnectionHandler? _handler;
    private IPEndPoint? _peer;
    private IPAddress? _admittedAddress;
    private bool _admitted;
    private long _id;
    private int _slot;
    private int _idleTimeoutMs;
    private long _lingerDeadline;

    private byte[]? _input;
    private int _inputStart;
    private int _inputEnd;
    private byte[]? _sending;
    private int _sendOffset;
    private int _sendEnd;

    private bool _receivePending;
    private bool _receiveZeroByte;
    private bool _dataReady;
    private bool _inputOffered;
    private bool _sendPending;
    private bool _paused;
    private bool _resumeRequested;
    private bool _closeRequested;
    private bool _shutdownRequested;
    private bool _shutdownDelivered;
    private bool _timedOut;
    private bool _draining;
    private bool _closed;

    public Connection(TransportServer server)
    {
        _server = server;
        _output = new OutputBuffer(server.Buffers, server.MaxOutputBytes);
        _receiveArgs = new SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true) { UserToken = this };
        _receiveArgs.Completed += static (_, e) => ((Connection)e.UserToken!).OnIoCompleted(SignalReceived);
        _sendArgs = new SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true) { UserToken = this };
        _sendArgs.Completed += static (_, e) => ((Connection)e.UserToken!).OnIoCompleted(SignalSent);
    }

    internal long Deadline => Volatile.Read(ref _deadline);

    /// <summary>Sets a signal for the given generation; says whether the caller now owns the connection.</summary>
    internal PostResult Post(int generation, long signal)
    {
        while (true)
        {
            long old = Volatile.Read(ref _state);
            if ((int)(old >> 32) != generation)
            {
                return PostResult.Stale;
            }
            if (Interlocked.CompareExchange(ref _state, old | signal | Running, old) == old)
            {
                return (old & Running) == 0 ? PostResult.MustRun : PostResult.Posted;
            }
        }
    }

    /// <summary>Posts from a thread that must not run protocol code (spool, timer, stop): the drive goes to the pool.</summary>
    internal PostResult PostFromOutside(int generation, long signal)
    {
        PostResult result = Post(generation, signal);
        if (result == PostResult.MustRun)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
        return result;
    }

    // Resume drives the connection on the calling thread when nobody else owns it: the spool's writer,
    // which completes commits, then sends the 250 itself. Queueing the drive to the pool instead cost a
    // pool-thread wakeup per batch (README, "Performance work": 10 context switches per message against 3). A turn that would
    // run long (many synchronous receives) still yields to the pool (Drive).
    public bool RequestResume(int generation)
    {
        PostResult result = Post(generation, SignalResume);
        if (result == PostResult.MustRun)
        {
            RunSignals(drive: false);
        }
        return result != PostResult.Stale;
    }

    public void SetIdleTimeout(int generation, TimeSpan timeout)
    {
        if ((int)(Volatile.Read(ref _state) >> 32) == generation)
        {
            _idleTimeoutMs = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
        }
    }

    // Queued by PostFromOutside or by a yield (SignalContinue): signals first, so the timer's is seen
    // before a drive re-arms the deadline.
    void IThreadPoolWorkItem.Execute() => RunSignals(drive: false);

    private void OnIoCompleted(long signal)
    {
        // Guarded: an exception escaping a completion callback would end the process.
        try
        {
            if (Post((int)(Volatile.Read(ref _state) >> 32), signal) == PostResult.MustRun)
            {
                RunSignals(drive: false);
            }
        }
        catch (Exception exception)
        {
            _server.Log.InternalError(exception);
        }
    }

    /// <summary>Owner loop: take the posted signals, act on them, drive; give up Running only when none
    /// are left. A yield keeps Running and continues on a pool thread.</summary>
    private void RunSignals(bool drive)
    {
        try
        {
            while (true)
            {
                if (drive)
                {
                    DriveResult result = Drive();
                    if (result == DriveResult.Released)
                    {
                        return; // this object may already belong to another connection
                    }
                    if (result == DriveResult.Yielded)
                    {
                        // Keep Running; the continue bit makes the queued turn drive again.
                        Interlocked.Or(ref _state, SignalContinue);
                        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
                        return;
                    }
                }
                long signals;
                while (true)
                {
                    long old = Volatile.Read(ref _state);
                    signals = old & SignalMask;
                    if (signals == 0)
                    {
                        if (Interlocked.CompareExchange(ref _state, old & ~Running, old) == old)
                        {
                            return;
                        }
                    }
                    else if (Interlocked.CompareExchange(ref _state, old & ~SignalMask, old) == old)
                    {
                        break;
                    }
                }
                Process(signals);
                drive = true;
            }
        }
        catch (Exception exception)
        {
            // A transport bug. Close the socket so the peer is not left hanging; the object is not reused.
            _server.Log.InternalError(exception);
            try
            {
                _socket?.Dispose();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private void Process(long signals)
    {
        if ((signals & SignalReceived) != 0)
        {
            _receivePending = false;
            OnReceiveResult();
        }
        if ((signals & SignalSent) != 0)
        {
            _sendPending = false;
            OnSendResult();
        }
        if ((signals & SignalHandshake) != 0)
        {
            _handshakePending = false;
            OnHandshakeResult();
        }
        if ((signals & SignalResume) != 0)
        {
            _resumeRequested = true;
        }
        if ((signals & SignalShutdown) != 0)
        {
            _shutdownRequested = true;
        }
        if ((signals & SignalAbort) != 0)
        {
            Close();
        }
        if ((signals & SignalShorten) != 0)
        {
            ShortenRequestDeadline(); // Connection.Deadline.cs; the drive that follows re-reads the deadline
        }
        if ((signals & SignalTimer) != 0 && !_closed && _server.Clock.NowMs >= _deadline)
        {
            if (ProxyTimedOut())
            {
                // closed: the header was not whole by ProxyTimeout (Connection.Proxy.cs)
            }
            else if (_sendPending || _draining || _handshakePending)
            {
                // A client that stopped reading, a FIN that never came, or a TLS handshake that stalled.
                Interlocked.Increment(ref _server.Counters._timedOut);
                _handshakeTimedOut = _handshakePending; // the reason OnTlsFailed gives (Connection.Outbound.cs)
                Close();
            }
            // Bytes that arrived with the timer end an idle wait, not a request deadline that has passed
            // (Connection.Deadline.cs): late is late, or a client could race every sweep with one byte.
            else if ((_receivePending || RequestDeadlinePassed()) && !_paused && _handler is not null)
            {
                _timedOut = true;
                _requestDeadlineMs = NoRequestDeadline; // spent: the handler re-arms one if it goes on
                Volatile.Write(ref _deadline, long.MaxValue);
            }
        }
    }

    /// <summary>Gives everything back. The last thing done with this object for this generation.</summary>
    private void Release()
    {
        ReportProxyClosed();
        IConnectionHandler? handler = _handler;
        _handler = null;
        if (handler is not null)
        {
            try
            {
                handler.OnClosed();
                if (_outbound is null)
                {
                    _server.Factory.Return(handler); // an outbound handler is the caller's, not the factory's
                }
            }
            catch (Exception exception)
            {
                _server.Log.HandlerFaulted(_id, exception);
            }
        }
        ReturnInput();
        ReleaseTls();
        ReleaseOutbound();
        _output.Reset();
        if (_sending is not null)
        {
            _server.Buffers.Return(_sending);
            _sending = null;
        }
        _receiveArgs.SetBuffer(null, 0, 0);
        _sendArgs.SetBuffer(null, 0, 0);
        _socket = null;
        _receivePending = _receiveZeroByte = _dataReady = _inputOffered = _sendPending = false;
        _paused = _resumeRequested = _closeRequested = _shutdownRequested = _shutdownDelivered = false;
        _timedOut = _draining = _closed = _awaitingProxy = false;
        _peer = null;
        _deadline = long.MaxValue;
        _requestDeadlineMs = NoRequestDeadline;
        bool admitted = _admitted;
        IPAddress? address = _admittedAddress;
        _admittedAddress = null;
        _admitted = false;
        int slot = _slot;

        // Generation 0 is never handed out: every post for the closed connection is now stale.
        Interlocked.Exchange(ref _state, 0);
        if (admitted)
        {
            _server.ReleaseAdmission(address); // the global count, and the address's if it was admitted
        }
        _server.Table.Unregister(slot);
        _server.ReturnConnection(this);
    }
}
