// Contract: the answers of the PROXY header parser (ProxyHeader.cs) and the reasons a proxy listener closes a
// connection before its session (docs/SCREENING.md: one proxy-rejected line each, with the reason). Values
// only; the host names them in its log.
namespace EdgeMta.Transport.Proxy;

/// <summary>What <see cref="ProxyHeader.TryParse"/> made of the bytes so far.</summary>
public enum ProxyParseStatus
{
    /// <summary>A whole, valid header; its length is given.</summary>
    Complete,

    /// <summary>A strict prefix of a header that may still be valid: read more.</summary>
    Incomplete,

    /// <summary>Not a valid header, whatever follows: close (reason in <see cref="ProxyHeader.Error"/>).</summary>
    Invalid,
}

/// <summary>Why a proxy listener closed a connection before its session began (one log line each).</summary>
public enum ProxyRejectReason : byte
{
    /// <summary>Not rejected.</summary>
    None,

    /// <summary>Neither the v2 signature nor "PROXY " (spec §2: no guessing, drop the connection).</summary>
    BadSignature,

    /// <summary>A v1 line without CRLF within 107 bytes (spec §2.1).</summary>
    V1TooLong,

    /// <summary>A v1 line that breaks the grammar: double spaces, a bare CR or LF, a missing field.</summary>
    V1Malformed,

    /// <summary>v1 "UNKNOWN": refused (docs/SCREENING.md).</summary>
    V1Unknown,

    /// <summary>A v1 address that is not the protocol's family, or not a literal address.</summary>
    V1BadAddress,

    /// <summary>A v1 port with a leading zero, a sign, or over 65535.</summary>
    V1BadPort,

    /// <summary>A v2 version nibble other than 2 (spec §2.2: drop).</summary>
    V2BadVersion,

    /// <summary>A v2 command nibble other than LOCAL (0) or PROXY (1) (spec §2.2: drop).</summary>
    V2BadCommand,

    /// <summary>A v2 family byte unknown to the spec, or anything but TCP over IPv4/IPv6 for PROXY.</summary>
    V2BadFamily,

    /// <summary>A v2 length shorter than its family's address block.</summary>
    V2BadLength,

    /// <summary>A v2 header over 4 KiB (our cap; the format allows 65,551 bytes).</summary>
    TooLarge,

    /// <summary>The socket peer is outside --proxy-trusted: closed at accept, nothing read.</summary>
    Untrusted,

    /// <summary>The header was not complete --proxy-timeout after accept.</summary>
    TimedOut,

    /// <summary>The peer closed (or reset) before the header was complete.</summary>
    Closed,
}
