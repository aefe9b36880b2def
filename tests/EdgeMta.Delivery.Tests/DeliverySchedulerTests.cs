// DeliveryScheduler's lanes and backoff (docs/DELIVERY.md: clamp(age, --retry-min, --retry-max) ± 10% jitter;
// "Fairness: new mail is not stuck behind a large deferred backlog"), on a FakeClock, no sleeps.
using EdgeMta.Delivery;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

/// <summary>Builds entries and schedulers for the scheduler tests.</summary>
internal static class Sched
{
    private static int _next;

    public static long NowMs(FakeClock clock) => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>An entry with one pending recipient that arrived <paramref name="age"/> ago.</summary>
    public static QueueEntry Entry(FakeClock clock, TimeSpan age = default, bool nullSender = false)
    {
        int n = Interlocked.Increment(ref _next);
        long arrival = NowMs(clock) - (long)age.TotalMilliseconds;
        return new QueueEntry($"Q{n:D8}", 1, n * 100L, arrival, 1000, 1, nullSender);
    }

    /// <summary>A scheduler without jitter, so that times are exact.</summary>
    public static DeliveryScheduler Exact(FakeClock clock, SchedulerOptions? options = null) =>
        new((options ?? new SchedulerOptions()) with { Jitter = 0 }, clock, new Random(1));

    public static void Deliver(QueueEntry e) => e.Recipients[0].State = Spool.RecipientState.Delivered;

    /// <summary>Takes everything TryTake gives now (bounded), in order.</summary>
    public static List<(QueueEntry Entry, int Hop)> TakeAll(DeliveryScheduler s, int bound = 1_000_000)
    {
        var taken = new List<(QueueEntry, int)>();
        while (taken.Count < bound && s.TryTake(out var e, out int hop)) taken.Add((e, hop));
        return taken;
    }
}

public class DeliverySchedulerTests
{
    private readonly FakeClock _clock = new();

    [Fact]
    public void IncomingIsDueAtOnceAndTakenInArrivalOrder()
    {
        var s = Sched.Exact(_clock);
        var a = Sched.Entry(_clock);
        var b = Sched.Entry(_clock);
        s.AddIncoming(a);
        s.AddIncoming(b);
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        Assert.Equal(2, s.Incoming);

        Assert.True(s.TryTake(out var first, out int hop));
        Assert.Same(a, first);
        Assert.Equal(0, hop);
        Assert.True(first.InFlight);
        Assert.True(s.TryTake(out var second, out _));
        Assert.Same(b, second);
        Assert.False(s.TryTake(out _, out _));
        Assert.Equal(2, s.InFlight);
        Assert.Equal(0, s.Incoming);
    }

    [Theory]
    [InlineData(0, 300)]          // younger than --retry-min: the minimum
    [InlineData(299, 300)]
    [InlineData(1000, 1000)]      // between: the age itself
    [InlineData(4000, 4000)]
    [InlineData(3 * 86400, 4000)] // older than --retry-max: the maximum
    public void BackoffIsTheAgeClampedToRetryMinAndMax(int ageSeconds, int waitSeconds)
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock, TimeSpan.FromSeconds(ageSeconds));
        s.AddIncoming(e);
        Assert.True(s.TryTake(out _, out int hop));
        s.Finished(e, hop, hopWorked: true);

        Assert.Equal(1, e.Attempts);
        Assert.False(e.InFlight);
        Assert.Equal(Sched.NowMs(_clock) + waitSeconds * 1000L, e.NextAttemptUnixMs);
        Assert.Equal(TimeSpan.FromSeconds(waitSeconds), s.UntilNextDue());
        Assert.Equal(1, s.Deferred);

        _clock.Advance(TimeSpan.FromSeconds(waitSeconds) - TimeSpan.FromMilliseconds(1));
        Assert.False(s.TryTake(out _, out _));
        Assert.Equal(TimeSpan.FromMilliseconds(1), s.UntilNextDue());
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(s.TryTake(out var again, out _));
        Assert.Same(e, again);
    }

    [Fact]
    public void JitterStaysWithinTenPercentAndIsNotConstant()
    {
        var s = new DeliveryScheduler(new SchedulerOptions { Concurrency = 1000 }, _clock, new Random(20261206));
        var waits = new HashSet<long>();
        long min = long.MaxValue, max = long.MinValue;
        for (int i = 0; i < 1000; i++)
        {
            var e = Sched.Entry(_clock);
            s.AddIncoming(e);
            Assert.True(s.TryTake(out _, out int hop));
            s.Finished(e, hop, hopWorked: true);
            long wait = e.NextAttemptUnixMs - Sched.NowMs(_clock);
            Assert.InRange(wait, 270_000, 330_000);
            waits.Add(wait);
            min = Math.Min(min, wait);
            max = Math.Max(max, wait);
        }
        Assert.True(waits.Count > 500, $"only {waits.Count} distinct waits");
        // Spread over most of the ±10% band, not bunched at one end.
        Assert.True(min < 276_000 && max > 324_000, $"waits from {min} to {max}");
    }

    [Fact]
    public void AnAttemptThatFinishedEveryRecipientRemovesTheEntry()
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock);
        s.AddIncoming(e);
        Assert.True(s.TryTake(out _, out int hop));
        Sched.Deliver(e);
        s.Finished(e, hop, hopWorked: true);
        Assert.Equal(0, s.Count);
        Assert.Equal(0, s.InFlight);
        Assert.Equal(-1, e.SchedulerSlot);
        Assert.Null(s.UntilNextDue());
        Assert.False(s.Contains(e));
    }

    [Fact]
    public void BothLanesDueServeTheDeferredLaneEveryFourthTake()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 1000, RecoveredDelay = TimeSpan.Zero });
        var deferred = new HashSet<QueueEntry>();
        for (int i = 0; i < 100; i++)
        {
            var e = Sched.Entry(_clock, TimeSpan.FromHours(1));
            s.AddRecovered(e);
            deferred.Add(e);
        }
        for (int i = 0; i < 100; i++) s.AddIncoming(Sched.Entry(_clock));

        var pattern = new System.Text.StringBuilder();
        for (int i = 0; i < 12; i++)
        {
            Assert.True(s.TryTake(out var e, out _));
            pattern.Append(deferred.Contains(e) ? 'D' : 'I');
        }
        Assert.Equal("IIIDIIIDIIID", pattern.ToString());
    }

    [Fact]
    public void NewMailIsNotStuckBehindTenThousandDueDeferredEntries()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 20 });
        for (int i = 0; i < 10_000; i++) s.AddRecovered(Sched.Entry(_clock, TimeSpan.FromHours(2)));
        _clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());

        // A stream of new mail, one message per round, while the agent takes two per round and finishes them.
        int deferredTaken = 0;
        for (int round = 0; round < 2000; round++)
        {
            var fresh = Sched.Entry(_clock);
            s.AddIncoming(fresh);
            int takesUntilFresh = -1;
            for (int take = 0; take < 2; take++)
            {
                Assert.True(s.TryTake(out var e, out int hop));
                if (ReferenceEquals(e, fresh)) takesUntilFresh = take;
                else deferredTaken++;
                Sched.Deliver(e);
                s.Finished(e, hop, hopWorked: true);
            }
            Assert.True(takesUntilFresh >= 0, $"round {round}: the new message was not among the first 2 takes");
            _clock.Advance(TimeSpan.FromMilliseconds(100));
        }
        Assert.Equal(2000, deferredTaken);
        Assert.Equal(10_000 - 2000, s.Deferred);
    }

    [Fact]
    public void AHopTakesNoMoreThanItsConcurrencyLimit()
    {
        var s = Sched.Exact(_clock, new SchedulerOptions { Concurrency = 3 });
        for (int i = 0; i < 10; i++) s.AddIncoming(Sched.Entry(_clock));
        var taken = Sched.TakeAll(s);
        Assert.Equal(3, taken.Count);
        Assert.Equal(3, s.GetHopState(0).InFlight);
        // Only a Finished frees a place: the timer is for the first expiry, nothing sooner.
        Assert.Equal(new SchedulerOptions().QueueLifetime, s.UntilNextDue());

        Sched.Deliver(taken[0].Entry);
        s.Finished(taken[0].Entry, 0, hopWorked: true);
        Assert.Equal(TimeSpan.Zero, s.UntilNextDue());
        Assert.Single(Sched.TakeAll(s));
        Assert.False(s.TryTake(out _, out _));
    }

    [Fact]
    public void AHundredThousandEntriesAddTakeDeferAndFinish()
    {
        const int N = 100_000;
        var s = new DeliveryScheduler(new SchedulerOptions { Concurrency = N }, _clock, new Random(7));
        var entries = new QueueEntry[N];
        for (int i = 0; i < N; i++)
        {
            entries[i] = Sched.Entry(_clock);
            if (i % 2 == 0) s.AddIncoming(entries[i]);
            else s.AddRecovered(entries[i]);
        }
        Assert.Equal(N, s.Count);
        Assert.Equal(N / 2, Sched.TakeAll(s).Count);
        _clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(N / 2, Sched.TakeAll(s).Count);

        foreach (var e in entries) s.Finished(e, 0, hopWorked: true);
        Assert.Equal(N, s.Deferred);
        _clock.Advance(TimeSpan.FromSeconds(331));
        var again = Sched.TakeAll(s);
        Assert.Equal(N, again.Count);
        foreach (var (e, hop) in again)
        {
            Sched.Deliver(e);
            s.Finished(e, hop, hopWorked: true);
        }
        Assert.Equal(0, s.Count);
        Assert.Null(s.UntilNextDue());
    }

    [Fact]
    public void AddTakeDeferFlushAndFinishAllocateNothingOnceWarm()
    {
        var s = new DeliveryScheduler(new SchedulerOptions(), _clock, new Random(3));
        var entries = new QueueEntry[64];
        for (int i = 0; i < entries.Length; i++) entries[i] = Sched.Entry(_clock);
        int next = 0;
        long bytes = Allocations.SteadyStateBytes(() =>
        {
            var e = entries[next++];
            s.AddIncoming(e);
            Assert.True(s.TryTake(out _, out int hop));
            s.Finished(e, hop, hopWorked: true);
            Assert.True(s.Flush(e));
            Assert.True(s.TryTake(out _, out hop));
            Sched.Deliver(e);
            s.Finished(e, hop, hopWorked: true);
        });
        Assert.Equal(0, bytes);
        Assert.Equal(0, s.Count);
    }

    [Fact]
    public void AHundredThousandEntriesCostTheSchedulerLittleMemory()
    {
        const int N = 100_000;
        var entries = new QueueEntry[N];
        for (int i = 0; i < N; i++) entries[i] = Sched.Entry(_clock);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var s = new DeliveryScheduler(new SchedulerOptions { DelayWarning = TimeSpan.FromHours(4) }, _clock);
        foreach (var e in entries) s.AddRecovered(e);
        long perEntry = (GC.GetAllocatedBytesForCurrentThread() - before) / N;
        // Everything the tables ever allocated, the doubling's garbage included: per slot of capacity a 24-byte
        // slot, five 4-byte heap positions, three 16-byte heap nodes (deferred, expiry, warning) = 92 bytes; doubling
        // from 64 to 131,072 slots allocates twice that per final slot: 241 bytes per entry measured, half of it live.
        Assert.True(perEntry <= 300, $"{perEntry} bytes per entry");
        Assert.Equal(N, s.Deferred);
    }

    [Fact]
    public void MisuseIsAClearErrorAndChangesNothing()
    {
        var s = Sched.Exact(_clock);
        var e = Sched.Entry(_clock);
        s.AddIncoming(e);
        var twice = Assert.Throws<ArgumentException>(() => s.AddIncoming(e));
        Assert.Contains(e.QueueId, twice.Message);
        var notInFlight = Assert.Throws<InvalidOperationException>(() => s.Finished(e, 0, true));
        Assert.Contains(e.QueueId, notInFlight.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Finished(e, 1, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.MarkDead(-1));
        Assert.Equal(1, s.Incoming);
        Assert.True(s.TryTake(out var taken, out _));
        Assert.Same(e, taken);
    }

    [Theory]
    [InlineData("Hops")]
    [InlineData("Concurrency")]
    [InlineData("SlowStart")]
    [InlineData("RetryMin")]
    [InlineData("RetryMax")]
    [InlineData("Jitter")]
    public void OptionsThatCannotWorkAreRefusedByName(string option)
    {
        var bad = option switch
        {
            "Hops" => new SchedulerOptions { Hops = 0 },
            "Concurrency" => new SchedulerOptions { Concurrency = 0 },
            "SlowStart" => new SchedulerOptions { SlowStart = 0 },
            "RetryMin" => new SchedulerOptions { RetryMin = TimeSpan.Zero },
            "RetryMax" => new SchedulerOptions { RetryMax = TimeSpan.FromSeconds(1) },
            _ => new SchedulerOptions { Jitter = double.NaN },
        };
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new DeliveryScheduler(bad, _clock));
        Assert.Contains(option, error.ParamName);
    }
}
