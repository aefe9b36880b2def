// Contract: the scheduler's view of each next hop (--relay, in order) and the choice of the next attempt.
//
// - A hop is alive or dead. It dies when it fails as a whole: refused or timed-out connection, a 421 or other
//   bad greeting, a failed required TLS handshake (docs/DELIVERY.md "The next hop as a whole"). While dead it
//   gets one probe per ProbeInterval, min(60 s, --retry-min) (Postfix transport_retry_time 60 s), and only one
//   at a time: the probe is an ordinary entry's attempt, and nothing else goes to that hop while it runs.
// - Messages whose attempt failed with the hop wait for a live hop, not on their own backoff: one connection per
//   probe interval instead of one per message (RFC 5321 §4.5.4.1's "more sophisticated strategies"; Exim's
//   per-host retry; Postfix's dead destination). When a hop comes alive they are all due at once (RFC 1123
//   §5.3.1.1: mail from a host is good evidence that queued mail to it can be sent).
// - Hops are used in --relay order: a later hop only while every earlier one is dead (docs/DELIVERY.md, the
//   --relay flag). A live hop at its concurrency limit makes the next take wait; it does not spill to a later
//   hop. Probes go to dead hops before the first live one, so the agent finds out when it can go back.
// - Concurrency: --relay-concurrency attempts in flight per hop; after a revival the limit starts at SlowStart
//   and grows by one per successful session (Postfix initial_destination_concurrency 5, feedback +1).
// What it does not do: decide that a hop failed. The agent reads the replies and calls MarkDead and MarkAlive;
// they return whether the state changed, so the agent logs relay-dead and relay-alive once per change.
namespace EdgeMta.Delivery;

/// <summary>One next hop as the scheduler sees it, for metrics and logs.</summary>
/// <param name="Alive">False while the hop is dead (only probes go to it).</param>
/// <param name="InFlight">Attempts running on it.</param>
/// <param name="Limit">Its concurrency window now (slow start after a revival, up to --relay-concurrency).</param>
/// <param name="NextProbeUnixMs">While dead: when its next probe may start, Unix ms.</param>
/// <param name="ProbeInFlight">While dead: its probe is running.</param>
public readonly record struct HopState(bool Alive, int InFlight, int Limit, long NextProbeUnixMs, bool ProbeInFlight);

public sealed partial class DeliveryScheduler
{
    private sealed class HopSlot
    {
        public bool Dead;
        public int InFlight;
        public int Limit;
        public long NextProbeUnixMs;
        /// <summary>The probe's entry while a dead hop's probe runs.</summary>
        public QueueEntry? Probe;
    }

    private readonly HopSlot[] _hops;

    /// <summary>How many next hops there are (SchedulerOptions.Hops).</summary>
    public int Hops => _hops.Length;

    /// <summary>The state of <paramref name="hop"/>.</summary>
    public HopState GetHopState(int hop)
    {
        CheckHop(hop);
        HopSlot h = _hops[hop];
        return new HopState(!h.Dead, h.InFlight, h.Limit, h.Dead ? h.NextProbeUnixMs : 0, h.Probe is not null);
    }

    /// <summary>
    /// The hop failed as a whole. True when it was alive (log relay-dead); its first probe is one probe interval
    /// from now. Attempts already running on it finish as they will.
    /// </summary>
    public bool MarkDead(int hop)
    {
        CheckHop(hop);
        HopSlot h = _hops[hop];
        if (h.Dead) return false;
        MarkDeadCore(h, Now());
        return true;
    }

    /// <summary>
    /// A session with the hop worked (a probe, or any attempt). True when it was dead (log relay-alive): every
    /// entry waiting for a hop is due at once, and the hop's limit restarts at SlowStart.
    /// </summary>
    public bool MarkAlive(int hop)
    {
        CheckHop(hop);
        HopSlot h = _hops[hop];
        if (!h.Dead) return false;
        h.Dead = false;
        // A probe still running is an ordinary attempt now; its Finished no longer schedules a probe.
        h.Probe = null;
        h.Limit = Math.Min(_options.SlowStart, _options.Concurrency);
        long now = Now();
        while (_waiting.Count > 0)
        {
            int slot = _waiting.Pop();
            _slots[slot].Lane = Lane.Deferred;
            _slots[slot].Entry!.NextAttemptUnixMs = now;
            _deferred.Set(slot, now);
        }
        return true;
    }

    private void MarkDeadCore(HopSlot h, long now)
    {
        h.Dead = true;
        h.NextProbeUnixMs = AddMs(now, _probeIntervalMs);
    }

    private bool AnyHopAlive()
    {
        foreach (HopSlot h in _hops)
        {
            if (!h.Dead) return true;
        }
        return false;
    }

    /// <summary>The soonest probe of any dead hop: the "next attempt" a waiting entry shows in queue list.</summary>
    private long NextProbeUnixMs()
    {
        long next = long.MaxValue;
        foreach (HopSlot h in _hops)
        {
            if (h.Dead) next = Math.Min(next, h.NextProbeUnixMs);
        }
        return next;
    }

    /// <summary>The hop the next take goes to, in --relay order: a dead hop whose probe is due, or the first live
    /// hop when it is under its limit. False when neither.</summary>
    private bool SelectHop(long now, out int hop, out bool probe)
    {
        for (int i = 0; i < _hops.Length; i++)
        {
            HopSlot h = _hops[i];
            if (h.Dead)
            {
                if (h.Probe is null && now >= h.NextProbeUnixMs)
                {
                    hop = i;
                    probe = true;
                    return true;
                }
                continue;
            }
            hop = i;
            probe = false;
            // The first live hop at its limit: wait for it rather than spill to a later hop.
            return h.InFlight < h.Limit;
        }
        hop = -1;
        probe = false;
        return false;
    }

    /// <summary>Takes the next entry out of its lane: incoming first, the deferred lane every IncomingPerDeferred-th
    /// take while both have due work; a probe may also take an entry waiting for a hop. -1 when none.</summary>
    private int PickSlot(long now, bool probe)
    {
        bool incoming = _incoming.Count > 0;
        bool deferred = _deferred.Count > 0 && _deferred.PeekKey <= now;
        if (incoming && deferred)
        {
            if (_incomingStreak >= IncomingPerDeferred - 1)
            {
                _incomingStreak = 0;
                return _deferred.Pop();
            }
            _incomingStreak++;
            return _incoming.Pop();
        }
        if (incoming) return _incoming.Pop();
        if (deferred)
        {
            _incomingStreak = 0;
            return _deferred.Pop();
        }
        if (probe && _waiting.Count > 0) return _waiting.Pop();
        return -1;
    }

    /// <summary>The soonest instant a take could succeed if nothing else happens (no Finished, no new mail);
    /// long.MaxValue when only an event can make one possible.</summary>
    private long NextTakeUnixMs(long now)
    {
        long entryAt = _incoming.Count > 0 ? now
            : _deferred.Count > 0 ? Math.Max(now, _deferred.PeekKey)
            : long.MaxValue;
        long probeEntryAt = _waiting.Count > 0 ? now : entryAt;
        long next = long.MaxValue;
        foreach (HopSlot h in _hops)
        {
            if (h.Dead)
            {
                if (h.Probe is null && probeEntryAt != long.MaxValue)
                {
                    next = Math.Min(next, Math.Max(h.NextProbeUnixMs, probeEntryAt));
                }
                continue;
            }
            if (h.InFlight < h.Limit) next = Math.Min(next, entryAt);
            break;
        }
        return next;
    }
}
