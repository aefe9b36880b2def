// Contract: decides WHAT the delivery agent tries WHEN, on WHICH next hop (docs/DELIVERY.md "What a delivery
// attempt does", "Guarantees: Fairness"; research/delivery.md c.3 and c.4, after Postfix's qmgr).
//
// - Two lanes of work. New commits go to the incoming lane (FIFO, due at once); whatever was tried and deferred
//   goes to the deferred lane, a min-heap on its due time. A take serves incoming first but gives the deferred
//   lane every IncomingPerDeferred-th take while both have due work, so new mail is not stuck behind a backlog
//   and the backlog is not starved by a stream of new mail (Postfix qmgr alternates its queues the same way).
// - Per-message backoff: clamp(age, --retry-min, --retry-max) × (1 ± jitter) (docs/DELIVERY.md; Postfix
//   qmgr_active.c plus the jitter Postfix lacks, chatmail/relay#979).
// - Next-hop health (DeliveryScheduler.Hops.cs): a hop that failed as a whole is dead; messages that failed on
//   it wait for a live hop instead of retrying one by one; one probe per ProbeInterval per dead hop; revival
//   makes them all due at once, sent with a concurrency limit growing from SlowStart (RFC 1123 §5.3.1.1).
// - Operator actions, expiry, delay warnings, counters (DeliveryScheduler.Queue.cs).
//
// What it deliberately does not do: I/O, timers, threads, locks or logging. The agent's thread calls it, reads
// UntilNextDue to arm its one timer, and does the journal writes and log lines itself; every method here is
// O(log n) except FlushAll and a hop's revival, which touch each waiting entry once. No allocation per entry
// beyond the entry: slots live in arrays that grow by doubling (QueueEntry.SchedulerSlot is the slot number).
// It keeps no durable state: after a restart the agent re-adds what the spool holds (AddRecovered).
//
// How it fails: options that cannot work (no hop, zero concurrency, a negative jitter...) throw from the
// constructor with the option's name. Misuse by the agent (an entry added twice, Finished for an entry not in
// flight, a hop number out of range) throws ArgumentException or InvalidOperationException naming the queue id,
// and leaves the scheduler as it was. Operator actions on an entry the scheduler does not hold return false.
using System.Diagnostics.CodeAnalysis;

namespace EdgeMta.Delivery;

/// <summary>The delivery agent's scheduler: which queued message to try next, on which next hop, and when.</summary>
public sealed partial class DeliveryScheduler
{
    /// <summary>While both lanes have due work, every this-many-th take serves the deferred lane.</summary>
    public const int IncomingPerDeferred = 4;

    /// <summary>At most this many --relay hops: a bound on the hop table, far above any real configuration.</summary>
    public const int MaxHops = 256;

    private enum Lane : byte
    {
        Free,
        Incoming,
        Deferred,
        /// <summary>Failed because its hop failed as a whole, and no hop is alive: waits for a revival.</summary>
        WaitingForHop,
        InFlight,
    }

    private struct Slot
    {
        public QueueEntry? Entry;
        /// <summary>Where the entry is; for a held entry, the lane it goes back to when released.</summary>
        public Lane Lane;
        /// <summary>The hop of the attempt in flight.</summary>
        public int Hop;
        /// <summary>The next free slot, while this one is free.</summary>
        public int NextFree;
        /// <summary>TryTakeDelayWarning gave it out: never again, even before the agent sets DelayNoticeSent.</summary>
        public bool Warned;
    }

    private readonly SchedulerOptions _options;
    private readonly TimeProvider _clock;
    private readonly Random _jitter;
    private readonly long _retryMinMs;
    private readonly long _retryMaxMs;
    private readonly long _queueLifetimeMs;
    private readonly long _bounceLifetimeMs;
    private readonly long _delayWarningMs;
    private readonly long _probeIntervalMs;
    private readonly long _recoveredDelayMs;

    private Slot[] _slots;
    private int _slotsUsed;
    private int _freeSlot = -1;
    private int _count;
    private int _held;
    private int _incomingStreak;
    private long _sequence;

    private readonly SlotHeap _incoming;
    private readonly SlotHeap _deferred;
    private readonly SlotHeap _waiting;
    private readonly SlotHeap _expiry;
    private readonly SlotHeap _warning;

    public DeliveryScheduler(SchedulerOptions options, TimeProvider clock, Random? jitter = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Hops, 1, "options.Hops");
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Hops, MaxHops, "options.Hops");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Concurrency, 1, "options.Concurrency");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SlowStart, 1, "options.SlowStart");
        // A zero --retry-min would make the probe interval zero: a connection storm to a dead hop.
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryMin, TimeSpan.FromMilliseconds(1), "options.RetryMin");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryMax, options.RetryMin, "options.RetryMax");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.QueueLifetime, TimeSpan.Zero, "options.QueueLifetime");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BounceLifetime, TimeSpan.Zero, "options.BounceLifetime");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.DelayWarning, TimeSpan.Zero, "options.DelayWarning");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RecoveredDelay, TimeSpan.Zero, "options.RecoveredDelay");
        if (!(options.Jitter >= 0 && options.Jitter < 1))
        {
            throw new ArgumentOutOfRangeException("options.Jitter", options.Jitter, "The jitter must be in [0, 1).");
        }

        _options = options;
        _clock = clock;
        _jitter = jitter ?? Random.Shared;
        _retryMinMs = ToMs(options.RetryMin);
        _retryMaxMs = ToMs(options.RetryMax);
        _queueLifetimeMs = ToMs(options.QueueLifetime);
        _bounceLifetimeMs = ToMs(options.BounceLifetime);
        _delayWarningMs = ToMs(options.DelayWarning);
        _probeIntervalMs = ToMs(options.ProbeInterval);
        _recoveredDelayMs = ToMs(options.RecoveredDelay);

        const int InitialSlots = 64;
        _slots = new Slot[InitialSlots];
        _incoming = new SlotHeap(InitialSlots);
        _deferred = new SlotHeap(InitialSlots);
        _waiting = new SlotHeap(InitialSlots);
        _expiry = new SlotHeap(InitialSlots);
        _warning = new SlotHeap(InitialSlots);
        _hops = new HopSlot[options.Hops];
        for (int i = 0; i < _hops.Length; i++) _hops[i] = new HopSlot { Limit = options.Concurrency };
    }

    /// <summary>A new commit: due now, in the incoming lane.</summary>
    public void AddIncoming(QueueEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        CheckNew(e);
        e.NextAttemptUnixMs = 0;
        Track(e, Lane.Incoming);
    }

    /// <summary>
    /// A message found at start: due at max(its recorded next attempt, now + RecoveredDelay ± jitter), so a restart
    /// does not send the whole backlog in its first second (FORMAT.md "Recovery"). A held entry is kept, never due.
    /// </summary>
    public void AddRecovered(QueueEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        CheckNew(e);
        long now = Now();
        // Nothing is in flight in a process that just started; a stale flag would pin the entry forever.
        e.InFlight = false;
        // A recorded time far ahead comes from a clock that stepped back since it was written (research/delivery.md
        // scenario 27): no wait is ever longer than the longest backoff.
        long latest = AddMs(now, (long)(_retryMaxMs * (1 + _options.Jitter)) + 1);
        long recorded = Math.Min(e.NextAttemptUnixMs, latest);
        e.NextAttemptUnixMs = Math.Max(recorded, AddMs(now, Jittered(_recoveredDelayMs)));
        Track(e, Lane.Deferred);
    }

    /// <summary>
    /// The next entry to try and the hop to try it on; sets <see cref="QueueEntry.InFlight"/>. False when nothing is
    /// due, every due entry waits for a hop at its concurrency limit, or every hop is dead and no probe is due.
    /// </summary>
    public bool TryTake([MaybeNullWhen(false)] out QueueEntry entry, out int hop)
    {
        long now = Now();
        entry = null;
        if (!SelectHop(now, out hop, out bool probe)) return false;
        int slot = PickSlot(now, probe);
        if (slot < 0)
        {
            hop = -1;
            return false;
        }
        ref Slot s = ref _slots[slot];
        entry = s.Entry!;
        s.Lane = Lane.InFlight;
        s.Hop = hop;
        entry.InFlight = true;
        // Expiry waits for the attempt's outcome: it may deliver everything.
        _expiry.Remove(slot);
        HopSlot h = _hops[hop];
        h.InFlight++;
        if (probe) h.Probe = entry;
        return true;
    }

    /// <summary>
    /// The connection work of <paramref name="e"/>'s attempt on <paramref name="hop"/> is over, its outcome not durable
    /// yet: the hop's slot goes back now (slow start, probe, a dead hop as in <see cref="Finished"/>), so the
    /// connection can carry the next message while the journal writes this one's records (their group write may
    /// linger, JournalWriter.cs: a slot held through it capped 20 connections at about 1,500 msg/s). The entry stays
    /// in flight, out of reach of TryTake, until Finished.
    /// </summary>
    public void ReleaseHop(QueueEntry e, int hop, bool hopWorked)
    {
        ArgumentNullException.ThrowIfNull(e);
        CheckHop(hop);
        if (!e.InFlight || e.HopReleased)
        {
            throw new InvalidOperationException($"ReleaseHop for {e.QueueId}, which is not in flight or already released.");
        }
        CheckTakenFor(e, hop);
        e.HopReleased = true;
        ReleaseHopCore(e, _hops[hop], hopWorked, Now());
    }

    /// <summary>
    /// The attempt of <paramref name="e"/> on <paramref name="hop"/> is over; the agent has already updated
    /// e.Recipients. All final: the entry leaves the scheduler. Otherwise it is deferred: on its own backoff when
    /// <paramref name="hopWorked"/>, or, when the hop failed as a whole, until a hop is alive (at once when another
    /// one is). Call MarkDead (which reports the change for the relay-dead line) before a Finished with
    /// hopWorked false; if the hop is still alive here it is marked dead without a report, so no message retries
    /// on its own against a failing hop. The hop's slot is given back here unless ReleaseHop already did.
    /// </summary>
    public void Finished(QueueEntry e, int hop, bool hopWorked)
    {
        ArgumentNullException.ThrowIfNull(e);
        CheckHop(hop);
        if (!e.InFlight)
        {
            throw new InvalidOperationException($"Finished for {e.QueueId}, which is not in flight.");
        }
        int slot = CheckTakenFor(e, hop);
        long now = Now();
        e.InFlight = false;
        if (e.HopReleased) e.HopReleased = false;
        else ReleaseHopCore(e, _hops[hop], hopWorked, now);

        // Removed by an operator while in flight: the hop's count is settled, nothing else to do.
        if (slot < 0) return;
        if (e.AllFinal)
        {
            Untrack(slot);
            return;
        }

        e.Attempts++;
        Lane lane;
        if (hopWorked)
        {
            e.NextAttemptUnixMs = AddMs(now, Backoff(e, now));
            lane = Lane.Deferred;
        }
        else if (AnyHopAlive())
        {
            // Another hop takes it now (failover, --relay order).
            e.NextAttemptUnixMs = now;
            lane = Lane.Deferred;
        }
        else
        {
            e.NextAttemptUnixMs = NextProbeUnixMs();
            lane = Lane.WaitingForHop;
        }
        _slots[slot].Lane = lane;
        if (!e.Held)
        {
            Enqueue(slot);
            WatchExpiry(slot);
        }
    }

    // The slot <paramref name="e"/> was taken from; it must have been taken for <paramref name="hop"/>.
    private int CheckTakenFor(QueueEntry e, int hop)
    {
        int slot = SlotOf(e);
        if (slot >= 0 && _slots[slot].Hop != hop)
        {
            throw new InvalidOperationException(
                $"Finished for {e.QueueId} on hop {hop}, but it was taken for hop {_slots[slot].Hop}.");
        }
        return slot;
    }

    private void ReleaseHopCore(QueueEntry e, HopSlot h, bool hopWorked, long now)
    {
        h.InFlight--;
        if (ReferenceEquals(h.Probe, e))
        {
            h.Probe = null;
            if (h.Dead) h.NextProbeUnixMs = AddMs(now, _probeIntervalMs);
        }
        if (hopWorked)
        {
            // Slow start: one more connection per successful session, up to --relay-concurrency.
            if (!h.Dead && h.Limit < _options.Concurrency) h.Limit++;
        }
        else if (!h.Dead)
        {
            MarkDeadCore(h, now);
        }
    }

    /// <summary>The wait before the next attempt: clamp(age, RetryMin, RetryMax) × (1 ± Jitter), in ms.</summary>
    private long Backoff(QueueEntry e, long now)
    {
        long age = SubMs(now, e.ArrivalUnixMs);
        return Jittered(Math.Clamp(age, _retryMinMs, _retryMaxMs));
    }

    private long Jittered(long ms)
    {
        double factor = 1 + _options.Jitter * (2 * _jitter.NextDouble() - 1);
        return (long)Math.Round(ms * factor);
    }

    /// <summary>Takes a slot for <paramref name="e"/> and puts it in <paramref name="lane"/> (or held).</summary>
    private void Track(QueueEntry e, Lane lane)
    {
        int slot = _freeSlot;
        if (slot >= 0)
        {
            _freeSlot = _slots[slot].NextFree;
        }
        else
        {
            if (_slotsUsed == _slots.Length) GrowSlots();
            slot = _slotsUsed++;
        }
        _slots[slot] = new Slot { Entry = e, Lane = lane, Hop = -1, NextFree = -1 };
        e.SchedulerSlot = slot;
        _count++;
        if (e.Held)
        {
            _held++;
            return;
        }
        Enqueue(slot);
        WatchExpiry(slot);
        WatchWarning(slot);
    }

    private void GrowSlots()
    {
        int capacity = _slots.Length * 2;
        Array.Resize(ref _slots, capacity);
        _incoming.Grow(capacity);
        _deferred.Grow(capacity);
        _waiting.Grow(capacity);
        _expiry.Grow(capacity);
        _warning.Grow(capacity);
    }

    /// <summary>Puts a slot that is not held into the structure of its lane.</summary>
    private void Enqueue(int slot)
    {
        ref Slot s = ref _slots[slot];
        switch (s.Lane)
        {
            case Lane.Incoming:
                _incoming.Set(slot, _sequence++);
                break;
            case Lane.Deferred:
                _deferred.Set(slot, s.Entry!.NextAttemptUnixMs);
                break;
            case Lane.WaitingForHop:
                _waiting.Set(slot, _sequence++);
                break;
        }
    }

    /// <summary>Takes a slot out of its lane's structure (the lane itself is kept).</summary>
    private void Dequeue(int slot)
    {
        _incoming.Remove(slot);
        _deferred.Remove(slot);
        _waiting.Remove(slot);
    }

    /// <summary>Starts watching an entry's age for expiry: not while held or in flight.</summary>
    private void WatchExpiry(int slot)
    {
        QueueEntry e = _slots[slot].Entry!;
        long lifetime = e.NullSender ? _bounceLifetimeMs : _queueLifetimeMs;
        _expiry.Set(slot, AddMs(e.ArrivalUnixMs, lifetime));
    }

    /// <summary>Starts watching an entry's age for the delay warning: once per entry, never while held.</summary>
    private void WatchWarning(int slot)
    {
        ref Slot s = ref _slots[slot];
        QueueEntry e = s.Entry!;
        if (_delayWarningMs > 0 && !s.Warned && !e.NullSender && !e.DelayNoticeSent)
        {
            _warning.Set(slot, AddMs(e.ArrivalUnixMs, _delayWarningMs));
        }
    }

    private void Untrack(int slot)
    {
        ref Slot s = ref _slots[slot];
        QueueEntry e = s.Entry!;
        Dequeue(slot);
        _expiry.Remove(slot);
        _warning.Remove(slot);
        if (e.Held) _held--;
        _count--;
        e.SchedulerSlot = -1;
        s = new Slot { Entry = null, Lane = Lane.Free, Hop = -1, NextFree = _freeSlot };
        _freeSlot = slot;
    }

    /// <summary>The entry's slot in this scheduler, or -1 when this scheduler does not hold it.</summary>
    private int SlotOf(QueueEntry e)
    {
        int slot = e.SchedulerSlot;
        return slot >= 0 && slot < _slotsUsed && ReferenceEquals(_slots[slot].Entry, e) ? slot : -1;
    }

    private void CheckNew(QueueEntry e)
    {
        if (e.SchedulerSlot != -1)
        {
            throw new ArgumentException($"Queue entry {e.QueueId} is already in a scheduler.", nameof(e));
        }
    }

    private void CheckHop(int hop)
    {
        if ((uint)hop >= (uint)_hops.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(hop), hop, $"There are {_hops.Length} hops.");
        }
    }

    private long Now() => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    private static long ToMs(TimeSpan span) => span.Ticks / TimeSpan.TicksPerMillisecond;

    /// <summary>a + b, saturating instead of wrapping: a damaged arrival time must not make an entry never
    /// expire.</summary>
    private static long AddMs(long a, long b)
    {
        long r = unchecked(a + b);
        if (((a ^ r) & (b ^ r)) < 0) r = a < 0 ? long.MinValue : long.MaxValue;
        return r;
    }

    private static long SubMs(long a, long b) => b == long.MinValue ? long.MaxValue : AddMs(a, -b);
}
