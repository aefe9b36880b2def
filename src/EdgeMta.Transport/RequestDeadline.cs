// Contract: how long a client may take to deliver one request, whatever it sends meanwhile.
//
// An idle timeout that restarts on every received byte bounds nothing: a client sending one byte every
// 20 s holds its connection for ever. A request deadline is armed by the handler when it starts waiting
// for a request (a command line, or message text) and received bytes do not move it; it is Postfix's
// smtpd_per_request_deadline (postconf(5): "a time limit to send or receive a complete record"). A
// transfer (message text) earns time as it arrives: each read of N bytes adds N / MinBytesPerSecond
// seconds, never past Timeout from the read, which is Postfix's smtpd_min_data_rate rule, so a large
// message at a decent rate is never cut while a trickle is.
//
// What it is not: a protocol rule. The transport never decides when a request starts or ends (the
// handler re-arms, ConnectionInfo.SetRequestDeadline); it only keeps the clock, credits received bytes,
// stops the clock while the handler has paused the connection, and calls OnTimedOut when it runs out.
// A wait is bounded by whichever comes first, the request deadline or the handler's idle timeout.
namespace EdgeMta.Transport;

/// <summary>A bound on the time to deliver one request (<see cref="ConnectionInfo.SetRequestDeadline"/>).</summary>
public readonly struct RequestDeadline
{
    private RequestDeadline(TimeSpan timeout, int minBytesPerSecond)
    {
        Timeout = timeout;
        MinBytesPerSecond = minBytesPerSecond;
    }

    /// <summary>No request deadline: only the idle timeout bounds a wait (the default).</summary>
    public static RequestDeadline None => default;

    /// <summary>
    /// A request (a command line): complete within <paramref name="timeout"/> from now, bytes or no bytes.
    /// <see cref="TransportServer.ShortenRequestDeadlines"/> may bring it closer (a server under stress).
    /// </summary>
    public static RequestDeadline Request(TimeSpan timeout) => new(Positive(timeout), 0);

    /// <summary>
    /// A transfer (message text): <paramref name="timeout"/> from now, plus N / <paramref name="minBytesPerSecond"/>
    /// seconds for each read of N bytes, never more than <paramref name="timeout"/> from that read. A stress
    /// shortening leaves it alone: its rate already bounds it.
    /// </summary>
    public static RequestDeadline Transfer(TimeSpan timeout, int minBytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minBytesPerSecond, 1);
        return new(Positive(timeout), minBytesPerSecond);
    }

    /// <summary>From the moment it is set; zero for <see cref="None"/>.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Bytes per second a transfer must keep up; 0 for a request.</summary>
    public int MinBytesPerSecond { get; }

    private static TimeSpan Positive(TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        return timeout;
    }
}
