// DeliveryScheduler's next-hop health (docs/DELIVERY.md "The next hop as a whole"): a dead hop gets one probe per
// min(60 s, --retry-min), not one attempt per message; on revival everything waiting is due at once and sent with
// the concurrency growing from 5; several --relay hops are used in order, a later one only while earlier ones are
// dead. Simulated time on a FakeClock; every loop bounded.
using EdgeMta.Delivery;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

public class DeliverySchedulerHopTests
{
    private readonly FakeClock _clock = new();

    /// <summary>Puts <paramref name="n"/> entries in flight on hop 0, kills it, and fails them all.</summary>
    private List<QueueEntry> FailAllOnADeadHop(DeliveryScheduler s, int n)
    {
        var entries = new List<QueueEntry>();
        for (int i = 0; i < n; i++)
        {
            var e = Sched.Entry(_clock);
            s.AddIncoming(e);
            entries.Add(e);
        }
        var taken = Sched.TakeAll(s);
        Assert.Equal(n, taken.Count);
        Assert.True(s.MarkDead(0));
        foreach (var (e, hop) in taken) s.Finished(e, hop, hopWorked: false);
        return entries;
    }

    [Fact]
    public void ADeadHopGetsExactlyOneProbePerIntervalForAnHourThenEverythingIsDueWithSlowStart()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 1000 });
        var entries = FailAllOnADeadHop(s, 1000);
        Assert.Equal(1000, s.WaitingForHop);
        long deadAt = Sched.NowMs(_clock);
        Assert.Equal(TimeSpan.FromSeconds(60), s.UntilNextDue());
        Assert.False(s.GetHopState(0).Alive);

        // An hour of simulated time in 1-second steps; each probe fails at once.
        var probeTimes = new List<long>();
        for (int second = 1; second <= 3600; second++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            foreach (var (e, hop) in Sched.TakeAll(s, bound: 10))
            {
                probeTimes.Add(Sched.NowMs(_clock) - deadAt);
                Assert.True(s.GetHopState(hop).ProbeInFlight);
                Assert.False(s.MarkDead(hop));
                s.Finished(e, hop, hopWorked: false);
            }
        }
        Assert.Equal(60, probeTimes.Count);
        for (int i = 0; i < probeTimes.Count; i++) Assert.Equal((i + 1) * 60_000L, probeTimes[i]);
        Assert.Equal(1000, s.WaitingForHop);
        Assert.Equal(TimeSpan.FromSeconds(60), s.UntilNextDue());

        // The next probe works: the hop is alive, everything waiting is due now, five at a time to start.
        _clock.Advance(TimeSpan.FromSeconds(60));
        Assert.True(s.TryTake(out var probe, out int probeHop));
        Assert.True(s.MarkAlive(probeHop));
        Assert.False(s.MarkAlive(probeHop));
        long now = Sched.NowMs(_clock);
        foreach (var e in entries)
        {
            if (!e.InFlight) Assert.Equal(now, e.NextAttemptUnixMs);
        }
        Assert.Equal(0, s.WaitingForHop);
        var inFlight = new Queue<(QueueEntry Entry, int Hop)>();
        inFlight.Enqueue((probe, probeHop));
        foreach (var t in Sched.TakeAll(s)) inFlight.Enqueue(t);
        Assert.Equal(5, inFlight.Count);

        // Each successful session lets one more run: 5, 6, 7, ... (up to --relay-concurrency, 1000 here).
        for (int expected = 6; expected <= 12; expected++)
        {
            var (e, hop) = inFlight.Dequeue();
            Sched.Deliver(e);
            s.Finished(e, hop, hopWorked: true);
            foreach (var t in Sched.TakeAll(s)) inFlight.Enqueue(t);
            Assert.Equal(expected, inFlight.Count);
            Assert.Equal(expected, s.GetHopState(0).Limit);
        }
    }

    [Fact]
    public void SlowStartStopsAtTheConcurrencyLimit()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 7 });
        FailAllOnADeadHop(s, 7);
        for (int i = 0; i < 13; i++) s.AddIncoming(Sched.Entry(_clock));
        Assert.True(s.MarkAlive(0));
        var inFlight = new Queue<(QueueEntry Entry, int Hop)>(Sched.TakeAll(s));
        var sizes = new List<int> { inFlight.Count };
        for (int i = 0; i < 5; i++)
        {
            var (e, hop) = inFlight.Dequeue();
            Sched.Deliver(e);
            s.Finished(e, hop, hopWorked: true);
            foreach (var t in Sched.TakeAll(s)) inFlight.Enqueue(t);
            sizes.Add(inFlight.Count);
        }
        Assert.Equal([5, 6, 7, 7, 7, 7], sizes);
    }

    [Fact]
    public void FailedAttemptsWaitForTheHopNotForTheirOwnBackoff()
    {
        var s = Sched.Exact(_clock);
        var e = FailAllOnADeadHop(s, 1)[0];
        Assert.Equal(1, e.Attempts);
        // The next probe, not clamp(age, 300 s, 4000 s), is when it is shown as next.
        Assert.Equal(Sched.NowMs(_clock) + 60_000, e.NextAttemptUnixMs);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(s.MarkAlive(0));
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        Assert.True(s.TryTake(out var again, out _));
        Assert.Same(e, again);
    }

    [Fact]
    public void WhileAProbeRunsNothingElseGoesToTheDeadHop()
    {
        var s = Sched.Exact(_clock);
        FailAllOnADeadHop(s, 3);
        _clock.Advance(TimeSpan.FromSeconds(60));
        Assert.True(s.TryTake(out _, out _));
        s.AddIncoming(Sched.Entry(_clock));
        _clock.Advance(TimeSpan.FromMinutes(10));
        Assert.False(s.TryTake(out _, out _));
        // Only the probe's end can change that: the timer is for the first expiry, nothing sooner.
        Assert.Equal(new SchedulerOptions().QueueLifetime - TimeSpan.FromMinutes(11), s.UntilNextDue());
    }

    [Fact]
    public void AHopFailureReportedOnlyThroughFinishedStillStopsPerMessageRetries()
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock);
        s.AddIncoming(e);
        Assert.True(s.TryTake(out _, out int hop));
        s.Finished(e, hop, hopWorked: false);
        Assert.False(s.GetHopState(0).Alive);
        Assert.False(s.TryTake(out _, out _));
        Assert.Equal(TimeSpan.FromSeconds(60), s.UntilNextDue());
    }

    [Fact]
    public void ADeadFirstHopFailsOverToTheSecondAndBackWhenItsProbeWorks()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Hops = 2 });
        var a = Sched.Entry(_clock);
        s.AddIncoming(a);
        Assert.True(s.TryTake(out _, out int hop));
        Assert.Equal(0, hop);
        Assert.True(s.MarkDead(0));
        s.Finished(a, 0, hopWorked: false);

        // Another hop is alive: the message goes there at once.
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        Assert.True(s.TryTake(out var onSecond, out hop));
        Assert.Same(a, onSecond);
        Assert.Equal(1, hop);
        Sched.Deliver(a);
        s.Finished(a, 1, hopWorked: true);

        // New mail goes to hop 1 until hop 0's probe is due; then the probe takes the next message.
        var b = Sched.Entry(_clock);
        s.AddIncoming(b);
        Assert.True(s.TryTake(out _, out hop));
        Assert.Equal(1, hop);
        var c = Sched.Entry(_clock);
        s.AddIncoming(c);
        _clock.Advance(TimeSpan.FromSeconds(60));
        Assert.True(s.TryTake(out var probe, out hop));
        Assert.Same(c, probe);
        Assert.Equal(0, hop);
        Assert.True(s.MarkAlive(0));
        Sched.Deliver(c);
        s.Finished(c, 0, hopWorked: true);

        var d = Sched.Entry(_clock);
        s.AddIncoming(d);
        Assert.True(s.TryTake(out _, out hop));
        Assert.Equal(0, hop);
    }

    [Fact]
    public void ALiveFirstHopAtItsLimitDoesNotSpillToTheSecond()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Hops = 2, Concurrency = 2 });
        for (int i = 0; i < 5; i++) s.AddIncoming(Sched.Entry(_clock));
        var taken = Sched.TakeAll(s);
        Assert.Equal(2, taken.Count);
        Assert.All(taken, t => Assert.Equal(0, t.Hop));
        Assert.Equal(0, s.GetHopState(1).InFlight);
    }

    [Fact]
    public void EveryHopDeadProbesEachInItsTurn()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Hops = 2, RetryMin = TimeSpan.FromSeconds(30) });
        for (int i = 0; i < 4; i++) s.AddIncoming(Sched.Entry(_clock));
        Assert.True(s.MarkDead(0));
        Assert.True(s.MarkDead(1));
        Assert.False(s.MarkDead(1));
        // --retry-min below 60 s makes it the probe interval.
        Assert.Equal(TimeSpan.FromSeconds(30), s.UntilNextDue());
        _clock.Advance(TimeSpan.FromSeconds(30));
        var probes = Sched.TakeAll(s);
        Assert.Equal([0, 1], probes.ConvertAll(p => p.Hop));
        Assert.Equal(2, s.Incoming);
    }

    [Fact]
    public void AFlushProbesADeadHopAtOnce()
    {
        var s = Sched.Exact(_clock);
        FailAllOnADeadHop(s, 2);
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(2, s.FlushAll());
        Assert.True(s.TryTake(out _, out int hop));
        Assert.True(s.GetHopState(hop).ProbeInFlight);
        Assert.False(s.TryTake(out _, out _));
    }

    [Fact]
    public void ReleaseHopFreesTheConnectionSlotWhileTheEntryWaitsInFlightForItsJournal()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 1 });
        var first = Sched.Entry(_clock);
        var second = Sched.Entry(_clock);
        s.AddIncoming(first);
        s.AddIncoming(second);
        Assert.True(s.TryTake(out var taken, out int hop));
        Assert.Same(first, taken);
        Assert.False(s.TryTake(out _, out _));   // the hop's one slot is taken

        // Delivered, its journal record not durable yet: the slot goes back, the entry stays in flight.
        Sched.Deliver(first);
        s.ReleaseHop(first, hop, hopWorked: true);
        Assert.True(first.InFlight);
        Assert.Equal(0, s.GetHopState(hop).InFlight);
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        Assert.True(s.TryTake(out var next, out _));
        Assert.Same(second, next);               // never the first again: it is still in flight
        Assert.Throws<InvalidOperationException>(() => s.ReleaseHop(first, hop, hopWorked: true));

        // Durable: Finished settles the entry and does not give the slot back a second time.
        s.Finished(first, hop, hopWorked: true);
        Assert.False(first.InFlight);
        Assert.Equal(1, s.GetHopState(hop).InFlight);
        Assert.False(s.TryTake(out _, out _));
    }
}
