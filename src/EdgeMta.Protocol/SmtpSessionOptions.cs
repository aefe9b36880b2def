// Contract: the settings a session runs with, read once into precomputed bytes the hot path only indexes.
//
// Defaults are PROTOCOL.md's: 25 MiB messages, 1000 recipients, 512-octet lines (RFC 5321 §4.5.3.1.4),
// 20 errors (Postfix smtpd_hard_error_limit), 300 s command / 600 s data timeouts (RFC 5321 §4.5.3.2.7-8
// give 5 and 10 minutes). Local domains belong to the RecipientDirectory, which is built with them.
// The options object is immutable once a session has used it (Prepared is computed on first use).
using System.Text;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol;

/// <summary>How VRFY is answered (PROTOCOL.md "Other commands and replies").</summary>
public enum VrfyMode : byte
{
    /// <summary>252 2.5.2: cannot verify, will attempt delivery (RFC 5321 §3.5.3). The default.</summary>
    Ambiguous,
    /// <summary>250 Name &lt;addr&gt; / 550 / 553 from the recipient directory.</summary>
    Enabled,
    /// <summary>502 5.5.1.</summary>
    Disabled,
}

/// <summary>Session settings; see PROTOCOL.md "Command line" for the flag each one comes from.</summary>
public sealed class SmtpSessionOptions
{
    private PreparedOptions? _prepared;

    /// <summary>--hostname: named in the greeting, EHLO, 221/421 and Received:. ASCII, no spaces.</summary>
    public string HostName { get; init; } = "localhost";
    public long MaxMessageSize { get; init; } = 26_214_400;
    public int MaxRecipients { get; init; } = 1000;
    /// <summary>Recipients past <see cref="MaxRecipients"/> answered 452 4.5.3 before each further one counts
    /// toward <see cref="ErrorLimit"/> (Postfix smtpd_recipient_overshoot_limit, same default).</summary>
    public int RecipientOvershootLimit { get; init; } = 1000;
    public int LineLimit { get; init; } = CommandParser.DefaultLineLimit;
    public int ErrorLimit { get; init; } = 20;
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan DataTimeout { get; init; } = TimeSpan.FromSeconds(600);
    public VrfyMode Vrfy { get; init; } = VrfyMode.Ambiguous;
    /// <summary>--expn enabled: EXPN lists the members of a directory list; otherwise 502.</summary>
    public bool ExpnEnabled { get; init; }
    /// <summary>--legacy-send: SEND, SOML, SAML act as MAIL (docs/seeds/003 "Verifying and Sending").</summary>
    public bool LegacySend { get; init; }
    public BareNewlinePolicy BareNewlines { get; init; } = BareNewlinePolicy.Reject;
    /// <summary>--refuse-mail: 521 at connect, then close (RFC 7504).</summary>
    public bool RefuseMail { get; init; }
    /// <summary>A certificate is configured: STARTTLS is advertised and accepted.</summary>
    public bool TlsAvailable { get; init; }
    /// <summary>--require-tls: MAIL before STARTTLS is 530 5.7.0.</summary>
    public bool RequireTls { get; init; }
    /// <summary>--greet-delay: the host waits this long before the 220; a client talking first is dropped (554 5.5.0).</summary>
    public TimeSpan GreetDelay { get; init; } = TimeSpan.Zero;
    /// <summary>Sender domains refused by policy at MAIL (550 5.7.1, PROTOCOL.md "MAIL FROM refused by policy"). Empty by default.</summary>
    public IReadOnlyList<string> RefusedSenderDomains { get; init; } = [];
    /// <summary>Where the sessions count the commands they answer, by verb; null counts nothing.</summary>
    public CommandCounters? Commands { get; init; }

    /// <summary>Longest host name (RFC 1035 §2.3.4: a domain name is at most 255 octets); the Received:
    /// header's bound assumes it.</summary>
    public const int MaxHostNameLength = 255;

    /// <summary>What a host name in the greeting and the Received: header may be: printable ASCII, no spaces.</summary>
    public static bool IsValidHostName(string host)
    {
        if (host.Length is 0 or > MaxHostNameLength)
        {
            return false;
        }
        foreach (char c in host)
        {
            if (c <= ' ' || c >= 127)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The precomputed form; built once, on first use.</summary>
    public PreparedOptions Prepared => _prepared ??= new PreparedOptions(this);
}

/// <summary>Replies and limits precomputed from <see cref="SmtpSessionOptions"/>: byte arrays built once.</summary>
public sealed class PreparedOptions
{
    internal PreparedOptions(SmtpSessionOptions o)
    {
        if (o.LineLimit < 16 || o.MaxRecipients < 1 || o.ErrorLimit < 1 || o.MaxMessageSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(o), "line limit >= 16, recipients, errors and size >= 1");
        }
        string host = o.HostName;
        if (!SmtpSessionOptions.IsValidHostName(host))
        {
            throw new ArgumentException($"the host name must be 1 to {SmtpSessionOptions.MaxHostNameLength} printable ASCII characters without spaces", nameof(o));
        }
        HostName = Encoding.ASCII.GetBytes(host);
        Greeting = Line($"220 {host} ESMTP ready");
        GreetingTeaser = Line($"220-{host} ESMTP ready");
        Goodbye = Line($"221 2.0.0 {host} closing connection");
        TooManyErrors = Line($"421 4.7.0 {host} Error: too many errors");
        TooManyConnections = Line($"421 4.7.0 {host} Error: too many connections");
        Timeout = Line($"421 4.4.2 {host} Error: timeout exceeded");
        ShuttingDown = Line($"421 4.3.2 {host} Service shutting down");
        RefuseMail = Line($"521 5.3.2 {host} does not accept mail");
        EhloPrefix = Encoding.ASCII.GetBytes($"250-{host} greets ");
        HeloPrefix = Encoding.ASCII.GetBytes($"250 {host} greets ");
        ExtensionsWithoutStartTls = Extensions(o, startTls: false);
        ExtensionsWithStartTls = o.TlsAvailable ? Extensions(o, startTls: true) : ExtensionsWithoutStartTls;
        RefusedSenderDomains = new byte[o.RefusedSenderDomains.Count][];
        for (int i = 0; i < RefusedSenderDomains.Length; i++)
        {
            RefusedSenderDomains[i] = Encoding.UTF8.GetBytes(o.RefusedSenderDomains[i]);
        }
    }

    public byte[] HostName { get; }
    /// <summary>220 &lt;host&gt; ESMTP ready (no software name or version, STYLE.md §10).</summary>
    public byte[] Greeting { get; }
    /// <summary>220-&lt;host&gt; ESMTP ready: the first line of a multi-line greeting, sent at once while a greet
    /// delay holds the final line back (postscreen's teaser, docs/SCREENING.md "Early talkers").</summary>
    public byte[] GreetingTeaser { get; }
    public byte[] Goodbye { get; }
    public byte[] TooManyErrors { get; }
    /// <summary>421 4.7.0 for a connection over the global or per-address limit (sent by the server, not a session).</summary>
    public byte[] TooManyConnections { get; }
    public byte[] Timeout { get; }
    public byte[] ShuttingDown { get; }
    public byte[] RefuseMail { get; }
    internal byte[] EhloPrefix { get; }
    internal byte[] HeloPrefix { get; }
    internal byte[] ExtensionsWithoutStartTls { get; }
    internal byte[] ExtensionsWithStartTls { get; }
    internal byte[][] RefusedSenderDomains { get; }

    private static byte[] Line(string text) => Encoding.ASCII.GetBytes(text + "\r\n");

    /// <summary>The EHLO keywords after the greeting line (RFC 5321 §4.1.1.1), the last one with "250 ".</summary>
    private static byte[] Extensions(SmtpSessionOptions o, bool startTls)
    {
        var lines = new List<string>
        {
            "PIPELINING",                         // RFC 2920
            $"SIZE {o.MaxMessageSize}",           // RFC 1870
            "8BITMIME",                           // RFC 6152
            "SMTPUTF8",                           // RFC 6531
            "ENHANCEDSTATUSCODES",                // RFC 2034
            "CHUNKING",                           // RFC 3030
            "BINARYMIME",                         // RFC 3030: BODY=BINARYMIME with BDAT only
        };
        if (startTls)
        {
            lines.Add("STARTTLS");                // RFC 3207
        }
        lines.Add("DSN");                         // RFC 3461
        if (o.Vrfy == VrfyMode.Enabled)
        {
            lines.Add("VRFY");
        }
        lines.Add("HELP");
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Count; i++)
        {
            sb.Append(i == lines.Count - 1 ? "250 " : "250-").Append(lines[i]).Append("\r\n");
        }
        return Encoding.ASCII.GetBytes(sb.ToString());
    }
}
