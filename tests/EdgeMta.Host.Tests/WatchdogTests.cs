// The watchdog's rules (WatchdogRule, ServiceWatchdog.Tick) under a fake clock: pings at half the interval,
// only while the spool writers' heartbeat is fresh, and what WATCHDOG_USEC / WATCHDOG_PID ask for.
using EdgeMta.Systemd;

namespace EdgeMta.Host.Tests;

public class WatchdogTests
{
    private static readonly TimeSpan HeartbeatPeriod = TimeSpan.FromSeconds(1);

    [Fact]
    public void PingsAtHalfTheInterval()
    {
        Assert.Equal(TimeSpan.FromSeconds(15), new WatchdogRule(TimeSpan.FromSeconds(30), HeartbeatPeriod).PingEvery);
        Assert.Equal(TimeSpan.FromMilliseconds(100), new WatchdogRule(TimeSpan.FromMilliseconds(200), HeartbeatPeriod).PingEvery);
    }

    [Fact]
    public void AHeartbeatIsStaleAfterHalfTheIntervalButNeverBeforeTwoHeartbeatPeriods()
    {
        // WatchdogSec=30: a spool write running for more than 15 s is stuck.
        Assert.Equal(TimeSpan.FromSeconds(15), new WatchdogRule(TimeSpan.FromSeconds(30), HeartbeatPeriod).StaleAfter);
        // A 200 ms watchdog would call an idle flusher (one stamp a second) stuck; two periods are allowed.
        Assert.Equal(TimeSpan.FromSeconds(2), new WatchdogRule(TimeSpan.FromMilliseconds(200), HeartbeatPeriod).StaleAfter);
    }

    [Fact]
    public void PingsWhileTheHeartbeatIsFreshAndNotOnceItIsStale()
    {
        var time = new FakeTime();
        var rule = new WatchdogRule(TimeSpan.FromSeconds(30), HeartbeatPeriod);
        long heartbeat = time.GetTimestamp();
        Assert.True(rule.ShouldPing(time.GetTimestamp(), heartbeat, time.TimestampFrequency));
        time.Advance(TimeSpan.FromSeconds(15));
        Assert.True(rule.ShouldPing(time.GetTimestamp(), heartbeat, time.TimestampFrequency));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(rule.ShouldPing(time.GetTimestamp(), heartbeat, time.TimestampFrequency));
        // A stamp taken on another core a moment after `now` was read is fresh, not stale.
        Assert.True(rule.ShouldPing(time.GetTimestamp(), time.GetTimestamp() + 5, time.TimestampFrequency));
    }

    [Fact]
    public void TheWatchdogWithholdsPingsWhileTheFlusherIsSilentAndSaysSoOnce()
    {
        var time = new FakeTime();
        using var systemd = new NotifyListener();
        var errors = new StringWriter();
        using var notifier = ServiceNotifier.Create(systemd.Address, errors);
        long heartbeat = time.GetTimestamp();
        using var watchdog = new ServiceWatchdog(notifier, new WatchdogRule(TimeSpan.FromSeconds(4), HeartbeatPeriod), () => heartbeat, time, errors);

        Assert.True(watchdog.Tick());
        Assert.Equal("WATCHDOG=1", systemd.Receive());

        // The flusher stamps no more (stuck in a flush): fresh for 2 s, then no ping, whatever the ticks.
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(watchdog.Tick());
        Assert.Equal("WATCHDOG=1", systemd.Receive());
        for (int i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(2));
            Assert.False(watchdog.Tick());
        }
        Assert.False(systemd.HasPending);
        Assert.Equal(1, errors.ToString().Split('\n').Count(l => l.Contains("not returned for 4.0 s", StringComparison.Ordinal)));

        // It beats again: pings resume, and one line says so.
        heartbeat = time.GetTimestamp();
        Assert.True(watchdog.Tick());
        Assert.Equal("WATCHDOG=1", systemd.Receive());
        Assert.Contains("writes return again", errors.ToString(), StringComparison.Ordinal);
        Assert.Equal(3, watchdog.Pings);
    }

    [Theory]
    [InlineData(null, null, null)]            // no WatchdogSec=
    [InlineData("", null, null)]
    [InlineData("30000000", null, 30_000_000L)]
    [InlineData("200000", "4242", 200_000L)]  // WATCHDOG_PID is us
    [InlineData("200000", "4243", null)]      // inherited from a parent: not ours
    public void TheWatchdogIsWhatTheVariablesAskForThisProcess(string? usec, string? pid, long? expectedMicroseconds)
    {
        TimeSpan? interval = WatchdogRule.Requested(usec, pid, ownPid: 4242, out string? problem);
        Assert.Null(problem);
        Assert.Equal(expectedMicroseconds, interval is { } i ? (long)i.TotalMicroseconds : null);
    }

    [Theory]
    [InlineData("abc", null)]
    [InlineData("-5", null)]
    [InlineData("1", null)]
    [InlineData("99999999999999999999999", null)]
    [InlineData("200000", "x")]
    public void VariablesThatDoNotParseAreAProblemAndNoWatchdog(string usec, string? pid)
    {
        Assert.Null(WatchdogRule.Requested(usec, pid, ownPid: 4242, out string? problem));
        Assert.NotNull(problem);
    }

    [Theory]
    [InlineData(2L, 1.0)]                                  // 2 µs: not a 0 ms wait, which would spin
    [InlineData(30_000_000L, 15_000.0)]                    // the unit's 30 s: every 15 s
    [InlineData(5_000_000_000_000L, int.MaxValue)]         // 58 days: past what a wait handle takes
    public void ThePingPeriodIsHalfTheIntervalWithinWhatAWaitTakes(long usec, double expectedMilliseconds)
    {
        var rule = new WatchdogRule(TimeSpan.FromMicroseconds(usec), TimeSpan.FromSeconds(1));
        Assert.Equal(expectedMilliseconds, rule.PingEvery.TotalMilliseconds);
        // The watchdog thread waits with exactly this: a set event returns at once, after the same argument
        // check that throws (on the watchdog thread, ending the process) for a wait past int.MaxValue ms.
        using var set = new ManualResetEventSlim(true);
        Assert.True(set.Wait(rule.PingEvery));
    }
}
