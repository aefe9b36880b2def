// Contract: per-client event counts over a 60 s window, as Postfix's anvil(8) keeps them for
// smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit and smtpd_client_recipient_rate_limit
// (docs/SCREENING.md, "Per-client rate limits"): connections, MAIL commands and RCPT commands, per ClientKey.
//
// The window is anvil's (anvil_rate_time_unit = 60s; anvil.c resets a client's rates once
// start + unit < now): one window per client, opened by its first event and shared by the three kinds, and
// closed by the first event 60 s or more after it opened, which starts a new one from zero. Not a sliding
// window: a client may get up to 2N events in a 60 s span straddling a reset, as with Postfix, and in return
// an entry is one timestamp and three counts, and an operator's Postfix numbers mean the same here.
//
// Bounded: the table holds at most `capacity` clients (100,000 by default), in memory allocated once at
// construction; counting allocates nothing. It is set-associative: a key's hash picks a set of 8 slots,
// guarded by one of 64 striped locks held for a scan of those 8 slots only. A new client takes a free slot,
// else one whose window has expired, else evicts the slot with the fewest events (the oldest window among
// equals). So a flood of distinct keys (fresh IPv6 /84s, each with one connection) churns among its own
// one-event entries and cannot grow the table, while a busy client, the one a limit is for, keeps its
// slot. An evicted client fails open: its next event finds no entry and is counted from zero, as a
// restarted anvil counts everyone. The hash is ClientKey's own (deterministic); a client set up to collide
// with a busy one still cannot push it out with one-event entries.
//
// What it does not do: decide (the caller compares the count with its limit), exempt trusted networks
// (the caller's), or persist anything (anvil: "volatile memory only").
namespace EdgeMta.Policy;

/// <summary>The events a <see cref="RateTable"/> counts per client.</summary>
public enum RateKind : byte
{
    /// <summary>Connections (--client-connection-rate).</summary>
    Connection,

    /// <summary>MAIL commands (--client-message-rate).</summary>
    Mail,

    /// <summary>RCPT commands (--client-recipient-rate).</summary>
    Recipient,
}

/// <summary>Per-client event counts over <see cref="Window"/>, in bounded memory, safe from many threads.</summary>
public sealed class RateTable
{
    /// <summary>Clients kept at most, unless the constructor says otherwise.</summary>
    public const int DefaultCapacity = 100_000;

    /// <summary>Slots per set: a key lives in one set; eviction chooses among these.</summary>
    internal const int Ways = 8;

    private const int Stripes = 64;

    /// <summary>anvil_rate_time_unit.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(60);

    private readonly Slot[] _slots;
    private readonly Lock[] _locks;
    private readonly uint _sets;
    private readonly TimeProvider _clock;
    private readonly long _origin;
    private readonly long _windowTicks;
    private long _evictions;

    private struct Slot
    {
        public ClientKey Key;
        public long Start;       // timestamp ticks when the window opened
        public int Connections;
        public int Mails;
        public int Recipients;
        public bool Used;

        public readonly long Total => (long)Connections + Mails + Recipients;
    }

    /// <param name="capacity">Clients kept at most (rounded up to a multiple of 8).</param>
    /// <param name="clock">Time for the windows (tests pass a fake).</param>
    public RateTable(int capacity = DefaultCapacity, TimeProvider? clock = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _clock = clock ?? TimeProvider.System;
        _sets = (uint)((capacity + Ways - 1) / Ways);
        _slots = new Slot[_sets * Ways];
        _locks = new Lock[Stripes];
        for (int i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new Lock();
        }
        _origin = _clock.GetTimestamp();
        _windowTicks = (long)(Window.TotalSeconds * _clock.TimestampFrequency);
    }

    /// <summary>Slots in the table: the most clients it keeps at once.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Clients pushed out by others since start (each then counted from zero again).</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>
    /// Counts one event of <paramref name="kind"/> for <paramref name="client"/> and returns how many of that
    /// kind the client has had in its current window, this one included (anvil counts refused events too).
    /// </summary>
    public int Add(ClientKey client, RateKind kind) => Update(client, kind, add: true);

    /// <summary>How many events of <paramref name="kind"/> the client has had in its current window (0 with no
    /// entry or an expired one), without counting one.</summary>
    public int Peek(ClientKey client, RateKind kind) => Update(client, kind, add: false);

    /// <summary>Clients with an entry now (expired ones included until reused): a scan, for tests and metrics.</summary>
    public int CountEntries()
    {
        int used = 0;
        for (uint set = 0; set < _sets; set++)
        {
            lock (_locks[set % Stripes])
            {
                for (int i = 0; i < Ways; i++)
                {
                    if (_slots[set * Ways + i].Used) used++;
                }
            }
        }
        return used;
    }

    private int Update(ClientKey client, RateKind kind, bool add)
    {
        uint set = (uint)client.GetHashCode() % _sets;
        long now = _clock.GetTimestamp() - _origin;
        Span<Slot> ways = _slots.AsSpan((int)(set * Ways), Ways);
        lock (_locks[set % Stripes])
        {
            int victim = -1;
            for (int i = 0; i < ways.Length; i++)
            {
                ref Slot slot = ref ways[i];
                if (slot.Used && slot.Key == client)
                {
                    if (now - slot.Start >= _windowTicks)
                    {
                        if (!add) return 0;
                        Open(ref slot, client, now);
                    }
                    return add ? Increment(ref slot, kind) : Read(in slot, kind);
                }
                if (victim < 0 || Better(in slot, in ways[victim], now))
                {
                    victim = i;
                }
            }
            if (!add)
            {
                return 0;
            }
            ref Slot taken = ref ways[victim];
            if (taken.Used && now - taken.Start < _windowTicks)
            {
                Interlocked.Increment(ref _evictions);
            }
            Open(ref taken, client, now);
            return Increment(ref taken, kind);
        }
    }

    /// <summary>Whether <paramref name="candidate"/> is a better slot to give away than <paramref name="current"/>:
    /// free, then expired, then fewest events, then the oldest window.</summary>
    private bool Better(in Slot candidate, in Slot current, long now)
    {
        int c = Rank(in candidate, now), k = Rank(in current, now);
        if (c != k) return c < k;
        if (c < 2) return false;
        long ct = candidate.Total, kt = current.Total;
        return ct != kt ? ct < kt : candidate.Start < current.Start;
    }

    private int Rank(in Slot slot, long now) => !slot.Used ? 0 : now - slot.Start >= _windowTicks ? 1 : 2;

    private static void Open(ref Slot slot, ClientKey client, long now)
    {
        slot.Key = client;
        slot.Start = now;
        slot.Connections = slot.Mails = slot.Recipients = 0;
        slot.Used = true;
    }

    private static int Increment(ref Slot slot, RateKind kind)
    {
        ref int count = ref slot.Recipients;
        if (kind == RateKind.Connection)
        {
            count = ref slot.Connections;
        }
        else if (kind == RateKind.Mail)
        {
            count = ref slot.Mails;
        }
        if (count < int.MaxValue) count++; // saturates: a count past 2^31 in 60 s is over any limit anyway
        return count;
    }

    private static int Read(in Slot slot, RateKind kind) => kind switch
    {
        RateKind.Connection => slot.Connections,
        RateKind.Mail => slot.Mails,
        _ => slot.Recipients,
    };
}
