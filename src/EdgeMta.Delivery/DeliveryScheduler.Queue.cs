// Contract: the scheduler's side of the queue commands (docs/DELIVERY.md "Queue commands"), expiry and delay
// warnings (the --queue-lifetime, --bounce-lifetime and --delay-warning flags), the one timer the agent arms
// (UntilNextDue), and the counts metrics and `queue list` show.
// - flush: due now, within the concurrency limit; it resets the backoff, not the attempt count. A flush also
//   makes every dead hop's probe due now, as Postfix's flush forgets its dead-destination state
//   (qmgr_scan.c QMGR_FLUSH_DEAD) without reviving the hop at full concurrency.
// - hold: never due until released; a held entry neither expires nor warns (Postfix's qmgr never scans its hold
//   queue), and it keeps the lane it returns to. release: back to that lane, due now if its time has passed.
// - Expiry: age ≥ --queue-lifetime (--bounce-lifetime for a null sender), checked only while not in flight, since
//   the attempt may yet deliver everything (research/delivery.md c.3).
// What it does not do: the journal records or the bounces these actions need; the agent writes them first
// and then calls here. Operator actions on an entry this scheduler does not hold return false (exit 1).
using System.Diagnostics.CodeAnalysis;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryScheduler
{
    /// <summary>Entries held, in every state.</summary>
    public int Count => _count;

    /// <summary>Entries in the incoming lane (new commits not yet tried).</summary>
    public int Incoming => _incoming.Count;

    /// <summary>Entries deferred: on their own backoff, or waiting for a live hop.</summary>
    public int Deferred => _deferred.Count + _waiting.Count;

    /// <summary>Entries waiting for a live hop (a subset of Deferred).</summary>
    public int WaitingForHop => _waiting.Count;

    /// <summary>Entries held by an operator (an entry held while in flight counts here too).</summary>
    public int Held => _held;

    /// <summary>Attempts running on every hop.</summary>
    public int InFlight
    {
        get
        {
            int n = 0;
            foreach (HopSlot h in _hops) n += h.InFlight;
            return n;
        }
    }

    /// <summary>Whether this scheduler holds <paramref name="e"/>.</summary>
    public bool Contains(QueueEntry e) => e is not null && SlotOf(e) >= 0;

    /// <summary>Every entry, in slot order, for `queue list`. Do not change the scheduler while enumerating.</summary>
    public EntryEnumerator Entries => new(this);

    /// <summary>Due now (queue flush ID). False when the scheduler does not hold it.</summary>
    public bool Flush(QueueEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        int slot = SlotOf(e);
        if (slot < 0) return false;
        long now = Now();
        FlushSlot(slot, now);
        ProbeDeadHopsNow(now);
        return true;
    }

    /// <summary>Every deferred or waiting entry due now (queue flush with no ID); returns how many moved.</summary>
    public int FlushAll()
    {
        long now = Now();
        int moved = 0;
        for (int slot = 0; slot < _slotsUsed; slot++)
        {
            if (_slots[slot].Entry is not null && FlushSlot(slot, now)) moved++;
        }
        ProbeDeadHopsNow(now);
        return moved;
    }

    /// <summary>Not tried until released (queue hold). False when the scheduler does not hold it.</summary>
    public bool Hold(QueueEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        int slot = SlotOf(e);
        if (slot < 0) return false;
        if (e.Held) return true;
        e.Held = true;
        _held++;
        // In flight: the attempt runs on; Finished sees Held and keeps it out of the lanes.
        Dequeue(slot);
        _expiry.Remove(slot);
        _warning.Remove(slot);
        return true;
    }

    /// <summary>Back to its lane, due now if its time has passed (queue release). False when not held here.</summary>
    public bool Release(QueueEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        int slot = SlotOf(e);
        if (slot < 0) return false;
        if (!e.Held) return true;
        e.Held = false;
        _held--;
        WatchWarning(slot);
        ref Slot s = ref _slots[slot];
        // In flight: its Finished puts it back in a lane and watches its expiry again.
        if (s.Lane == Lane.InFlight) return true;
        if (s.Lane == Lane.WaitingForHop && AnyHopAlive())
        {
            // A hop came back while it was held: it would have been due then.
            s.Lane = Lane.Deferred;
            e.NextAttemptUnixMs = Now();
        }
        Enqueue(slot);
        WatchExpiry(slot);
        return true;
    }

    /// <summary>
    /// Out of the scheduler (delivered, deleted, bounced, expired by the agent). False when not held here. An entry
    /// in flight stays InFlight until its Finished, which then only settles the hop's count.
    /// </summary>
    public bool Remove(QueueEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        int slot = SlotOf(e);
        if (slot < 0) return false;
        Untrack(slot);
        return true;
    }

    /// <summary>
    /// An entry not in flight and not held whose age reached --queue-lifetime (--bounce-lifetime for a null
    /// sender); it leaves the scheduler. The agent fails its pending recipients with 4.4.7 and bounces them, or
    /// drops a null-sender message with a log line (docs/DELIVERY.md).
    /// </summary>
    public bool TryTakeExpired([MaybeNullWhen(false)] out QueueEntry e)
    {
        if (_expiry.Count > 0 && _expiry.PeekKey <= Now())
        {
            int slot = _expiry.PeekSlot;
            e = _slots[slot].Entry!;
            Untrack(slot);
            return true;
        }
        e = null;
        return false;
    }

    /// <summary>
    /// An entry older than --delay-warning (when set), not yet warned, not from a null sender, not held. It is
    /// returned once; the agent sends the notice if NOTIFY allows it and sets DelayNoticeSent when that is durable.
    /// </summary>
    public bool TryTakeDelayWarning([MaybeNullWhen(false)] out QueueEntry e)
    {
        if (_warning.Count > 0 && _warning.PeekKey <= Now())
        {
            int slot = _warning.Pop();
            _slots[slot].Warned = true;
            e = _slots[slot].Entry!;
            return true;
        }
        e = null;
        return false;
    }

    /// <summary>
    /// How long until TryTake, TryTakeExpired or TryTakeDelayWarning could give something if nothing else happens:
    /// Zero when one can now, null when only an event can (nothing queued, or every due entry waits for a hop at its
    /// limit: the next Finished). The agent arms its one timer from it after each round of takes.
    /// </summary>
    public TimeSpan? UntilNextDue()
    {
        long now = Now();
        long next = NextTakeUnixMs(now);
        if (_expiry.Count > 0) next = Math.Min(next, _expiry.PeekKey);
        if (_warning.Count > 0) next = Math.Min(next, _warning.PeekKey);
        if (next == long.MaxValue) return null;
        return next <= now ? TimeSpan.Zero : TimeSpan.FromMilliseconds(next - now);
    }

    /// <summary>Makes one slot due now; true when it was deferred or waiting (in flight and incoming are as
    /// due as they get). A held entry is only re-timed, so that its release makes it due at once.</summary>
    private bool FlushSlot(int slot, long now)
    {
        ref Slot s = ref _slots[slot];
        if (s.Lane is not (Lane.Deferred or Lane.WaitingForHop)) return false;
        QueueEntry e = s.Entry!;
        e.NextAttemptUnixMs = now;
        if (e.Held)
        {
            s.Lane = Lane.Deferred;
            return true;
        }
        _waiting.Remove(slot);
        s.Lane = Lane.Deferred;
        _deferred.Set(slot, now);
        return true;
    }

    private void ProbeDeadHopsNow(long now)
    {
        foreach (HopSlot h in _hops)
        {
            if (h.Dead && h.NextProbeUnixMs > now) h.NextProbeUnixMs = now;
        }
    }

    /// <summary>Walks the slot table without allocating.</summary>
    public struct EntryEnumerator
    {
        private readonly DeliveryScheduler _owner;
        private int _slot;

        internal EntryEnumerator(DeliveryScheduler owner)
        {
            _owner = owner;
            _slot = -1;
        }

        public readonly QueueEntry Current => _owner._slots[_slot].Entry!;

        public readonly EntryEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            while (++_slot < _owner._slotsUsed)
            {
                if (_owner._slots[_slot].Entry is not null) return true;
            }
            return false;
        }
    }
}
