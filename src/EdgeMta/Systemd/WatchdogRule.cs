// The service watchdog's decisions, pure: what $WATCHDOG_USEC and $WATCHDOG_PID ask for, how often to
// ping, and whether the spool writers' heartbeat is fresh enough to ping at all. No clock of its own:
// callers pass timestamps (TimeProvider.GetTimestamp units), so tests drive it with a fake clock.
//
// Why the heartbeat: systemd kills a service whose pings stop (WatchdogSec=). A ping from a timer alone
// would prove only that a timer runs; edgemta is stuck when its spool is stuck (a write that never returns:
// its sessions get 451 at the spool's deadline, but nothing more is stored), so the ping is withheld while
// the oldest running write began too long ago (MessageSpool.FlusherHeartbeat; now when none runs).
// Stale means older than half the watchdog interval, but never less than two heartbeat periods, so a quiet
// server is never called stuck.
namespace EdgeMta.Systemd;

internal readonly record struct WatchdogRule(TimeSpan Interval, TimeSpan HeartbeatPeriod)
{
    /// <summary>sd_watchdog_enabled(3): ping at half the interval, so one late ping is not a kill. Kept
    /// within 1 ms (a WATCHDOG_USEC of a few µs must not spin the thread) and int.MaxValue ms, the longest
    /// wait a wait handle takes (a WatchdogSec= of 50 days would otherwise throw on the watchdog thread
    /// and end the process); pinging more often than asked is harmless.</summary>
    public TimeSpan PingEvery => TimeSpan.FromMilliseconds(Math.Clamp((Interval / 2).TotalMilliseconds, 1, int.MaxValue));

    /// <summary>How old the spool's heartbeat may be for a ping to go out.</summary>
    public TimeSpan StaleAfter => Interval / 2 > HeartbeatPeriod * 2 ? Interval / 2 : HeartbeatPeriod * 2;

    /// <summary>True when a ping may go out now: the heartbeat is at most <see cref="StaleAfter"/> old. A
    /// heartbeat stamped after <paramref name="now"/> (read on another core) counts as fresh.</summary>
    public bool ShouldPing(long now, long heartbeat, long frequency) =>
        now - heartbeat <= (long)(StaleAfter.TotalSeconds * frequency);

    /// <summary>How long the heartbeat has been silent, for the log line.</summary>
    public static TimeSpan Silence(long now, long heartbeat, long frequency) =>
        TimeSpan.FromSeconds(Math.Max(0, now - heartbeat) / (double)frequency);

    /// <summary>
    /// The watchdog systemd asks this process for, or null: WATCHDOG_USEC unset (no WatchdogSec=), or
    /// WATCHDOG_PID naming another process (the variables were inherited, not meant for us). A value that
    /// is not a positive number of microseconds is a <paramref name="problem"/> to report, and no watchdog.
    /// </summary>
    public static TimeSpan? Requested(string? usec, string? pid, int ownPid, out string? problem)
    {
        problem = null;
        if (string.IsNullOrEmpty(usec)) return null;
        if (!string.IsNullOrEmpty(pid))
        {
            if (!int.TryParse(pid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) || p <= 0)
            {
                problem = $"WATCHDOG_PID={pid} is not a process id";
                return null;
            }
            if (p != ownPid) return null;
        }
        // At least 2 µs, so the half period is not zero; at most what TimeSpan holds.
        if (!ulong.TryParse(usec, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong us)
            || us < 2 || us > (ulong)(TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMicrosecond))
        {
            problem = $"WATCHDOG_USEC={usec} is not a number of microseconds";
            return null;
        }
        return TimeSpan.FromMicroseconds((long)us);
    }
}
