// Contract: what every connection's blocklist screening shares (docs/SCREENING.md "DNS blocklists and
// allowlists"): the sites and threshold, the action, the resolver, the verdict cache, the counters and the
// rate of the trouble log. Built once at start from DnsblOptions; hands out a DnsblScreening per connection
// handler (CreateScreening), which the handler keeps with itself in the pool.
//
// Logging DNS trouble: one line per zone and failure kind at most every TroubleLogInterval, carrying how many
// like it were suppressed since the last one, so a dead resolver under a flood of connections writes a line
// every 10 s per zone, not one per connection. Every failure is counted all the same.
using System.Net;
using EdgeMta.Policy;
using EdgeMta.Server.Dns;
using EdgeMta.Server.Logging;

namespace EdgeMta.Server.Screening;

/// <summary>What a blocked client gets (--dnsbl-action).</summary>
public enum DnsblAction : byte
{
    /// <summary>The session goes on; every RCPT gets 550 5.7.1.</summary>
    Enforce,

    /// <summary>521 5.7.1 at connect (verdict cached) or at EHLO/HELO, then close.</summary>
    Drop,

    /// <summary>Logged and counted only.</summary>
    Ignore,
}

/// <summary>The blocklist flags, parsed (ServeFlags: --dnsbl, --dnsbl-threshold, --dnsbl-action, --dns-server,
/// --dns-timeout).</summary>
public sealed record DnsblOptions(IReadOnlyList<DnsblSite> Sites, int Threshold, DnsblAction Action,
    IReadOnlyList<IPEndPoint> Servers, TimeSpan Timeout, int CacheCapacity = DnsblOptions.DefaultCacheCapacity)
{
    /// <summary>Clients whose verdict is kept: 100,000 entries of about 100 octets, some 10 MB at most.</summary>
    public const int DefaultCacheCapacity = 100_000;

    /// <summary>--dns-timeout's default: below postscreen's 10 s so a verdict is ready before a client that waits
    /// for the greeting's full delay sends its first RCPT (research/screening.md §2).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);
}

/// <summary>Counters of the blocklist screening (docs/OPERATIONS.md: edgemta_dnsbl_*).</summary>
public sealed class DnsblCounters
{
    private readonly long[] _blocked = new long[3]; // by DnsblAction
    private long _listed, _clean, _error, _timeout;

    public long QueriesListed => Interlocked.Read(ref _listed);
    public long QueriesClean => Interlocked.Read(ref _clean);
    public long QueriesError => Interlocked.Read(ref _error);
    public long QueriesTimeout => Interlocked.Read(ref _timeout);

    /// <summary>Blocked connections by action (for ignore: the ones that would have been refused).</summary>
    public long Blocked(DnsblAction action) => Interlocked.Read(ref _blocked[(int)action]);

    internal void CountQuery(bool listed, DnsResult result)
    {
        switch (result)
        {
            case DnsResult.Answered or DnsResult.NoSuchName when listed: Interlocked.Increment(ref _listed); break;
            case DnsResult.Answered or DnsResult.NoSuchName: Interlocked.Increment(ref _clean); break;
            case DnsResult.Timeout: Interlocked.Increment(ref _timeout); break;
            default: Interlocked.Increment(ref _error); break;
        }
    }

    internal void CountBlocked(DnsblAction action) => Interlocked.Increment(ref _blocked[(int)action]);
}

/// <summary>The blocklists of one server; per-connection screenings come from <see cref="CreateScreening"/>.</summary>
public sealed class Blocklists : IDisposable
{
    /// <summary>At most one dnsbl-trouble line per zone and failure kind this often.</summary>
    public static readonly TimeSpan TroubleLogInterval = TimeSpan.FromSeconds(10);

    private readonly long[] _nextTroubleLog;
    private readonly long[] _suppressed;
    private readonly IDisposable? _ownedResolver;

    /// <param name="resolver">Null: a UdpDnsResolver on <paramref name="options"/>' servers, owned and disposed here.</param>
    public Blocklists(DnsblOptions options, ServerLog log, TimeProvider? clock = null, IDnsResolver? resolver = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (options.Sites.Count is 0 or > MaxSites) throw new ArgumentException($"1 to {MaxSites} sites", nameof(options));
        Options = options;
        Log = log;
        Clock = clock ?? TimeProvider.System;
        Score = new DnsblScore(options.Sites, options.Threshold);
        Cache = new DnsblVerdictCache(options.CacheCapacity, Clock);
        if (resolver is null)
        {
            var udp = new UdpDnsResolver(options.Servers, options.Timeout, Clock);
            _ownedResolver = udp;
            resolver = udp;
        }
        Resolver = resolver;
        _nextTroubleLog = new long[options.Sites.Count * TroubleKinds];
        _suppressed = new long[options.Sites.Count * TroubleKinds];
    }

    /// <summary>Sites at most: the site index travels in the low 8 bits of a query's token (DnsblScreening).</summary>
    public const int MaxSites = 255;

    private const int TroubleKinds = 4; // timeout, servfail, malformed, not-sent

    public DnsblOptions Options { get; }
    public DnsblScore Score { get; }
    public DnsblVerdictCache Cache { get; }
    public DnsblCounters Counters { get; } = new();
    internal IDnsResolver Resolver { get; }
    internal ServerLog Log { get; }
    internal TimeProvider Clock { get; }

    /// <summary>A screening for one connection handler, reused for each connection it serves (Open/Start,
    /// Close/Stop); <paramref name="listener"/> hears of verdicts the session was told to wait for.</summary>
    internal DnsblScreening CreateScreening(IVerdictListener? listener = null) => new(this, listener);

    public void Dispose() => _ownedResolver?.Dispose();

    // One line per zone and kind per interval (see the contract), with the count of the ones not logged.
    internal void Trouble(int site, DnsResult result)
    {
        int kind = result switch
        {
            DnsResult.Timeout => 0,
            DnsResult.ServerFailure => 1,
            DnsResult.Malformed => 2,
            _ => 3,
        };
        int slot = site * TroubleKinds + kind;
        long now = Clock.GetTimestamp();
        long next = Volatile.Read(ref _nextTroubleLog[slot]);
        long interval = (long)(TroubleLogInterval.TotalSeconds * Clock.TimestampFrequency);
        if (now < next || Interlocked.CompareExchange(ref _nextTroubleLog[slot], now + interval, next) != next)
        {
            Interlocked.Increment(ref _suppressed[slot]);
            return;
        }
        ReadOnlySpan<byte> name = kind switch
        {
            0 => "timeout"u8,
            1 => "servfail"u8,
            2 => "malformed"u8,
            _ => "not-sent"u8,
        };
        Log.Begin(LogEvent.DnsblTrouble).Field("zone"u8, Score.Sites[site].Zone).Field("result"u8, name)
            .Field("suppressed"u8, Interlocked.Exchange(ref _suppressed[slot], 0)).End();
    }
}
