// The request deadline of one connection (RequestDeadline.cs): armed by the handler, credited by received
// bytes when it bounds a transfer, stopped while paused, brought closer by a stress shortening, and read by
// the drive loop when the connection starts waiting for input. Everything here runs on the owner (the
// thread holding Running); the sweep only ever reads _deadline, which the drive loop computes from this.
namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    private const long NoRequestDeadline = long.MaxValue;

    // Absolute, on the transport clock; while paused it holds the time left instead (the pause is the
    // server's wait, not the client's: a spool commit or a backlog must not eat the client's time).
    private long _requestDeadlineMs = NoRequestDeadline;
    private int _requestTimeoutMs;
    private int _requestMinRate;

    public void SetRequestDeadline(int generation, RequestDeadline deadline)
    {
        if ((int)(Volatile.Read(ref _state) >> 32) != generation)
        {
            return;
        }
        if (deadline.Timeout <= TimeSpan.Zero)
        {
            _requestDeadlineMs = NoRequestDeadline;
            return;
        }
        _requestTimeoutMs = (int)Math.Clamp(deadline.Timeout.TotalMilliseconds, 1, int.MaxValue);
        _requestMinRate = deadline.MinBytesPerSecond;
        _requestDeadlineMs = _server.Clock.NowMs + _requestTimeoutMs; // a callback never runs while paused
    }

    /// <summary>When the wait for input that starts now ends: the idle timeout from now, or the request
    /// deadline if that comes first.</summary>
    private long WaitDeadline() => Math.Min(_server.Clock.NowMs + _idleTimeoutMs, _requestDeadlineMs);

    private bool RequestDeadlinePassed() => _requestDeadlineMs != NoRequestDeadline && _server.Clock.NowMs >= _requestDeadlineMs;

    /// <summary>A read of <paramref name="received"/> bytes during a transfer: N / rate seconds more, capped at
    /// the transfer's timeout from now (Postfix smtpd_min_data_rate; integer milliseconds, rounding down).</summary>
    private void CreditTransfer(int received)
    {
        if (_requestMinRate == 0 || _requestDeadlineMs == NoRequestDeadline || _paused)
        {
            return;
        }
        long now = _server.Clock.NowMs;
        _requestDeadlineMs = Math.Min(_requestDeadlineMs + received * 1000L / _requestMinRate, now + _requestTimeoutMs);
    }

    /// <summary>The handler paused the connection: keep the time left, not the instant.</summary>
    private void StopRequestClock()
    {
        if (_requestDeadlineMs != NoRequestDeadline)
        {
            _requestDeadlineMs = Math.Max(0, _requestDeadlineMs - _server.Clock.NowMs);
        }
    }

    /// <summary>The pause ended: the time left counts from now.</summary>
    private void RestartRequestClock()
    {
        if (_requestDeadlineMs != NoRequestDeadline)
        {
            _requestDeadlineMs += _server.Clock.NowMs;
        }
    }

    /// <summary>A stress shortening: a request (not a transfer, not a paused connection) must now end within the
    /// server's shortened timeout from now, if its own deadline is later.</summary>
    private void ShortenRequestDeadline()
    {
        if (_requestMinRate != 0 || _requestDeadlineMs == NoRequestDeadline || _paused || _closed)
        {
            return;
        }
        _requestDeadlineMs = Math.Min(_requestDeadlineMs, _server.Clock.NowMs + _server.ShortenedRequestMs);
    }
}
