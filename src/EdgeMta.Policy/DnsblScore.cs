// Contract: postscreen's scoring of a client's blocklist answers (docs/SCREENING.md "DNS blocklists and
// allowlists"; postconf(5) postscreen_dnsbl_sites, postscreen_dnsbl_threshold), and the query names.
//
// The score is the sum of the weights of the sites with at least one matching answer, each site once; the
// client is blocked when the score reaches --dnsbl-threshold. The reply names the listed zone of largest
// (positive) weight, the first given on a tie, as postscreen's psc_dnsbl_retrieve does. A site that did not
// answer, failed or timed out simply did not match (the contract: not listed).
// Query names (RFC 5782 §2.1 for IPv4, §2.4 for IPv6): the IPv4 octets reversed, or the 32 nibbles of the
// IPv6 address reversed, then the zone; an IPv4-mapped IPv6 client is its IPv4 address.
// What it does not do: ask DNS, or keep anything (DnsblVerdictCache.cs keeps verdicts).
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Policy;

/// <summary>What the blocklists said about one client, once every zone has answered or timed out.</summary>
public sealed class DnsblVerdict
{
    /// <summary>A client no site listed (no allocation per clean connection).</summary>
    public static readonly DnsblVerdict Clean = new(0, false, null, "");

    public DnsblVerdict(int score, bool blocked, string? replyZone, string listedZones)
    {
        Score = score;
        Blocked = blocked;
        ReplyZone = replyZone;
        ListedZones = listedZones;
    }

    /// <summary>The summed weights of the matching sites.</summary>
    public int Score { get; }

    /// <summary>The score reached the threshold.</summary>
    public bool Blocked { get; }

    /// <summary>The matching zone of largest positive weight (for the reply); null when none.</summary>
    public string? ReplyZone { get; }

    /// <summary>The matching zones, comma-separated, in site order, each once (for the log); empty when none.</summary>
    public string ListedZones { get; }

    /// <summary>At least one site matched (allowlists included).</summary>
    public bool Listed => ListedZones.Length > 0;
}

/// <summary>The configured sites and threshold; turns per-site matches into a verdict.</summary>
public sealed class DnsblScore
{
    private readonly DnsblSite[] _sites;

    public DnsblScore(IEnumerable<DnsblSite> sites, int threshold)
    {
        ArgumentNullException.ThrowIfNull(sites);
        _sites = [.. sites];
        Threshold = threshold;
    }

    /// <summary>The sites, in the order given.</summary>
    public IReadOnlyList<DnsblSite> Sites => _sites;

    /// <summary>--dnsbl-threshold: a score at or above it blocks.</summary>
    public int Threshold { get; }

    /// <summary>The verdict for <paramref name="matched"/>[i] = site i had a matching answer.</summary>
    public DnsblVerdict Verdict(ReadOnlySpan<bool> matched)
    {
        if (matched.Length != _sites.Length) throw new ArgumentException("one flag per site", nameof(matched));
        int score = 0;
        int best = -1;
        bool any = false;
        for (int i = 0; i < _sites.Length; i++)
        {
            if (!matched[i]) continue;
            any = true;
            score += _sites[i].Weight;
            if (_sites[i].Weight > 0 && (best < 0 || _sites[i].Weight > _sites[best].Weight)) best = i;
        }
        if (!any) return DnsblVerdict.Clean;
        var zones = new StringBuilder();
        for (int i = 0; i < _sites.Length; i++)
        {
            if (!matched[i] || AlreadyNamed(matched, i)) continue;
            if (zones.Length > 0) zones.Append(',');
            zones.Append(_sites[i].Zone);
        }
        return new DnsblVerdict(score, score >= Threshold, best < 0 ? null : _sites[best].Zone, zones.ToString());
    }

    // The same zone may be given twice with different filters (list.dnswl.org's two ranges): name it once.
    private bool AlreadyNamed(ReadOnlySpan<bool> matched, int site)
    {
        for (int j = 0; j < site; j++)
        {
            if (matched[j] && _sites[j].Zone == _sites[site].Zone) return true;
        }
        return false;
    }

    /// <summary>The name to query for <paramref name="client"/> in <paramref name="zone"/>:
    /// "2.0.0.127.zone", or 32 reversed nibbles for IPv6 (RFC 5782 §2.1, §2.4).</summary>
    public static string QueryName(IPAddress client, string zone)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(zone);
        if (client.IsIPv4MappedToIPv6) client = client.MapToIPv4();
        Span<byte> bytes = stackalloc byte[16];
        client.TryWriteBytes(bytes, out int length);
        var name = new StringBuilder(64 + 1 + zone.Length);
        if (client.AddressFamily == AddressFamily.InterNetwork)
        {
            for (int i = length - 1; i >= 0; i--) name.Append(bytes[i]).Append('.');
        }
        else
        {
            for (int i = length - 1; i >= 0; i--)
            {
                name.Append("0123456789abcdef"[bytes[i] & 0xF]).Append('.');
                name.Append("0123456789abcdef"[bytes[i] >> 4]).Append('.');
            }
        }
        return name.Append(zone).ToString();
    }
}
