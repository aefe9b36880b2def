// A TimeProvider whose time moves only when a test says so: timers (those behind CancellationTokenSource
// deadlines and Task.Delay) fire inside Advance, on the test's thread. No sleeps, no margins.
namespace EdgeMta.Metrics.Tests;

public sealed class ManualClock : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<Timer> _timers = [];
    private long _now; // ticks since the clock was made
    private int _created;

    /// <summary>Timers created so far (each connection phase of the metrics port makes one).</summary>
    public int Created => Volatile.Read(ref _created);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _now);

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(GetTimestamp());

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new Timer(this, callback, state);
        lock (_gate) _timers.Add(timer);
        timer.Change(dueTime, period);
        Interlocked.Increment(ref _created);
        return timer;
    }

    /// <summary>Moves time on and runs every timer now due (periodic ones as often as they fell due).</summary>
    public void Advance(TimeSpan by)
    {
        long target;
        lock (_gate) target = _now + by.Ticks;
        // Bounded: each pass fires at least one timer due at or before the target, or ends.
        for (int pass = 0; pass < 10_000; pass++)
        {
            Timer? next = null;
            lock (_gate)
            {
                foreach (Timer t in _timers)
                {
                    if (t.Due <= target && (next is null || t.Due < next.Due)) next = t;
                }
                if (next is null)
                {
                    _now = target;
                    return;
                }
                _now = Math.Max(_now, next.Due);
                next.Due = next.Period > 0 ? next.Due + next.Period : long.MaxValue;
            }
            next.Fire();
        }
        throw new InvalidOperationException("timers kept firing");
    }

    private sealed class Timer(ManualClock clock, TimerCallback callback, object? state) : ITimer
    {
        public long Due = long.MaxValue;
        public long Period;

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? long.MaxValue : clock._now + dueTime.Ticks;
                Period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
            }
            return true;
        }

        public void Dispose()
        {
            lock (clock._gate) clock._timers.Remove(this);
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
