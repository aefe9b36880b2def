// Contract: the request deadline of an in-memory connection, with the real transport's rules
// (src/EdgeMta.Transport/Connection.Deadline.cs): armed by the handler, never moved by received bytes
// except a transfer's credit of N / rate seconds per Send of N bytes (capped at its timeout from that Send),
// stopped while paused, spent when it fires, brought closer by InMemoryTransport.ShortenRequestDeadlines.
// A wait ends at the earlier of the idle timeout and this deadline. What it does not do: round to the
// sweep's second (the real transport's resolution), beyond what the one-second sweep already does.
using EdgeMta.Transport;

namespace EdgeMta.TestKit;

public sealed partial class InMemoryConnection
{
    private long _requestDeadlineMs = long.MaxValue; // while paused: the time left
    private long _requestTimeoutMs;
    private int _requestMinRate;

    /// <summary>Milliseconds left of the request deadline now (null: none armed), for assertions.</summary>
    public long? RequestDeadlineLeftMs
    {
        get
        {
            lock (_gate)
            {
                if (_requestDeadlineMs == long.MaxValue) return null;
                return _paused ? _requestDeadlineMs : _requestDeadlineMs - _transport.NowMs;
            }
        }
    }

    void IConnectionControl.SetRequestDeadline(int generation, RequestDeadline deadline)
    {
        lock (_gate)
        {
            if (generation != Generation) return;
            if (deadline.Timeout <= TimeSpan.Zero)
            {
                _requestDeadlineMs = long.MaxValue;
                return;
            }
            _requestTimeoutMs = (long)deadline.Timeout.TotalMilliseconds;
            _requestMinRate = deadline.MinBytesPerSecond;
            _requestDeadlineMs = _transport.NowMs + _requestTimeoutMs;
        }
    }

    // Under the lock, each: the hooks the drive loop and Send call.
    private long WaitDeadline() => Math.Min(_transport.NowMs + (long)_idleTimeout.TotalMilliseconds, _requestDeadlineMs);

    private void CreditTransfer(int received)
    {
        if (_requestMinRate == 0 || _requestDeadlineMs == long.MaxValue || _paused) return;
        _requestDeadlineMs = Math.Min(_requestDeadlineMs + received * 1000L / _requestMinRate, _transport.NowMs + _requestTimeoutMs);
    }

    private void StopRequestClock()
    {
        if (_requestDeadlineMs != long.MaxValue) _requestDeadlineMs = Math.Max(0, _requestDeadlineMs - _transport.NowMs);
    }

    private void RestartRequestClock()
    {
        if (_requestDeadlineMs != long.MaxValue) _requestDeadlineMs += _transport.NowMs;
    }

    internal void ShortenRequestDeadline(long atMostMs)
    {
        lock (_gate)
        {
            if (_requestMinRate != 0 || _requestDeadlineMs == long.MaxValue || _paused || _closed) return;
            _requestDeadlineMs = Math.Min(_requestDeadlineMs, _transport.NowMs + atMostMs);
            if (!_driving) _deadline = WaitDeadline(); // waiting for input: the sweep sees the new bound
        }
    }
}
