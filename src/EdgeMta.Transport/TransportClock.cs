// Contract: the transport's monotonic time, in milliseconds, for deadlines (idle, send, linger, TLS
// handshake) and the sweep that checks them (ConnectionTable.cs), and the one-shot timer of an outbound
// connect (OutboundConnect.cs).
//
// With TimeProvider.System, the default, it reads Environment.TickCount64 as the transport always did: a
// vDSO read of the coarse monotonic clock, nothing more on the per-receive path. Any other provider (a
// test's fake clock) is asked for its timestamp and creates the sweep timer, so a test advances time
// instead of sleeping. It does not read wall-clock time, and never goes backwards with a monotonic provider.
namespace EdgeMta.Transport;

internal readonly struct TransportClock
{
    private readonly TimeProvider? _provider; // null: the system clock, read through TickCount64

    public TransportClock(TimeProvider provider)
    {
        _provider = ReferenceEquals(provider, TimeProvider.System) ? null : provider;
    }

    /// <summary>Milliseconds on a monotonic scale (the origin means nothing; only differences do).</summary>
    public long NowMs
    {
        get
        {
            if (_provider is null) return Environment.TickCount64;
            long ticks = _provider.GetTimestamp();
            long frequency = _provider.TimestampFrequency;
            // Split so that ticks * 1000 cannot overflow whatever the frequency.
            return ticks / frequency * 1000 + ticks % frequency * 1000 / frequency;
        }
    }

    /// <summary>A periodic timer on this clock (a fake provider fires it when its time is advanced).</summary>
    public ITimer CreateTimer(TimerCallback callback, object state, TimeSpan period) =>
        (_provider ?? TimeProvider.System).CreateTimer(callback, state, period, period);

    /// <summary>A timer that fires once, after <paramref name="due"/> (an outbound connect's timeout).</summary>
    public ITimer CreateOneShot(TimerCallback callback, object state, TimeSpan due) =>
        (_provider ?? TimeProvider.System).CreateTimer(callback, state, due, Timeout.InfiniteTimeSpan);
}
