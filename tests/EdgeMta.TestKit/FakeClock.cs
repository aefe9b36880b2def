// Contract: a TimeProvider whose time moves only when a test says so (Advance), with timers that fire then.
//
// Wall-clock time (GetUtcNow) and the monotonic timestamp move together, from a fixed instant. Timers made
// with CreateTimer fire on the thread that calls Advance, in order of due time, each at its own instant
// (the clock reads that instant inside the callback), so a test sees exactly what a real clock would show
// at those moments, with no sleep and no race. It does not model timer drift or a clock going backwards;
// Advance refuses a negative step. A runaway (a timer re-armed to fire at once, forever) fails after
// a million firings in one Advance instead of hanging the test.
namespace EdgeMta.TestKit;

public sealed class FakeClock : TimeProvider
{
    /// <summary>The default start: the instant of the repository's golden transcripts.</summary>
    public static readonly DateTimeOffset DefaultStart = new(2026, 11, 22, 7, 30, 15, TimeSpan.Zero);

    private const int MaxFiringsPerAdvance = 1_000_000;

    private readonly Lock _gate = new();
    private readonly List<Timer> _timers = [];
    private readonly DateTimeOffset _start;
    private long _elapsedTicks;
    private int _created;

    public FakeClock(DateTimeOffset? start = null)
    {
        _start = start ?? DefaultStart;
    }

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate) return _start + TimeSpan.FromTicks(_elapsedTicks);
    }

    public override long GetTimestamp()
    {
        lock (_gate) return _elapsedTicks;
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>Timers created so far: a test waits for the code under test to arm its deadline before it
    /// moves time past it.</summary>
    public int TimersCreated => Volatile.Read(ref _created);

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new Timer(this, callback, state);
        timer.Change(dueTime, period);
        Interlocked.Increment(ref _created);
        return timer;
    }

    /// <summary>Moves time forward, firing every timer that falls due on the way, on this thread.</summary>
    public void Advance(TimeSpan step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, TimeSpan.Zero);
        long target;
        lock (_gate) target = _elapsedTicks + step.Ticks;
        for (int fired = 0; ; fired++)
        {
            if (fired == MaxFiringsPerAdvance)
            {
                throw new InvalidOperationException($"More than {MaxFiringsPerAdvance} timer firings in one Advance.");
            }
            Timer? due = null;
            lock (_gate)
            {
                foreach (Timer t in _timers)
                {
                    if (t.DueTicks <= target && (due is null || t.DueTicks < due.DueTicks)) due = t;
                }
                if (due is null)
                {
                    _elapsedTicks = target;
                    return;
                }
                _elapsedTicks = Math.Max(_elapsedTicks, due.DueTicks);
                due.Rearm();
            }
            due.Fire();
        }
    }

    private sealed class Timer(FakeClock clock, TimerCallback callback, object? state) : ITimer
    {
        private long _periodTicks;

        /// <summary>When it fires next, in the clock's ticks; long.MaxValue when disarmed.</summary>
        public long DueTicks { get; private set; } = long.MaxValue;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate)
            {
                clock._timers.Remove(this);
                if (dueTime == Timeout.InfiniteTimeSpan)
                {
                    DueTicks = long.MaxValue;
                    return true;
                }
                ArgumentOutOfRangeException.ThrowIfLessThan(dueTime, TimeSpan.Zero);
                DueTicks = clock._elapsedTicks + dueTime.Ticks;
                _periodTicks = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
                clock._timers.Add(this);
                return true;
            }
        }

        /// <summary>Under the clock's lock: the next due time, or out of the list for a one-shot timer.</summary>
        public void Rearm()
        {
            if (_periodTicks > 0)
            {
                DueTicks += _periodTicks;
                return;
            }
            DueTicks = long.MaxValue;
            clock._timers.Remove(this);
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (clock._gate)
            {
                clock._timers.Remove(this);
                DueTicks = long.MaxValue;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
