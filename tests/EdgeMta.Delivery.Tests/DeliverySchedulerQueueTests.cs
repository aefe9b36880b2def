// DeliveryScheduler's queue commands (docs/DELIVERY.md "Queue commands": flush, hold, release, delete), expiry
// (--queue-lifetime, --bounce-lifetime for null senders), --delay-warning, recovered entries (FORMAT.md
// "Recovery": not the whole backlog in the first second) and UntilNextDue in each case, on a FakeClock.
using EdgeMta.Delivery;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

public class DeliverySchedulerQueueTests
{
    private readonly FakeClock _clock = new();

    /// <summary>An entry tried once and deferred by clamp(age, 300 s, 4000 s): due 300 s from now.</summary>
    private QueueEntry Deferred(DeliveryScheduler s)
    {
        var e = Sched.Entry(_clock);
        s.AddIncoming(e);
        Assert.True(s.TryTake(out var taken, out int hop));
        Assert.Same(e, taken);
        s.Finished(e, hop, hopWorked: true);
        return e;
    }

    [Fact]
    public void NothingQueuedMeansNoTimer()
    {
        var s = Sched.Exact(_clock);
        Assert.Null(s.UntilNextDue());
        Assert.False(s.TryTake(out _, out _));
        Assert.False(s.TryTakeExpired(out _));
        Assert.False(s.TryTakeDelayWarning(out _));
    }

    [Fact]
    public void AHeldEntryIsNeverDueAndReleaseMakesItDueIfItWasDue()
    {
        var s = Sched.Exact(_clock);
        var e = Deferred(s);
        Assert.True(s.Hold(e));
        Assert.True(e.Held);
        Assert.Equal(1, s.Held);
        // Held: no take, no expiry, nothing to wake up for.
        Assert.Null(s.UntilNextDue());
        _clock.Advance(TimeSpan.FromDays(10));
        Assert.False(s.TryTake(out _, out _));
        Assert.False(s.TryTakeExpired(out _));

        Assert.True(s.Release(e));
        Assert.Equal(0, s.Held);
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        // Its age now exceeds --queue-lifetime: released, it expires rather than being tried.
        Assert.True(s.TryTakeExpired(out var expired));
        Assert.Same(e, expired);
    }

    [Fact]
    public void ReleaseBeforeItsTimeKeepsItsTime()
    {
        var s = Sched.Exact(_clock);
        var e = Deferred(s);
        Assert.True(s.Hold(e));
        _clock.Advance(TimeSpan.FromSeconds(100));
        Assert.True(s.Release(e));
        Assert.Equal(TimeSpan.FromSeconds(200), s.UntilNextDue());
        Assert.False(s.TryTake(out _, out _));
    }

    [Fact]
    public void AnEntryHeldWhileInFlightStaysHeldAfterItsAttempt()
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock);
        s.AddIncoming(e);
        Assert.True(s.TryTake(out _, out int hop));
        Assert.True(s.Hold(e));
        s.Finished(e, hop, hopWorked: true);
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.False(s.TryTake(out _, out _));
        Assert.Equal(1, s.Held);
        Assert.True(s.Release(e));
        Assert.True(s.TryTake(out var again, out _));
        Assert.Same(e, again);
    }

    [Fact]
    public void FlushMakesADeferredEntryDueNowAndKeepsItsAttempts()
    {
        var s = Sched.Exact(_clock);
        var e = Deferred(s);
        Assert.Equal(TimeSpan.FromSeconds(300), s.UntilNextDue());
        Assert.True(s.Flush(e));
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        Assert.Equal(Sched.NowMs(_clock), e.NextAttemptUnixMs);
        Assert.Equal(1, e.Attempts);
        Assert.True(s.TryTake(out var taken, out _));
        Assert.Same(e, taken);
    }

    [Fact]
    public void FlushAllMovesEveryDeferredEntryAndAHeldOneOnlyOnRelease()
    {
        var s = Sched.Exact(_clock);
        var a = Deferred(s);
        var b = Deferred(s);
        var held = Deferred(s);
        Assert.True(s.Hold(held));
        s.AddIncoming(Sched.Entry(_clock));
        Assert.Equal(3, s.FlushAll());
        var taken = Sched.TakeAll(s).ConvertAll(t => t.Entry);
        Assert.Equal(3, taken.Count);
        Assert.Contains(a, taken);
        Assert.Contains(b, taken);
        Assert.DoesNotContain(held, taken);
        Assert.True(s.Release(held));
        Assert.True(s.TryTake(out var last, out _));
        Assert.Same(held, last);
    }

    [Fact]
    public void OperatorActionsOnAnUnknownEntryReturnFalse()
    {
        var s = Sched.Exact(_clock);
        var stranger = Sched.Entry(_clock);
        Assert.False(s.Flush(stranger));
        Assert.False(s.Hold(stranger));
        Assert.False(s.Release(stranger));
        Assert.False(s.Remove(stranger));
        Assert.False(stranger.Held);
    }

    [Fact]
    public void RemoveTakesAnEntryOutAndAnAttemptInFlightStillSettlesItsHop()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 1 });
        var gone = Deferred(s);
        Assert.True(s.Remove(gone));
        Assert.Equal(0, s.Count);
        Assert.Null(s.UntilNextDue());

        var running = Sched.Entry(_clock);
        var next = Sched.Entry(_clock);
        s.AddIncoming(running);
        s.AddIncoming(next);
        Assert.True(s.TryTake(out _, out int hop));
        Assert.True(s.Remove(running));
        Assert.False(s.TryTake(out _, out _));
        s.Finished(running, hop, hopWorked: true);
        Assert.False(running.InFlight);
        Assert.Equal(1, s.Count);
        Assert.True(s.TryTake(out var taken, out _));
        Assert.Same(next, taken);
    }

    [Theory]
    [InlineData(false, 5 * 24)]
    [InlineData(true, 2 * 24)]
    public void AnEntryExpiresAtItsLifetime(bool nullSender, int hours)
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock, nullSender: nullSender);
        s.AddIncoming(e);
        Assert.True(s.TryTake(out _, out int hop));
        s.Finished(e, hop, hopWorked: true);
        // Retried as it falls due until a millisecond before its lifetime; in flight it would not expire.
        var lifetime = TimeSpan.FromHours(hours);
        _clock.Advance(lifetime - TimeSpan.FromMilliseconds(1));
        while (s.TryTake(out var again, out hop)) s.Finished(again, hop, hopWorked: true);
        Assert.False(s.TryTakeExpired(out _));
        Assert.Equal(TimeSpan.FromMilliseconds(1), s.UntilNextDue());
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(s.TryTakeExpired(out var expired));
        Assert.Same(e, expired);
        Assert.Equal(0, s.Count);
        Assert.Null(s.UntilNextDue());
    }

    [Fact]
    public void TheExpiryIsTheNextDueWhenItComesBeforeTheRetry()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { QueueLifetime = TimeSpan.FromSeconds(100) });
        Deferred(s);
        Assert.Equal(TimeSpan.FromSeconds(100), s.UntilNextDue());
    }

    [Fact]
    public void AnAttemptInFlightDoesNotExpireUntilItIsOver()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { QueueLifetime = TimeSpan.FromSeconds(100) });
        var e = Sched.Entry(_clock);
        s.AddIncoming(e);
        Assert.True(s.TryTake(out _, out int hop));
        _clock.Advance(TimeSpan.FromSeconds(200));
        Assert.False(s.TryTakeExpired(out _));
        s.Finished(e, hop, hopWorked: true);
        Assert.True(s.TryTakeExpired(out var expired));
        Assert.Same(e, expired);
    }

    [Fact]
    public void ADelayWarningComesOnceAfterItsDelayAndNeverForANullSender()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { DelayWarning = TimeSpan.FromHours(4) });
        var warned = Sched.Entry(_clock);
        var bounce = Sched.Entry(_clock, nullSender: true);
        var noticeSent = Sched.Entry(_clock);
        noticeSent.DelayNoticeSent = true;
        s.AddIncoming(warned);
        s.AddIncoming(bounce);
        s.AddIncoming(noticeSent);
        foreach (var (e, hop) in Sched.TakeAll(s)) s.Finished(e, hop, hopWorked: true);

        _clock.Advance(TimeSpan.FromHours(4) - TimeSpan.FromMilliseconds(1));
        while (s.TryTake(out var e, out int hop)) s.Finished(e, hop, hopWorked: true);
        Assert.False(s.TryTakeDelayWarning(out _));
        Assert.Equal(TimeSpan.FromMilliseconds(1), s.UntilNextDue());
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(s.TryTakeDelayWarning(out var first));
        Assert.Same(warned, first);
        Assert.False(s.TryTakeDelayWarning(out _));
        Assert.Equal(3, s.Count);

        // Given out once, even before the agent records DelayNoticeSent: not after a hold, nor after an attempt.
        Assert.True(s.Hold(warned));
        Assert.True(s.Release(warned));
        Assert.True(s.Flush(warned));
        Assert.True(s.TryTake(out var e2, out int hop2));
        s.Finished(e2, hop2, hopWorked: true);
        Assert.False(s.TryTakeDelayWarning(out _));
    }

    [Fact]
    public void NoDelayWarningWhenItIsOff()
    {
        var s = Sched.Exact(_clock);
        Deferred(s);
        _clock.Advance(TimeSpan.FromDays(4));
        Assert.False(s.TryTakeDelayWarning(out _));
    }

    [Fact]
    public void RecoveredEntriesAreNotAllDueInTheFirstSecond()
    {
        var s = new DeliveryScheduler(new SchedulerOptions { Concurrency = 10_000 }, _clock, new Random(42));
        var dueTimes = new HashSet<long>();
        long start = Sched.NowMs(_clock);
        for (int i = 0; i < 1000; i++)
        {
            var e = Sched.Entry(_clock, TimeSpan.FromHours(1));
            e.NextAttemptUnixMs = start - 5000; // its recorded time has passed
            s.AddRecovered(e);
            Assert.InRange(e.NextAttemptUnixMs, start + 9000, start + 11000);
            dueTimes.Add(e.NextAttemptUnixMs);
        }
        Assert.True(dueTimes.Count > 100, $"only {dueTimes.Count} distinct due times");
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(s.TryTake(out _, out _));
        long first = dueTimes.Min();
        Assert.Equal(TimeSpan.FromMilliseconds(first - Sched.NowMs(_clock)), s.UntilNextDue());
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(1000, Sched.TakeAll(s).Count);
    }

    [Fact]
    public void ARecoveredEntryKeepsALaterRecordedTimeButNotOneBeyondTheLongestBackoff()
    {
        var s = Sched.Exact(_clock);
        long now = Sched.NowMs(_clock);
        var later = Sched.Entry(_clock);
        later.NextAttemptUnixMs = now + 600_000;
        var farFuture = Sched.Entry(_clock);
        farFuture.NextAttemptUnixMs = now + TimeSpan.FromDays(365).Ticks / TimeSpan.TicksPerMillisecond;
        s.AddRecovered(later);
        s.AddRecovered(farFuture);
        Assert.Equal(now + 600_000, later.NextAttemptUnixMs);
        Assert.Equal(now + 4_000_001, farFuture.NextAttemptUnixMs);
        Assert.Equal(TimeSpan.FromSeconds(600), s.UntilNextDue());
    }

    [Fact]
    public void ARecoveredHeldEntryIsKeptButNeverDue()
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock);
        e.Held = true;
        s.AddRecovered(e);
        Assert.Equal(1, s.Count);
        Assert.Equal(1, s.Held);
        Assert.Null(s.UntilNextDue());
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.False(s.TryTake(out _, out _));
        Assert.True(s.Release(e));
        Assert.True(s.TryTake(out var taken, out _));
        Assert.Same(e, taken);
    }

    [Fact]
    public void CountersAndTheEnumerationAgreeWithTheLanes()
    {
        var s = Sched.Exact(_clock);
        var deferred = Deferred(s);
        var held = Deferred(s);
        s.Hold(held);
        var running = Sched.Entry(_clock);
        s.AddIncoming(running);
        var incoming = Sched.Entry(_clock);
        s.AddIncoming(incoming);
        Assert.True(s.TryTake(out var r, out _));
        Assert.Same(running, r);

        Assert.Equal(4, s.Count);
        Assert.Equal(1, s.Incoming);
        Assert.Equal(1, s.Deferred);
        Assert.Equal(1, s.Held);
        Assert.Equal(1, s.InFlight);
        var all = new List<QueueEntry>();
        foreach (var e in s.Entries) all.Add(e);
        Assert.Equal(4, all.Count);
        Assert.Contains(deferred, all);
        Assert.Contains(held, all);
        Assert.Contains(running, all);
        Assert.Contains(incoming, all);
    }
}
