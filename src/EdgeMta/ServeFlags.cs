using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using EdgeMta.Delivery;
using EdgeMta.Policy;
using EdgeMta.Protocol;
using EdgeMta.Protocol.Data;
using EdgeMta.Server;
using EdgeMta.Server.Rspamd;
using EdgeMta.Server.Screening;
using EdgeMta.Spool;

namespace EdgeMta;

/// <summary>
/// The flags of `edgemta [serve]`, exactly as PROTOCOL.md's command-line contract spells them, and their
/// translation into <see cref="ServerOptions"/>. Every value is checked here, so a bad one is a one-line
/// error and exit code 2 before anything starts; nothing past this point parses text from the user.
/// </summary>
internal sealed partial class ServeFlags
{
    // Every default below is read from here: the libraries' own options types hold them (one source each).
    private static readonly ServerOptions Defaults = new();

    public readonly Option<IPEndPoint[]> Listen = new("--listen")
    {
        Description = "Address and port to listen on, ADDR:PORT or [IPv6]:PORT; repeatable; port 0 picks a free one",
        CustomParser = r => ParseEndPoints(r, "--listen"),
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
    };
    public readonly Option<IPEndPoint> MetricsListen = new("--metrics-listen")
    {
        Description = "Serve Prometheus metrics (GET /metrics) on ADDR:PORT; off by default; port 0 picks a free one",
        CustomParser = r => ParseEndPoints(r, "--metrics-listen") is [var endpoint] ? endpoint : null,
    };
    public readonly Option<string> Spool = new("--spool") { Description = "Spool directory", DefaultValueFactory = _ => Defaults.Spool.Directory };
    public readonly Option<string> HostName = new("--hostname") { Description = "Name in the greeting and Received: headers (default: the machine's name)" };
    public readonly Option<string[]> Domain = new("--domain") { Description = "A local domain; repeatable", Arity = ArgumentArity.OneOrMore };
    public readonly Option<FileInfo> Recipients = new("--recipients") { Description = "Recipient directory file (PROTOCOL.md format)" };
    public readonly Option<long> MaxMessageSize = new("--max-message-size") { Description = "Largest message in octets", DefaultValueFactory = _ => Defaults.Session.MaxMessageSize };
    public readonly Option<int> MaxRecipients = new("--max-recipients") { Description = "Recipients per message", DefaultValueFactory = _ => Defaults.Session.MaxRecipients };
    // No DefaultValueFactory: an absent flag (null) lets the host fit the default to the open-file limit quietly.
    public readonly Option<int> MaxConnections = new("--max-connections") { Description = $"Open connections in all (default {ServerOptions.DefaultMaxConnections}, or fewer to fit the open-file limit)" };
    public readonly Option<int> MaxConnectionsPerIp = new("--max-connections-per-ip") { Description = "Open connections from one address (loopback exempt)", DefaultValueFactory = _ => Defaults.MaxConnectionsPerAddress };
    public readonly Option<int> CommandTimeout = new("--command-timeout") { Description = "Seconds a client may idle between commands", DefaultValueFactory = _ => (int)Defaults.Session.CommandTimeout.TotalSeconds };
    public readonly Option<int> DataTimeout = new("--data-timeout") { Description = "Seconds a client may idle inside DATA", DefaultValueFactory = _ => (int)Defaults.Session.DataTimeout.TotalSeconds };
    public readonly Option<string> Vrfy = new("--vrfy") { Description = "VRFY: ambiguous (252), enabled, disabled (502)", DefaultValueFactory = _ => "ambiguous" };
    public readonly Option<string> Expn = new("--expn") { Description = "EXPN: disabled (502) or enabled", DefaultValueFactory = _ => "disabled" };
    public readonly Option<bool> LegacySend = new("--legacy-send") { Description = "SEND, SOML and SAML act as MAIL" };
    public readonly Option<string> BareNewline = new("--bare-newline") { Description = "Messages with bare CR or LF: reject (550 5.6.0) or normalize", DefaultValueFactory = _ => "reject" };
    public readonly Option<bool> RefuseMail = new("--refuse-mail") { Description = "Answer 521 at connect (RFC 7504) and close" };
    public readonly Option<FileInfo> TlsCert = new("--tls-cert") { Description = "PEM certificate for STARTTLS" };
    public readonly Option<FileInfo> TlsKey = new("--tls-key") { Description = "PEM private key for STARTTLS" };
    public readonly Option<bool> RequireTls = new("--require-tls") { Description = "Answer 530 5.7.0 to MAIL before STARTTLS" };
    public readonly Option<double> GreetDelay = new("--greet-delay") { Description = "Seconds to wait before the greeting; early talkers are refused", DefaultValueFactory = _ => Defaults.Session.GreetDelay.TotalSeconds };
    public readonly Option<string> Sync = new("--sync") { Description = "always: every 250 follows a durable write; none: benchmarks only", DefaultValueFactory = _ => "always" };
    public readonly Option<int> SpoolTimeout = new("--spool-timeout") { Description = "Seconds a session waits for the spool before 451 4.3.0", DefaultValueFactory = _ => (int)Defaults.Spool.CommitTimeout.TotalSeconds };
    public readonly Option<string[]> Relay = new("--relay") { Description = "Next hop: smtp://HOST[:PORT], lmtp://HOST[:PORT] or lmtp+unix:/PATH; repeatable (failover in order)", Arity = ArgumentArity.OneOrMore };
    public readonly Option<string> RelayTls = new("--relay-tls") { Description = "STARTTLS to the next hop: none, may, require, verify", DefaultValueFactory = _ => "may" };
    public readonly Option<FileInfo> RelayCa = new("--relay-ca") { Description = "PEM trust anchor for --relay-tls verify" };
    public readonly Option<int> RelayConcurrency = new("--relay-concurrency") { Description = "Connections open to one next hop", DefaultValueFactory = _ => 20 };
    public readonly Option<int> RelayRecipients = new("--relay-recipients") { Description = "Recipients in one outbound transaction", DefaultValueFactory = _ => 50 };
    public readonly Option<TimeSpan?> RetryMin = Duration("--retry-min", "Shortest wait before a deferred message is tried again", "300s");
    public readonly Option<TimeSpan?> RetryMax = Duration("--retry-max", "Longest wait before a deferred message is tried again", "4000s");
    public readonly Option<TimeSpan?> QueueLifetime = Duration("--queue-lifetime", "Deferred this long, a recipient fails and is bounced", "5d");
    public readonly Option<TimeSpan?> BounceLifetime = Duration("--bounce-lifetime", "The same for null-sender messages, dropped unbounced", "2d");
    public readonly Option<TimeSpan?> DelayWarning = Duration("--delay-warning", "One delay notice after this long (0: off)", "0");
    public readonly Option<bool> Verbose = new("--verbose") { Description = "Log every command and reply" };
    // docs/SCREENING.md "Per-client rate limits", as Postfix's smtpd_client_*_rate_limit: per 60 s, 0 = off.
    public readonly Option<int> ClientConnectionRate = new("--client-connection-rate") { Description = "Connections per client per 60 s; over it 421 4.7.0 and close (0: off)", DefaultValueFactory = _ => Defaults.ClientConnectionRate };
    public readonly Option<int> ClientMessageRate = new("--client-message-rate") { Description = "MAIL commands per client per 60 s; over it 450 4.7.1 (0: off)", DefaultValueFactory = _ => Defaults.ClientMessageRate };
    public readonly Option<int> ClientRecipientRate = new("--client-recipient-rate") { Description = "RCPT commands per client per 60 s; over it 450 4.7.1 (0: off)", DefaultValueFactory = _ => Defaults.ClientRecipientRate };
    // docs/SCREENING.md, "PROXY protocol" and "Per-client rate limits".
    public readonly Option<IPEndPoint[]> ListenProxy = new("--listen-proxy")
    {
        Description = "A listener whose connections begin with a PROXY header (v1 or v2), ADDR:PORT; repeatable; needs --proxy-trusted",
        CustomParser = r => ParseEndPoints(r, "--listen-proxy"),
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
    };
    public readonly Option<IPNetwork[]> ProxyTrusted = new("--proxy-trusted")
    {
        Description = "Who may connect to a --listen-proxy listener, CIDR; repeatable; anyone else is closed at accept",
        CustomParser = r => ParseNetworks(r, "--proxy-trusted"),
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
    };
    public readonly Option<TimeSpan?> ProxyTimeout = Duration("--proxy-timeout", "The PROXY header must be whole this long after accept", "5s");
    public readonly Option<int> ClientIpv6Prefix = new("--client-ipv6-prefix") { Description = "IPv6 clients are counted per /N by every per-client limit (1..128)", DefaultValueFactory = _ => Defaults.ClientIpv6Prefix };
    public readonly Option<IPNetwork[]> TrustedNetwork = new("--trusted-network")
    {
        Description = "Exempt from every per-client limit, CIDR; repeatable (default: 127.0.0.0/8 and ::1)",
        CustomParser = r => ParseNetworks(r, "--trusted-network"),
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
    };
    // docs/SCREENING.md "Slow clients".
    public readonly Option<int> MinDataRate = new("--min-data-rate") { Description = "Bytes per second message text must keep up in DATA and BDAT (each read of N bytes adds N/rate s to the data deadline)", DefaultValueFactory = _ => Defaults.SlowClients.MinDataRate };
    public readonly Option<int> StressThreshold = new("--stress-threshold") { Description = "Stress when open connections exceed this % of --max-connections (ends 10 points lower; 100: never)", DefaultValueFactory = _ => Defaults.SlowClients.StressThresholdPercent };
    public readonly Option<int> StressTimeout = new("--stress-timeout") { Description = "Seconds for a command or the data timeout under stress", DefaultValueFactory = _ => (int)Defaults.SlowClients.StressTimeout.TotalSeconds };
    public readonly Option<int> StressErrorLimit = new("--stress-error-limit") { Description = "Errors that close a session under stress", DefaultValueFactory = _ => Defaults.SlowClients.StressErrorLimit };
    // Content check by rspamd (docs/SCREENING.md).
    public readonly Option<string> Rspamd = new("--rspamd") { Description = "Check every message with rspamd's /checkv2 at http://HOST:PORT before it is spooled" };
    public readonly Option<TimeSpan?> RspamdTimeout = Duration("--rspamd-timeout", "Longest wait for rspamd's verdict on a message", "20s");
    public readonly Option<string> RspamdFail = new("--rspamd-fail") { Description = "An rspamd error or timeout: accept (unscanned) or tempfail (451 4.7.1)", DefaultValueFactory = _ => "accept" };

    public ServeFlags()
    {
        Vrfy.AcceptOnlyFromAmong("ambiguous", "enabled", "disabled");
        Expn.AcceptOnlyFromAmong("disabled", "enabled");
        BareNewline.AcceptOnlyFromAmong("reject", "normalize");
        Sync.AcceptOnlyFromAmong("always", "none");
        Positive(MaxMessageSize, EdgeMtaServer.MaxMessageSizeLimit); // a bigger one once made a segment recovery refused
        Positive(MaxRecipients);
        Positive(MaxConnections);
        Positive(MaxConnectionsPerIp);
        Positive(CommandTimeout);
        Positive(DataTimeout);
        Positive(SpoolTimeout);
        Positive(RelayConcurrency);
        Positive(RelayRecipients);
        RelayTls.AcceptOnlyFromAmong("none", "may", "require", "verify");
        NonNegative(ClientConnectionRate);
        NonNegative(ClientMessageRate);
        NonNegative(ClientRecipientRate);
        Positive(ClientIpv6Prefix, 128);
        Positive(MinDataRate);
        Positive(StressThreshold, 100);
        Positive(StressTimeout);
        Positive(StressErrorLimit);
        RspamdFail.AcceptOnlyFromAmong("accept", "tempfail");
        GreetDelay.CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out double v) && v >= 0 && v <= 300) return v;
            r.AddError($"--greet-delay: '{text}' is not a number of seconds from 0 to 300");
            return 0;
        };
    }

    public void AddTo(Command command)
    {
        foreach (Option option in (Option[])[Listen, Spool, HostName, Domain, Recipients, MaxMessageSize, MaxRecipients,
                     MaxConnections, MaxConnectionsPerIp, CommandTimeout, DataTimeout, Vrfy, Expn, LegacySend, BareNewline,
                     RefuseMail, TlsCert, TlsKey, RequireTls, GreetDelay, Sync, SpoolTimeout, Verbose, MetricsListen, Relay, RelayTls, RelayCa,
                     RelayConcurrency, RelayRecipients, RetryMin, RetryMax, QueueLifetime, BounceLifetime, DelayWarning,
                     ClientConnectionRate, ClientMessageRate, ClientRecipientRate,
                     ListenProxy, ProxyTrusted, ProxyTimeout, ClientIpv6Prefix, TrustedNetwork,
                     MinDataRate, StressThreshold, StressTimeout, StressErrorLimit])
        {
            command.Options.Add(option);
        }
        AddDnsblTo(command);
        foreach (Option option in (Option[])[Rspamd, RspamdTimeout, RspamdFail]) command.Options.Add(option);
        command.Validators.Add(r =>
        {
            if (r.GetValue(Rspamd) is { } rspamdUrl && !RspamdOptions.TryParseUrl(rspamdUrl, out _, out _, out string rspamdError))
            {
                r.AddError($"--rspamd: {rspamdError}");
            }
            if (!HasErrors(r, RspamdTimeout) && Value(r.GetValue(RspamdTimeout), RspamdTimeout) <= TimeSpan.Zero)
            {
                r.AddError("--rspamd-timeout: must be longer than 0");
            }
            bool cert = r.GetResult(TlsCert) is not null, key = r.GetResult(TlsKey) is not null;
            if (cert != key) r.AddError("--tls-cert and --tls-key go together");
            if (r.GetValue(RequireTls) && !cert) r.AddError("--require-tls needs a certificate: --tls-cert FILE --tls-key FILE");
            if (r.GetValue(TlsCert) is { Exists: false } certFile) r.AddError($"--tls-cert: no such file {certFile.FullName}");
            if (r.GetValue(TlsKey) is { Exists: false } keyFile) r.AddError($"--tls-key: no such file {keyFile.FullName}");
            foreach (string relay in r.GetValue(Relay) ?? [])
            {
                if (!RelayEndpoint.TryParse(relay, out _, out string error)) r.AddError($"--relay: {error}");
            }
            if (r.GetValue(RelayCa) is { Exists: false } ca) r.AddError($"--relay-ca: no such file {ca.FullName}");
            // Only when both parsed: reading a value that failed to parse throws instead of adding the one line.
            if (!HasErrors(r, RetryMin) && !HasErrors(r, RetryMax)
                && Value(r.GetValue(RetryMin), RetryMin) > Value(r.GetValue(RetryMax), RetryMax))
            {
                r.AddError("--retry-min is longer than --retry-max");
            }
            if (r.GetValue(Recipients) is { Exists: false } file) r.AddError($"--recipients: no such file {file.FullName}");
            // docs/SCREENING.md: no implicit trust-all for the PROXY header (spec §5; maddy's 0.9.6 security fix).
            if (r.GetResult(ListenProxy) is not null && r.GetResult(ProxyTrusted) is null)
            {
                r.AddError("--listen-proxy needs --proxy-trusted CIDR: who may send the PROXY header");
            }
            if (!HasErrors(r, ProxyTimeout) && Value(r.GetValue(ProxyTimeout), ProxyTimeout) <= TimeSpan.Zero)
            {
                r.AddError("--proxy-timeout: must be longer than 0");
            }
            if (r.GetValue(HostName) is { } host && !SmtpSessionOptions.IsValidHostName(host))
            {
                r.AddError($"--hostname: '{host}' is not 1 to {SmtpSessionOptions.MaxHostNameLength} printable ASCII characters without spaces");
            }
        });
    }

    public ServerOptions ToOptions(ParseResult p)
    {
        IPEndPoint[]? listen = p.GetValue(Listen);
        bool tls = p.GetValue(TlsCert) is not null;
        return new ServerOptions
        {
            Listen = listen ?? [], // none given: the server's default, unless systemd hands sockets over
            Session = new SmtpSessionOptions
            {
                HostName = p.GetValue(HostName) is { Length: > 0 } h ? h : Defaults.Session.HostName,
                MaxMessageSize = p.GetValue(MaxMessageSize),
                MaxRecipients = p.GetValue(MaxRecipients),
                CommandTimeout = TimeSpan.FromSeconds(p.GetValue(CommandTimeout)),
                DataTimeout = TimeSpan.FromSeconds(p.GetValue(DataTimeout)),
                Vrfy = p.GetValue(Vrfy) switch { "enabled" => VrfyMode.Enabled, "disabled" => VrfyMode.Disabled, _ => VrfyMode.Ambiguous },
                ExpnEnabled = p.GetValue(Expn) == "enabled",
                LegacySend = p.GetValue(LegacySend),
                BareNewlines = p.GetValue(BareNewline) == "normalize" ? BareNewlinePolicy.Normalize : BareNewlinePolicy.Reject,
                RefuseMail = p.GetValue(RefuseMail),
                // STARTTLS is advertised (and served) only with a certificate (RFC 3207 §4: otherwise 502).
                TlsAvailable = tls,
                RequireTls = p.GetValue(RequireTls),
                GreetDelay = TimeSpan.FromSeconds(p.GetValue(GreetDelay)),
                Commands = new CommandCounters(), // always counted: --metrics-listen only publishes them
            },
            Spool = Defaults.Spool with
            {
                Directory = p.GetValue(Spool)!,
                Sync = p.GetValue(Sync) == "none" ? SpoolSync.None : SpoolSync.Always,
                CommitTimeout = TimeSpan.FromSeconds(p.GetValue(SpoolTimeout)),
            },
            Domains = p.GetValue(Domain) ?? [],
            RecipientsFile = p.GetValue(Recipients)?.FullName,
            MaxConnections = p.GetResult(MaxConnections) is null ? null : p.GetValue(MaxConnections),
            MaxConnectionsPerAddress = p.GetValue(MaxConnectionsPerIp),
            TlsCertificateFile = p.GetValue(TlsCert)?.FullName,
            TlsKeyFile = p.GetValue(TlsKey)?.FullName,
            Verbose = p.GetValue(Verbose),
            MetricsListen = p.GetValue(MetricsListen),
            Delivery = DeliveryOptionsOf(p, p.GetValue(HostName) is { Length: > 0 } name ? name : Defaults.Session.HostName),
            ClientConnectionRate = p.GetValue(ClientConnectionRate),
            ClientMessageRate = p.GetValue(ClientMessageRate),
            ClientRecipientRate = p.GetValue(ClientRecipientRate),
            Dnsbl = DnsblOptionsOf(p),
            ListenProxy = p.GetValue(ListenProxy) ?? [],
            ProxyTrusted = p.GetValue(ProxyTrusted) ?? [],
            ProxyTimeout = Value(p.GetValue(ProxyTimeout), ProxyTimeout),
            ClientIpv6Prefix = p.GetValue(ClientIpv6Prefix),
            TrustedNetworks = p.GetValue(TrustedNetwork) is { Length: > 0 } trusted ? new ClientNetworks(trusted) : Defaults.TrustedNetworks,
            SlowClients = new SlowClientOptions
            {
                MinDataRate = p.GetValue(MinDataRate),
                StressThresholdPercent = p.GetValue(StressThreshold),
                StressTimeout = TimeSpan.FromSeconds(p.GetValue(StressTimeout)),
                StressErrorLimit = p.GetValue(StressErrorLimit),
            },
            Rspamd = RspamdOptionsOf(p),
        };
    }

    private DeliveryOptions? DeliveryOptionsOf(ParseResult p, string hostname)
    {
        string[] relays = p.GetValue(Relay) ?? [];
        if (relays.Length == 0) return null;
        var endpoints = new List<RelayEndpoint>(relays.Length);
        foreach (string relay in relays)
        {
            if (RelayEndpoint.TryParse(relay, out var endpoint, out _)) endpoints.Add(endpoint);
        }
        X509Certificate2Collection? anchors = null;
        if (p.GetValue(RelayCa) is { } ca)
        {
            anchors = new X509Certificate2Collection();
            anchors.ImportFromPemFile(ca.FullName);
        }
        return new DeliveryOptions
        {
            Relays = endpoints,
            Hostname = hostname,
            Tls = p.GetValue(RelayTls) switch { "none" => RelayTlsMode.None, "require" => RelayTlsMode.Require, "verify" => RelayTlsMode.Verify, _ => RelayTlsMode.May },
            TrustAnchors = anchors,
            MaxRecipients = p.GetValue(RelayRecipients),
            Scheduler = new SchedulerOptions
            {
                Concurrency = p.GetValue(RelayConcurrency),
                RetryMin = Value(p.GetValue(RetryMin), RetryMin),
                RetryMax = Value(p.GetValue(RetryMax), RetryMax),
                QueueLifetime = Value(p.GetValue(QueueLifetime), QueueLifetime),
                BounceLifetime = Value(p.GetValue(BounceLifetime), BounceLifetime),
                DelayWarning = Value(p.GetValue(DelayWarning), DelayWarning),
            },
        };
    }

    // DURATION (docs/DELIVERY.md): seconds, or a number with s, m, h or d; a bad one is one line and exit 2. Nullable
    // with the default in the description: the library's own "[default: 01:06:40]" would print a TimeSpan.
    private static Option<TimeSpan?> Duration(string name, string description, string defaultText)
    {
        DurationDefaults[name] = DurationParser.TryParse(defaultText, out TimeSpan fallback, out string bad)
            ? fallback : throw new ArgumentException(bad, nameof(defaultText));
        return new(name)
        {
            Description = $"{description} (seconds, or with s, m, h, d; default {defaultText})",
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (DurationParser.TryParse(text, out TimeSpan d, out string error)) return d;
                r.AddError($"{name}: {error}");
                return null;
            },
        };
    }

    // Filled by Duration() from each flag's default text, so the help and the value cannot disagree.
    private static readonly Dictionary<string, TimeSpan> DurationDefaults = new();

    private static bool HasErrors(CommandResult r, Option<TimeSpan?> option)
    {
        // The parser's error sits on the argument, not the option result: reading the value is the reliable test.
        try
        {
            _ = r.GetValue(option);
            return false;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private static TimeSpan Value(TimeSpan? given, Option<TimeSpan?> option) => given ?? DurationDefaults[option.Name];

    // A custom parser rather than a validator: a validator sees the value only after conversion, and a
    // conversion failure ("abc") would surface as an exception instead of the one-line error.
    private static void Positive<T>(Option<T> option, T? max = null) where T : struct, System.Numerics.INumber<T>, IParsable<T> =>
        option.CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (T.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out T value) && value > T.Zero)
            {
                if (max is not { } m || value <= m) return value;
                r.AddError($"{option.Name}: '{text}' is over the most allowed, {m}");
                return T.Zero;
            }
            r.AddError($"{option.Name}: '{text}' is not a positive whole number in range");
            return T.Zero;
        };

    // A count where 0 means off (the rate limits): a whole number from 0 up, nothing else.
    private static void NonNegative(Option<int> option) =>
        option.CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value))
            {
                return value;
            }
            r.AddError($"{option.Name}: '{text}' is not a whole number from 0 (off) to {int.MaxValue}");
            return 0;
        };

    private static IPEndPoint[] ParseEndPoints(ArgumentResult result, string flag)
    {
        var endpoints = new IPEndPoint[result.Tokens.Count];
        for (int i = 0; i < endpoints.Length; i++)
        {
            string text = result.Tokens[i].Value;
            if (!IPEndPoint.TryParse(text, out IPEndPoint? endpoint) || !HasPort(text))
            {
                result.AddError($"{flag}: '{text}' is not ADDR:PORT (e.g. 127.0.0.1:2525 or [::1]:2525)");
                return [];
            }
            endpoints[i] = endpoint;
        }
        return endpoints;
    }

    // CIDR blocks (or bare addresses) as ClientNetworks parses them: a block with host bits set is refused.
    private static IPNetwork[] ParseNetworks(ArgumentResult result, string flag)
    {
        var networks = new IPNetwork[result.Tokens.Count];
        for (int i = 0; i < networks.Length; i++)
        {
            string text = result.Tokens[i].Value;
            if (!ClientNetworks.TryParseNetwork(text, out IPNetwork? network))
            {
                result.AddError($"{flag}: '{text}' is not a network, CIDR (e.g. 192.0.2.0/24 or 2001:db8::/32)");
                return [];
            }
            networks[i] = network.Value;
        }
        return networks;
    }

    // IPEndPoint.TryParse accepts a bare address with port 0; the contract wants the port spelled out.
    private static bool HasPort(string text)
    {
        int colon = text.LastIndexOf(':');
        return colon > 0 && (text[0] != '[' || text[colon - 1] == ']');
    }
}
