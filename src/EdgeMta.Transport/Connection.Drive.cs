// The drive loop: what a connection does next, in a fixed order of precedence. Runs only while the
// caller holds Running; loops over synchronous completions instead of recursing into them.
namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    /// <summary>Receives completed synchronously in one turn before the connection yields its thread:
    /// a client that sends faster than we read must not hold a thread (with inline completions, the
    /// epoll thread every other connection needs) forever. 16 x 16 KiB = 256 KiB a turn.</summary>
    private const int SynchronousReceivesPerTurn = 16;

    private enum DriveResult { Waiting, Released, Yielded }

    /// <summary>Does everything that can be done now, and says why it stopped.</summary>
    private DriveResult Drive()
    {
        int receivesLeft = SynchronousReceivesPerTurn;
        while (true)
        {
            if (_closed)
            {
                // Released only when the socket engine holds none of our buffers any more.
                if (_receivePending || _sendPending || _handshakePending)
                {
                    return DriveResult.Waiting;
                }
                Release();
                return DriveResult.Released;
            }
            if (_sendPending)
            {
                return DriveResult.Waiting; // back-pressure: nothing else until the send completes (deadline set by PostSend)
            }
            if (_handshakePending)
            {
                return DriveResult.Waiting; // deadline set by BeginTlsHandshake
            }
            if (_sending is not null)
            {
                PostSend();
                continue;
            }
            if (_output.Written > 0)
            {
                _sending = _output.Detach(out _sendEnd);
                _sendOffset = 0;
                continue;
            }
            if (_tlsRequested)
            {
                BeginTlsHandshake(); // the 220 is out; nothing was read since
                continue;
            }
            if (_draining)
            {
                if (_receivePending)
                {
                    Volatile.Write(ref _deadline, _lingerDeadline);
                    return DriveResult.Waiting;
                }
                PostReceive();
                continue;
            }
            if (_closeRequested)
            {
                BeginDrain();
                continue;
            }
            if (_awaitingProxy)
            {
                if (DriveProxyPhase(ref receivesLeft) is DriveResult result)
                {
                    return result;
                }
                continue;
            }
            if (_writeMore)
            {
                // All of the last chunk has left. Budgeted like receives: a stream whose sends complete at
                // once must not hold this thread for the whole message.
                if (--receivesLeft < 0)
                {
                    return DriveResult.Yielded;
                }
                InvokeWritable();
                continue;
            }
            if (_tlsEstablished)
            {
                _tlsEstablished = false;
                Invoke(Callback.TlsEstablished);
                continue;
            }
            if (_paused)
            {
                if (!_resumeRequested)
                {
                    ParkInput(); // a paused connection holds no pooled buffer (Connection.Park.cs)
                    Volatile.Write(ref _deadline, long.MaxValue); // the data phase waits for the spool, not the clock
                    return DriveResult.Waiting;
                }
                _paused = false;
                _resumeRequested = false;
                UnparkInput(); // the kept bytes, back before anything is offered
                RestartRequestClock();
                _inputOffered = false; // input kept while paused (e.g. QUIT after the dot) is offered again
                Invoke(Callback.Resumed);
                continue;
            }
            if (_shutdownRequested && !_shutdownDelivered && _handler is not null)
            {
                _shutdownDelivered = true;
                Invoke(Callback.Shutdown);
                continue;
            }
            if (_timedOut)
            {
                _timedOut = false;
                Invoke(Callback.TimedOut);
                continue;
            }
            if (!_inputOffered && _inputEnd > _inputStart)
            {
                OfferInput();
                continue;
            }
            if (_receivePending)
            {
                // Bytes received since the last wait do not move a request deadline (Connection.Deadline.cs).
                Volatile.Write(ref _deadline, WaitDeadline());
                return DriveResult.Waiting;
            }
            if (--receivesLeft < 0)
            {
                return DriveResult.Yielded;
            }
            PostReceive();
        }
    }

    private enum Callback { Resumed, Shutdown, TimedOut, TlsEstablished }

    private void Invoke(Callback callback)
    {
        try
        {
            IConnectionHandler handler = _handler!;
            Apply(callback switch
            {
                Callback.Resumed => handler.OnResumed(_output),
                Callback.Shutdown => handler.OnShutdown(_output),
                Callback.TlsEstablished => handler.OnTlsEstablished(_output),
                _ => handler.OnTimedOut(_output),
            });
        }
        catch (Exception exception)
        {
            Fault(exception);
        }
    }

    /// <summary>One pass over the received bytes: offer them while the handler consumes and continues.
    /// Everything written during the pass leaves in one send.</summary>
    private void OfferInput()
    {
        while (true)
        {
            int available = _inputEnd - _inputStart;
            HandlerStatus status;
            int consumed;
            try
            {
                status = _handler!.OnReceived(new ReadOnlySpan<byte>(_input, _inputStart, available), _output, out consumed);
            }
            catch (Exception exception)
            {
                Fault(exception);
                return;
            }
            if ((uint)consumed > (uint)available)
            {
                Fault(new InvalidOperationException($"The handler consumed {consumed} of {available} bytes."));
                return;
            }
            _inputStart += consumed;
            if (_inputStart == _inputEnd)
            {
                ReturnInput(); // all consumed: the next wait is a zero-byte receive again
            }
            Apply(status);
            if (status != HandlerStatus.Continue || consumed == 0 || _input is null)
            {
                break;
            }
            if (_output.Written >= _server.MaxOutputBytes / 2)
            {
                // A handler answering a long pipelined batch a part at a time: send what it wrote before it
                // writes more, and offer the rest after the send (not marked offered, so the drive loop does).
                return;
            }
        }
        _inputOffered = true;
    }

    private void Apply(HandlerStatus status)
    {
        switch (status)
        {
            case HandlerStatus.Pause:
                _paused = true;
                StopRequestClock();
                // A Resume posted during the callback is still in the state word and is seen after
                // this; anything in this flag is from an earlier pause.
                _resumeRequested = false;
                break;
            case HandlerStatus.Close:
                _closeRequested = true;
                break;
            case HandlerStatus.StartTls:
                RequestTls();
                break;
            case HandlerStatus.WriteMore:
                RequestWriteMore();
                break;
        }
    }

    private void Fault(Exception exception)
    {
        Interlocked.Increment(ref _server.Counters._faulted);
        _server.Log.HandlerFaulted(_id, exception);
        Close();
    }
}
