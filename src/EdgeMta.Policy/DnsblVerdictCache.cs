// Contract: blocklist verdicts by client address, each kept for its answers' TTL clamped to [60 s, 1 h]
// (docs/SCREENING.md; Postfix's postscreen_dnsbl_min_ttl 60s and postscreen_dnsbl_max_ttl 1h), in memory
// bounded by a capacity fixed at construction.
//
// The key is the client's full address (an IPv6 /128, mapped IPv4 as IPv4), not the /84 of the rate limits:
// blocklists list single addresses, and a neighbour's listing says nothing of this client.
// Bounded: a table of at most Capacity entries and a ring of the same size holding the keys in the order they
// were first stored. When the table is full, a new client takes the slot of the oldest one (first in, first
// out): one array write, no scan, so a flood of distinct addresses costs constant time and never more memory.
// An expired entry answers as absent and is overwritten in place by the next verdict for its client, keeping its
// slot, so table and ring always hold the same keys.
// Threading: one short lock around a dictionary operation; nothing inside it waits. Time from a TimeProvider.
using System.Net;

namespace EdgeMta.Policy;

/// <summary>Verdicts by client address, for their DNS TTL, in bounded memory.</summary>
public sealed class DnsblVerdictCache
{
    /// <summary>postscreen_dnsbl_min_ttl: a listing answered with a shorter TTL is still kept this long.</summary>
    public static readonly TimeSpan MinTtl = TimeSpan.FromSeconds(60);

    /// <summary>postscreen_dnsbl_max_ttl: nothing is kept longer, whatever the zone's TTL.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromHours(1);

    private readonly Lock _gate = new();
    private readonly Dictionary<ClientKey, Entry> _entries;
    private readonly ClientKey[] _ring;
    private readonly TimeProvider _clock;
    private int _next;

    public DnsblVerdictCache(int capacity, TimeProvider clock)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentNullException.ThrowIfNull(clock);
        _clock = clock;
        _entries = new Dictionary<ClientKey, Entry>(capacity);
        _ring = new ClientKey[capacity];
    }

    /// <summary>The most entries ever held.</summary>
    public int Capacity => _ring.Length;

    /// <summary>Entries held now (an expired one counts until its slot is reused).</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _entries.Count;
        }
    }

    /// <summary>The TTL a verdict is kept for: <paramref name="ttl"/> clamped to [MinTtl, MaxTtl].</summary>
    public static TimeSpan Clamp(TimeSpan ttl) => ttl < MinTtl ? MinTtl : ttl > MaxTtl ? MaxTtl : ttl;

    /// <summary>The verdict stored for <paramref name="client"/> and not yet expired.</summary>
    public bool TryGet(IPAddress client, out DnsblVerdict verdict)
    {
        ClientKey key = ClientKey.From(client, 128);
        long now = _clock.GetTimestamp();
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out Entry entry) && now < entry.ExpiresAt)
            {
                verdict = entry.Verdict;
                return true;
            }
        }
        verdict = DnsblVerdict.Clean;
        return false;
    }

    /// <summary>Keeps <paramref name="verdict"/> for <paramref name="ttl"/>, clamped.</summary>
    public void Store(IPAddress client, DnsblVerdict verdict, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(verdict);
        ClientKey key = ClientKey.From(client, 128);
        long expiresAt = _clock.GetTimestamp() + (long)(Clamp(ttl).TotalSeconds * _clock.TimestampFrequency);
        lock (_gate)
        {
            if (_entries.ContainsKey(key))
            {
                _entries[key] = new Entry(verdict, expiresAt); // keeps its slot in the ring
                return;
            }
            if (_entries.Count == _ring.Length) _entries.Remove(_ring[_next]); // full: the oldest goes
            _ring[_next] = key;
            _next = (_next + 1) % _ring.Length;
            _entries[key] = new Entry(verdict, expiresAt);
        }
    }

    private readonly record struct Entry(DnsblVerdict Verdict, long ExpiresAt);
}
