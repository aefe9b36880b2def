// Contract: reads one --relay URL (docs/DELIVERY.md, the flag table) into the next hop it names.
//
//   relay      = ( "smtp://" / "lmtp://" ) host [ ":" port ]  /  "lmtp+unix:" path
//   host       = name / IPv4address / "[" IPv6address "]"     ; RFC 3986 §3.2.2
//   port       = 1*5DIGIT, 1 to 65535; 25 for smtp (RFC 5321 §4.5.4.2), 24 for lmtp (IANA's
//                port for private mail systems; RFC 2033 forbids LMTP on 25)
//   path       = "/" 1*char, at most 107 octets (sun_path holds 108 with its NUL, unix(7))
// Schemes compare without regard to case (RFC 3986 §3.1). A name is LDH labels of 1 to 63 characters, at most
// 253 in all (RFC 1123 §2.1), with "_" also allowed because container service names use it and resolve. A host
// of only digits and dots must be a dotted quad of 0-255 without leading zeros, as 010.0.0.1 means 8.0.0.1 to
// some resolvers and 10.0.0.1 to others.
//
// Everything else is refused with one line naming what is wrong, for stderr and exit 2: no scheme, another
// scheme, user information ("user@"), a path after an smtp or lmtp host, a query or fragment, an empty host, an
// IPv6 address without brackets, a port of 0, over 65535 or not a number, spaces or control characters, and
// "lmtp+unix://" (two slashes would make "//host/..." a path). It resolves nothing and opens nothing.
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Delivery;

/// <summary>How the client reaches a next hop.</summary>
public enum RelayKind : byte
{
    /// <summary>SMTP over TCP (smtp://).</summary>
    Smtp,
    /// <summary>LMTP over TCP (lmtp://, RFC 2033).</summary>
    Lmtp,
    /// <summary>LMTP over a Unix domain socket (lmtp+unix:).</summary>
    LmtpUnix,
}

/// <summary>One next hop from --relay.</summary>
public sealed class RelayEndpoint
{
    public const int SmtpPort = 25;
    public const int LmtpPort = 24;
    /// <summary>unix(7): sun_path is 108 octets, one of them the terminating NUL.</summary>
    public const int MaxSocketPathBytes = 107;

    private const string Forms = "write smtp://HOST[:PORT], lmtp://HOST[:PORT] or lmtp+unix:/PATH";

    private RelayEndpoint(RelayKind kind, string host, IPAddress? address, int port, string path)
    {
        Kind = kind;
        Host = host;
        Address = address;
        Port = port;
        Path = path;
    }

    public RelayKind Kind { get; }

    /// <summary>True for LMTP: LHLO instead of EHLO, one reply per recipient after the data (RFC 2033 §4).</summary>
    public bool IsLmtp => Kind != RelayKind.Smtp;

    /// <summary>The name or address as written, an IPv6 address without its brackets; empty for a socket path.</summary>
    public string Host { get; }

    /// <summary>The address when the host is an IPv4 or IPv6 literal; null for a name (resolved when connecting).</summary>
    public IPAddress? Address { get; }

    /// <summary>The TCP port; 0 for a socket path.</summary>
    public int Port { get; }

    /// <summary>The Unix socket path for <see cref="RelayKind.LmtpUnix"/>; empty otherwise.</summary>
    public string Path { get; }

    /// <summary>HOST:PORT ([IPv6]:PORT) or the socket path: the relay= field of docs/DELIVERY.md's log lines.</summary>
    public override string ToString() => Kind == RelayKind.LmtpUnix
        ? Path
        : Address is { AddressFamily: AddressFamily.InterNetworkV6 } ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    /// <summary>True with <paramref name="endpoint"/> for a valid --relay URL; false with <paramref name="error"/>.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out RelayEndpoint? endpoint, out string error)
    {
        endpoint = null;
        if (string.IsNullOrEmpty(text))
            return Fail($"relay is empty; {Forms}", out error);
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
                return Fail($"relay '{Printable(text)}' contains a space or control character", out error);
        }

        int colon = text.IndexOf(':');
        if (colon <= 0)
            return Fail($"relay '{text}' has no scheme; {Forms}", out error);
        var scheme = text.AsSpan(0, colon);
        var rest = text.AsSpan(colon + 1);

        if (scheme.Equals("lmtp+unix", StringComparison.OrdinalIgnoreCase))
        {
            if (!TryParsePath(text, rest, out error))
                return false;
            endpoint = new RelayEndpoint(RelayKind.LmtpUnix, string.Empty, null, 0, rest.ToString());
            return true;
        }

        RelayKind kind;
        if (scheme.Equals("smtp", StringComparison.OrdinalIgnoreCase))
            kind = RelayKind.Smtp;
        else if (scheme.Equals("lmtp", StringComparison.OrdinalIgnoreCase))
            kind = RelayKind.Lmtp;
        else
            return Fail($"relay '{text}' has an unknown scheme '{scheme}'; {Forms}", out error);

        if (!rest.StartsWith("//"))
            return Fail($"relay '{text}' needs '//' after '{scheme}:'; {Forms}", out error);
        var authority = rest[2..];
        // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'; an '@' before that is user information.
        int end = authority.IndexOfAny("/?#@");
        if (end >= 0)
        {
            return authority[end] switch
            {
                '@' => Fail($"relay '{text}' has user information ('user@'); it is not supported", out error),
                '/' => Fail($"relay '{text}' has a path; {scheme}:// takes only HOST[:PORT]", out error),
                _ => Fail($"relay '{text}' has a query or fragment ('{authority[end]}'); it takes only HOST[:PORT]", out error),
            };
        }

        int defaultPort = kind == RelayKind.Smtp ? SmtpPort : LmtpPort;
        if (!TryParseAuthority(text, authority, defaultPort, out string host, out var address, out int port, out error))
            return false;
        endpoint = new RelayEndpoint(kind, host, address, port, string.Empty);
        return true;
    }

    private static bool TryParsePath(string text, ReadOnlySpan<char> path, out string error)
    {
        if (path.StartsWith("//"))
            return Fail($"relay '{text}': write lmtp+unix:/PATH with one slash, as lmtp+unix:/run/lmtp.sock", out error);
        if (path.IsEmpty || path[0] != '/')
            return Fail($"relay '{text}' needs an absolute socket path: lmtp+unix:/PATH", out error);
        if (path.Length == 1)
            return Fail($"relay '{text}' names no socket: lmtp+unix:/PATH", out error);
        if (path.IndexOfAny('?', '#') >= 0)
            return Fail($"relay '{text}' has a query or fragment; lmtp+unix: takes only a path", out error);
        if (Encoding.UTF8.GetByteCount(path) > MaxSocketPathBytes)
            return Fail($"relay '{text}': a Unix socket path is at most {MaxSocketPathBytes} bytes", out error);
        error = string.Empty;
        return true;
    }

    // host [ ":" port ], with host = "[" IPv6address "]" / IPv4address / name.
    private static bool TryParseAuthority(string text, ReadOnlySpan<char> authority, int defaultPort, out string host, out IPAddress? address, out int port, out string error)
    {
        host = string.Empty;
        address = null;
        port = defaultPort;
        ReadOnlySpan<char> portText;
        bool hasPort;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']');
            if (close < 0)
                return Fail($"relay '{text}' has '[' with no ']'", out error);
            var literal = authority[1..close];
            if (!IPAddress.TryParse(literal, out address) || address.AddressFamily != AddressFamily.InterNetworkV6)
                return Fail($"relay '{text}': '[{literal}]' is not an IPv6 address", out error);
            host = literal.ToString();
            var after = authority[(close + 1)..];
            if (!after.IsEmpty && after[0] != ':')
                return Fail($"relay '{text}' has '{after}' after ']'; expected ':PORT'", out error);
            hasPort = !after.IsEmpty;
            portText = hasPort ? after[1..] : default;
        }
        else
        {
            int colon = authority.IndexOf(':');
            if (colon >= 0 && authority.LastIndexOf(':') != colon)
                return Fail($"relay '{text}': an IPv6 address must be in brackets, as smtp://[2001:db8::1]:25", out error);
            var name = colon < 0 ? authority : authority[..colon];
            if (name.IsEmpty)
                return Fail($"relay '{text}' has no host", out error);
            if (!TryParseHost(name, out address, out string reason))
                return Fail($"relay '{text}': {reason}", out error);
            host = name.ToString();
            hasPort = colon >= 0;
            portText = hasPort ? authority[(colon + 1)..] : default;
        }

        if (hasPort && !TryParsePort(portText, out port, out string portError))
            return Fail($"relay '{text}': {portError}", out error);
        error = string.Empty;
        return true;
    }

    private static bool TryParseHost(ReadOnlySpan<char> name, out IPAddress? address, out string reason)
    {
        address = null;
        if (name.ContainsAnyInRange('0', '9') && !name.ContainsAnyExcept("0123456789."))
        {
            if (!IsDottedQuad(name))
                return Fail($"'{name}' is not an IPv4 address (four numbers 0-255 without leading zeros)", out reason);
            address = IPAddress.Parse(name);
            reason = string.Empty;
            return true;
        }

        var labels = name.EndsWith('.') ? name[..^1] : name;
        if (labels.Length > 253)
            return Fail($"host name '{name}' is longer than 253 characters", out reason);
        foreach (var range in labels.Split('.'))
        {
            var label = labels[range];
            if (label.Length is 0 or > 63)
                return Fail($"host name '{name}' has an empty label or one over 63 characters", out reason);
            if (label[0] == '-' || label[^1] == '-')
                return Fail($"host name '{name}' has a label that starts or ends with '-'", out reason);
            foreach (char c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_'))
                    return Fail($"host name '{name}' has '{c}'; use letters, digits, '-' and '.'", out reason);
            }
        }

        reason = string.Empty;
        return true;
    }

    // IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet   ; RFC 3986 §3.2.2, no leading zeros
    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        int parts = 0;
        foreach (var range in text.Split('.'))
        {
            var part = text[range];
            if (++parts > 4 || part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0') || int.Parse(part) > 255)
                return false;
        }

        return parts == 4;
    }

    private static bool TryParsePort(ReadOnlySpan<char> text, out int port, out string reason)
    {
        port = 0;
        if (text.IsEmpty)
            return Fail("the port after ':' is empty", out reason);
        if (text.ContainsAnyExceptInRange('0', '9'))
            return Fail($"port '{text}' is not a number", out reason);
        if (text.Length > 5 || (port = int.Parse(text)) is 0 or > 65535)
            return Fail($"port {text} is out of range 1-65535", out reason);
        reason = string.Empty;
        return true;
    }

    // Control characters shown as \uXXXX so the error stays one line.
    private static string Printable(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (char.IsControl(c))
                sb.Append($"\\u{(int)c:x4}");
            else
                sb.Append(c);
        }

        return sb.ToString();
    }

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
