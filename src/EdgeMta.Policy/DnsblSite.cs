// Contract: one --dnsbl site in Postfix's postscreen_dnsbl_sites syntax, verbatim (docs/SCREENING.md "DNS
// blocklists and allowlists"): `zone[=filter][*weight]`.
//
// - zone: a DNS name (letters, digits, '-', '_', dots; a trailing dot is dropped, case folded), short enough
//   that the longest query name (an IPv6 client: 64 nibble labels, 64 octets of text) plus the zone fits
//   RFC 1035 §2.3.4's 255-octet name limit.
// - filter: `d.d.d.d`, each d a number 0..255 or `[...]` holding ';'-separated numbers and `a..b` ranges
//   (postconf(5) postscreen_dnsbl_sites). An answer address counts when each of its four octets is in its set.
// - weight: an integer, default 1, negative for allowlists; "postscreen adds that pattern's weight once" however
//   many of the site's answers match (postconf(5)).
// - No filter: only answers in 127.0.0.0/24 count. Postfix counts "any non-error result"; lists answer
//   their errors in-band (Spamhaus 127.255.255.252..255 for queries through public resolvers or over quota),
//   and 127.0.0.0/24 is what every list's listings use and what maddy defaults to (research/screening.md §2).
//
// Parsed like Postfix's psc_dnsbl.c: the weight is split off at the last '*', then the filter at the first
// '='. What it does not do: query DNS or hold answers (DnsblScore.cs adds them up). How it fails: TryParse
// answers false with a one-line message for the flag's error; nothing throws.
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace EdgeMta.Policy;

/// <summary>A blocklist (or allowlist, with a negative weight) and which of its answers count.</summary>
public sealed class DnsblSite
{
    /// <summary>Longest zone: 255 (RFC 1035 §2.3.4) minus an IPv6 query prefix (64 labels of "x." = 128 octets),
    /// minus the root label.</summary>
    public const int MaxZoneLength = 126;

    // Per octet, the 256 values allowed, as four 64-bit words (a bit set: the value matches).
    private readonly ulong[] _allowed;

    private DnsblSite(string zone, ulong[] allowed, int weight, string text)
    {
        Zone = zone;
        _allowed = allowed;
        Weight = weight;
        Text = text;
    }

    /// <summary>The zone queried, lower case, no trailing dot: "zen.example".</summary>
    public string Zone { get; }

    /// <summary>What a match adds to the client's score; negative for an allowlist.</summary>
    public int Weight { get; }

    /// <summary>The flag's text as given, for logs.</summary>
    public string Text { get; }

    /// <summary>True when at least one answer passes the filter (the weight counts once whatever the number).</summary>
    public bool MatchesAny(ReadOnlySpan<uint> answers)
    {
        foreach (uint answer in answers)
        {
            if (Matches(answer)) return true;
        }
        return false;
    }

    /// <summary>True when the IPv4 answer (big-endian order: 127.0.0.2 is 0x7F000002) passes the filter.</summary>
    public bool Matches(uint answer)
    {
        for (int octet = 0; octet < 4; octet++)
        {
            int value = (int)(answer >> (24 - 8 * octet)) & 0xFF;
            if ((_allowed[octet * 4 + (value >> 6)] & (1UL << (value & 63))) == 0) return false;
        }
        return true;
    }

    /// <summary>Parses `zone[=filter][*weight]`; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out DnsblSite? site, out string error)
    {
        site = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty site; expected zone[=filter][*weight]";
            return false;
        }
        ReadOnlySpan<char> rest = text.AsSpan().Trim();
        int weight = 1;
        int star = rest.LastIndexOf('*');
        if (star >= 0)
        {
            ReadOnlySpan<char> w = rest[(star + 1)..];
            if (!int.TryParse(w, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out weight))
            {
                error = $"'{text}': weight '{w}' is not an integer";
                return false;
            }
            rest = rest[..star];
        }
        var allowed = new ulong[16];
        int equals = rest.IndexOf('=');
        if (equals >= 0)
        {
            if (!TryParseFilter(rest[(equals + 1)..], allowed, out error))
            {
                error = $"'{text}': {error}";
                return false;
            }
            rest = rest[..equals];
        }
        else
        {
            SetOctet(allowed, 0, 127, 127);
            SetOctet(allowed, 1, 0, 0);
            SetOctet(allowed, 2, 0, 0);
            SetOctet(allowed, 3, 0, 255);
        }
        if (rest.EndsWith('.')) rest = rest[..^1];
        if (!IsZone(rest))
        {
            error = $"'{text}': '{rest}' is not a DNS zone of at most {MaxZoneLength} octets";
            return false;
        }
        site = new DnsblSite(rest.ToString().ToLowerInvariant(), allowed, weight, text);
        error = "";
        return true;
    }

    // d.d.d.d, d = number | "[" item *(";" item) "]", item = number | number ".." number (postconf(5)).
    private static bool TryParseFilter(ReadOnlySpan<char> filter, ulong[] allowed, out string error)
    {
        int octet = 0;
        int i = 0;
        while (true)
        {
            if (octet == 4)
            {
                error = $"filter '{filter}' has more than four parts";
                return false;
            }
            if (i < filter.Length && filter[i] == '[')
            {
                int close = filter[i..].IndexOf(']');
                if (close < 0)
                {
                    error = $"filter '{filter}': '[' without ']'";
                    return false;
                }
                ReadOnlySpan<char> items = filter.Slice(i + 1, close - 1);
                if (items.IsEmpty)
                {
                    error = $"filter '{filter}': empty []";
                    return false;
                }
                foreach (Range r in items.Split(';'))
                {
                    ReadOnlySpan<char> item = items[r];
                    int dots = item.IndexOf("..", StringComparison.Ordinal);
                    ReadOnlySpan<char> lowText = dots < 0 ? item : item[..dots];
                    ReadOnlySpan<char> highText = dots < 0 ? item : item[(dots + 2)..];
                    if (!TryOctet(lowText, out int low) || !TryOctet(highText, out int high) || low > high)
                    {
                        error = $"filter '{filter}': '{item}' is not a number or range in 0..255";
                        return false;
                    }
                    SetOctet(allowed, octet, low, high);
                }
                i += close + 1;
            }
            else
            {
                int end = i;
                while (end < filter.Length && filter[end] != '.') end++;
                if (!TryOctet(filter[i..end], out int value))
                {
                    error = $"filter '{filter}': '{filter[i..end]}' is not a number in 0..255";
                    return false;
                }
                SetOctet(allowed, octet, value, value);
                i = end;
            }
            octet++;
            if (i == filter.Length) break;
            if (filter[i] != '.')
            {
                error = $"filter '{filter}': expected '.' after part {octet}";
                return false;
            }
            i++;
        }
        if (octet != 4)
        {
            error = $"filter '{filter}' does not have four parts (d.d.d.d)";
            return false;
        }
        error = "";
        return true;
    }

    private static bool TryOctet(ReadOnlySpan<char> text, out int value)
    {
        if (text.Length is > 0 and <= 3 && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value <= 255)
        {
            return true;
        }
        value = 0;
        return false;
    }

    private static void SetOctet(ulong[] allowed, int octet, int low, int high)
    {
        for (int v = low; v <= high; v++) allowed[octet * 4 + (v >> 6)] |= 1UL << (v & 63);
    }

    // RFC 1035 §2.3.1 preferred syntax, loosened to digits first (RFC 1123 §2.1) and '_' (lists with keys in
    // their names); labels 1..63 octets.
    private static bool IsZone(ReadOnlySpan<char> zone)
    {
        if (zone.IsEmpty || zone.Length > MaxZoneLength) return false;
        foreach (Range r in zone.Split('.'))
        {
            ReadOnlySpan<char> label = zone[r];
            if (label.IsEmpty || label.Length > 63 || label[0] == '-' || label[^1] == '-') return false;
            foreach (char c in label)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_')) return false;
            }
        }
        return true;
    }
}
