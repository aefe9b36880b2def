// Contract: one connection of the InMemoryTransport (its contract is there): the state the real
// Connection keeps, under one lock, and the drive loop that runs the handler's callbacks in the real
// Connection.Drive order (close, resume, shutdown, timeout, input), one driver at a time.
// Waits are bounded: WaitFor returns false when its timeout passes, so a hang fails the test.
using System.Buffers;
using System.Net;
using System.Text;
using EdgeMta.Transport;

namespace EdgeMta.TestKit;

public sealed partial class InMemoryConnection : IConnectionControl
{
    private const int Generation = 1; // each connection is a new object: no generation is ever reused

    private readonly InMemoryTransport _transport;
    private readonly object _gate = new();
    private readonly ArrayBufferWriter<byte> _output = new();
    private readonly List<byte> _input = [];
    private readonly StringBuilder _sent = new();
    private IConnectionHandler? _handler;
    private int _taken;
    private bool _driving;
    private bool _inputOffered;
    private bool _paused;
    private bool _resumeRequested;
    private long _resumes;
    private bool _shutdownRequested;
    private bool _shutdownDelivered;
    private bool _timedOut;
    private bool _closeRequested;
    private bool _peerGone;
    private bool _returnOnClose = true;
    private bool _closed;
    private bool _returned;
    private long _deadline = long.MaxValue;
    private TimeSpan _idleTimeout;

    internal InMemoryConnection(InMemoryTransport transport, long id, IPEndPoint remote)
    {
        _transport = transport;
        _idleTimeout = transport.DefaultIdleTimeout;
        Info = new ConnectionInfo(this, Generation, id, remote, new IPEndPoint(IPAddress.Loopback, 25));
    }

    /// <summary>What the handler was given at OnOpened.</summary>
    public ConnectionInfo Info { get; }

    /// <summary>The handler serving this connection (null only before it opened).</summary>
    public IConnectionHandler? Handler => _handler;

    /// <summary>Every reply sent so far (Latin-1 text).</summary>
    public string Replies { get { lock (_gate) return _sent.ToString(); } }

    public bool IsPaused { get { lock (_gate) return _paused; } }

    /// <summary>OnClosed was called.</summary>
    public bool IsClosed { get { lock (_gate) return _closed; } }

    /// <summary>The handler was given back to the factory (Return).</summary>
    public bool HandlerReturned { get { lock (_gate) return _returned; } }

    /// <summary>The idle timeout the handler asked for last.</summary>
    public TimeSpan IdleTimeout { get { lock (_gate) return _idleTimeout; } }

    /// <summary>Bytes received and not consumed by the handler yet.</summary>
    public int PendingInput { get { lock (_gate) return _input.Count; } }

    /// <summary>The exception a callback threw (the connection was closed for it), if any.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>The client sends these bytes (one receive).</summary>
    public void Send(string text) => Send(Encoding.Latin1.GetBytes(text));

    public void Send(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            if (_closed || _peerGone) throw new InvalidOperationException("sending on a closed connection");
            _input.AddRange(bytes);
            _inputOffered = false;
            CreditTransfer(bytes.Length);
        }
        Drive();
    }

    /// <summary>The replies sent since the last call.</summary>
    public string TakeReplies()
    {
        lock (_gate)
        {
            string text = _sent.ToString(_taken, _sent.Length - _taken);
            _taken = _sent.Length;
            return text;
        }
    }

    /// <summary>The client goes away (a reset): the transport calls OnClosed, even while paused, and then gives
    /// the handler back to the factory unless <paramref name="returnHandler"/> is false (then <see cref="ReturnHandler"/>
    /// does it: the real transport may be interrupted between the two by another thread).</summary>
    public void Disconnect(bool returnHandler = true)
    {
        lock (_gate)
        {
            _peerGone = true;
            _returnOnClose = returnHandler;
        }
        Drive();
    }

    /// <summary>The transport's Factory.Return after OnClosed, for a test that took that step apart.</summary>
    public void ReturnHandler()
    {
        lock (_gate)
        {
            if (!_closed || _returned) throw new InvalidOperationException("ReturnHandler needs a closed connection whose handler is not yet returned");
            _returned = true;
        }
        _transport.Factory.Return(_handler!);
    }

    /// <summary>Waits until <paramref name="condition"/> holds (checked after every step of the drive loop).
    /// False when <paramref name="timeout"/> passed first: real time, only to bound a wait on another thread.</summary>
    public bool WaitFor(Func<InMemoryConnection, bool> condition, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_gate)
        {
            while (!condition(this))
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0) return false;
                Monitor.Wait(_gate, (int)Math.Min(left, 100));
            }
            return true;
        }
    }

    bool IConnectionControl.RequestResume(int generation)
    {
        lock (_gate)
        {
            if (generation != Generation || _closed) return false;
            _resumes++;
            if (_paused) _resumeRequested = true;
        }
        Drive();
        return true;
    }

    void IConnectionControl.SetIdleTimeout(int generation, TimeSpan timeout)
    {
        lock (_gate)
        {
            if (generation == Generation) _idleTimeout = timeout;
        }
    }

    internal void Open()
    {
        _handler = _transport.Factory.Create();
        lock (_gate) _driving = true;
        Run(Step.Opened);
        lock (_gate) _driving = false;
        Drive();
    }

    internal void RequestShutdown()
    {
        lock (_gate) _shutdownRequested = true;
        Drive();
    }

    internal void CheckDeadline()
    {
        lock (_gate)
        {
            if (_closed || _paused || _transport.NowMs < _deadline) return;
            _timedOut = true;
            _deadline = long.MaxValue;
            _requestDeadlineMs = long.MaxValue; // spent, as the transport's
        }
        Drive();
    }

    private enum Step { None, Opened, Close, Resumed, Shutdown, TimedOut, Input, Writable, TlsEstablished, TlsFailed }

    private void Drive()
    {
        lock (_gate)
        {
            if (_driving) return; // the driver on another thread (or lower on this stack) sees the new state
            _driving = true;
        }
        try
        {
            for (int steps = 0; steps < 1_000_000; steps++)
            {
                Step step;
                lock (_gate)
                {
                    step = Next();
                    if (step == Step.None)
                    {
                        _driving = false;
                        Monitor.PulseAll(_gate);
                        return;
                    }
                }
                Run(step);
            }
            throw new InvalidOperationException("The drive loop did not settle in a million steps.");
        }
        catch
        {
            lock (_gate)
            {
                _driving = false;
                Monitor.PulseAll(_gate);
            }
            throw;
        }
    }

    // Under the lock: what to do next, in Connection.Drive's order of precedence.
    private Step Next()
    {
        if (_closed) return Step.None;
        if (_closeRequested || _peerGone) return Step.Close;
        Step outbound = NextOutbound();
        if (outbound != Step.None || _writePending) return outbound;
        if (_paused)
        {
            if (!_resumeRequested)
            {
                _deadline = long.MaxValue; // the commit waits for the spool, not the clock
                return Step.None;
            }
            _paused = false;
            _resumeRequested = false;
            RestartRequestClock();
            _inputOffered = false; // input kept while paused (QUIT after the dot) is offered again
            return Step.Resumed;
        }
        if (_shutdownRequested && !_shutdownDelivered)
        {
            _shutdownDelivered = true;
            return Step.Shutdown;
        }
        if (_timedOut)
        {
            _timedOut = false;
            return Step.TimedOut;
        }
        if (!_inputOffered && _input.Count > 0) return Step.Input;
        _deadline = WaitDeadline(); // waiting for input (InMemoryConnection.Deadline.cs)
        return Step.None;
    }

    // One step, outside the lock, by the one driver.
    private void Run(Step step)
    {
        IConnectionHandler handler = _handler!;
        if (step == Step.Close)
        {
            bool returnHandler;
            lock (_gate)
            {
                _closed = true;
                returnHandler = _returnOnClose;
                _returned = returnHandler;
            }
            handler.OnClosed();
            if (returnHandler) _transport.Factory.Return(handler);
            return;
        }
        if (step == Step.Input)
        {
            OfferInput(handler);
            return;
        }
        if (step == Step.TlsFailed)
        {
            RunTlsFailed(handler);
            return;
        }
        long resumesBefore;
        lock (_gate) resumesBefore = _resumes;
        HandlerStatus status;
        try
        {
            status = step switch
            {
                Step.Opened => handler.OnOpened(Info, _output),
                Step.Resumed => handler.OnResumed(_output),
                Step.Shutdown => handler.OnShutdown(_output),
                Step.Writable => ((IOutboundHandler)handler).OnWritable(_output),
                Step.TlsEstablished => handler.OnTlsEstablished(_output),
                _ => handler.OnTimedOut(_output),
            };
        }
        catch (Exception exception)
        {
            Faulted(exception);
            return;
        }
        Transmit();
        Apply(status, resumesBefore);
    }

    // One pass over the received bytes, as Connection.OfferInput: offered again while the handler consumes and continues.
    private void OfferInput(IConnectionHandler handler)
    {
        while (true)
        {
            byte[] input;
            long resumesBefore;
            lock (_gate)
            {
                if (_input.Count == 0) return;
                input = [.. _input];
                _inputOffered = true;
                resumesBefore = _resumes;
            }
            HandlerStatus status;
            int consumed;
            try
            {
                status = handler.OnReceived(input, _output, out consumed);
                if ((uint)consumed > (uint)input.Length)
                {
                    throw new InvalidOperationException($"The handler consumed {consumed} of {input.Length} bytes.");
                }
            }
            catch (Exception exception)
            {
                Faulted(exception);
                return;
            }
            lock (_gate) _input.RemoveRange(0, consumed);
            Transmit();
            Apply(status, resumesBefore);
            if (status != HandlerStatus.Continue || consumed == 0) return;
        }
    }

    private void Apply(HandlerStatus status, long resumesBefore)
    {
        lock (_gate)
        {
            switch (status)
            {
                case HandlerStatus.Pause:
                    _paused = true;
                    StopRequestClock();
                    // A Resume during the callback that answered Pause counts (the transport's contract).
                    _resumeRequested = _resumes != resumesBefore;
                    break;
                case HandlerStatus.Close:
                    _closeRequested = true;
                    break;
                case HandlerStatus.StartTls when _handler is IOutboundHandler outbound:
                    StartClientTls(outbound);
                    break;
                case HandlerStatus.StartTls:
                    Fault = new NotSupportedException("The in-memory transport has no TLS.");
                    _closeRequested = true;
                    break;
                case HandlerStatus.WriteMore when _handler is IOutboundHandler:
                    _writePending = true;
                    break;
                case HandlerStatus.WriteMore:
                    Fault = new InvalidOperationException("WriteMore is for outbound handlers only.");
                    _closeRequested = true;
                    break;
            }
        }
    }

    private void Faulted(Exception exception)
    {
        lock (_gate)
        {
            Fault = exception;
            _closeRequested = true;
        }
    }

    // "Sends" what the callback wrote: it is the client's at once.
    private void Transmit()
    {
        lock (_gate)
        {
            if (_output.WrittenCount == 0) return;
            string text = Encoding.Latin1.GetString(_output.WrittenSpan);
            _sent.Append(text);
            _sends.Add(text);
            _output.ResetWrittenCount();
        }
    }
}
