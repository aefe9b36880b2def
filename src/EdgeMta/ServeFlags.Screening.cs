// The screening flags of `edgemta [serve]` (docs/SCREENING.md): DNS blocklists and rspamd, and how they
// become their options. A part of ServeFlags for its size; the same rules hold: every value is checked at
// parse time, a bad one is a one-line error and exit 2.
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net;
using EdgeMta.Server.Rspamd;
using EdgeMta.Server.Screening;

namespace EdgeMta;

internal sealed partial class ServeFlags
{
    // DNS blocklists (docs/SCREENING.md "DNS blocklists and allowlists"). Each site is parsed by the flag's own
    // parser, so a bad one is the flag's one-line error (DnsblSite's message) and exit 2.
    public readonly Option<EdgeMta.Policy.DnsblSite[]> Dnsbl = new("--dnsbl")
    {
        Description = "A DNS blocklist (or allowlist, negative weight): zone[=filter][*weight], Postfix's postscreen_dnsbl_sites syntax; repeatable",
        Arity = ArgumentArity.OneOrMore,
        CustomParser = r =>
        {
            var sites = new EdgeMta.Policy.DnsblSite[r.Tokens.Count];
            for (int i = 0; i < sites.Length; i++)
            {
                if (!EdgeMta.Policy.DnsblSite.TryParse(r.Tokens[i].Value, out EdgeMta.Policy.DnsblSite? site, out string error))
                {
                    r.AddError($"--dnsbl: {error}");
                    return [];
                }
                sites[i] = site;
            }
            if (sites.Length > Blocklists.MaxSites) r.AddError($"--dnsbl: more than {Blocklists.MaxSites} sites");
            return sites;
        },
    };
    public readonly Option<int> DnsblThreshold = new("--dnsbl-threshold")
    {
        Description = "A client whose summed weight reaches this is blocked",
        DefaultValueFactory = _ => 1,
        CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int n)) return n;
            r.AddError($"--dnsbl-threshold: '{text}' is not a whole number");
            return 1;
        },
    };
    public readonly Option<string> DnsblAction = new("--dnsbl-action")
    {
        Description = "A blocked client: enforce (550 5.7.1 to every RCPT), drop (521 5.7.1 and close), ignore (log only)",
        DefaultValueFactory = _ => "enforce",
    };
    public readonly Option<IPEndPoint[]> DnsServer = new("--dns-server")
    {
        Description = "A DNS server for the blocklists: ADDR[:PORT]; repeatable (default: the nameservers of /etc/resolv.conf)",
        Arity = ArgumentArity.OneOrMore,
        CustomParser = r =>
        {
            var servers = new IPEndPoint[r.Tokens.Count];
            for (int i = 0; i < servers.Length; i++)
            {
                string text = r.Tokens[i].Value;
                if (IPAddress.TryParse(text, out IPAddress? address) && !text.StartsWith('['))
                {
                    servers[i] = new IPEndPoint(address, 53); // a bare address, IPv6 ones included ("::1")
                }
                else if (IPEndPoint.TryParse(text, out IPEndPoint? endpoint) && HasPort(text) && endpoint.Port > 0)
                {
                    servers[i] = endpoint;
                }
                else
                {
                    r.AddError($"--dns-server: '{text}' is not ADDR or ADDR:PORT (e.g. 127.0.0.1:5353 or [::1]:53)");
                    return [];
                }
            }
            return servers;
        },
    };
    public readonly Option<TimeSpan?> DnsTimeout = Duration("--dns-timeout", "A blocklist not answering by then counts as not listed", "5s");

    private void AddDnsblTo(Command command)
    {
        DnsblAction.AcceptOnlyFromAmong("enforce", "drop", "ignore");
        foreach (Option option in (Option[])[Dnsbl, DnsblThreshold, DnsblAction, DnsServer, DnsTimeout]) command.Options.Add(option);
        command.Validators.Add(r =>
        {
            if (!HasErrors(r, DnsTimeout) && Value(r.GetValue(DnsTimeout), DnsTimeout) is var t && (t <= TimeSpan.Zero || t > TimeSpan.FromMinutes(5)))
            {
                r.AddError("--dns-timeout: must be above 0 and at most 5m");
            }
        });
    }

    // Null without --dnsbl: no lookups, no resolver, no socket.
    private DnsblOptions? DnsblOptionsOf(ParseResult p)
    {
        if (p.GetValue(Dnsbl) is not { Length: > 0 } sites) return null;
        return new DnsblOptions(sites, p.GetValue(DnsblThreshold),
            p.GetValue(DnsblAction) switch { "drop" => Server.Screening.DnsblAction.Drop, "ignore" => Server.Screening.DnsblAction.Ignore, _ => Server.Screening.DnsblAction.Enforce },
            p.GetValue(DnsServer) is { Length: > 0 } servers ? servers : EdgeMta.Server.Dns.ResolvConf.Load(),
            Value(p.GetValue(DnsTimeout), DnsTimeout));
    }

    private RspamdOptions? RspamdOptionsOf(ParseResult p)
    {
        if (p.GetValue(Rspamd) is not { } url || !RspamdOptions.TryParseUrl(url, out EndPoint endPoint, out string authority, out _)) return null;
        return new RspamdOptions
        {
            EndPoint = endPoint,
            Authority = authority,
            Timeout = Value(p.GetValue(RspamdTimeout), RspamdTimeout),
            Fail = p.GetValue(RspamdFail) == "tempfail" ? RspamdFailMode.Tempfail : RspamdFailMode.Accept,
        };
    }
}
