// Contract: the PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1 and 2; docs/SCREENING.md,
// "PROXY protocol"), parsed from the first bytes a proxy listener receives.
//
// What it does: detects the version by the first byte (v2 starts with CR, v1 with 'P'), answers Complete (with
// the header's length, so every byte after it stays SMTP input), Incomplete (every strict prefix of a valid
// header, and nothing else that can still become one within the limits), or Invalid with a reason for the log.
// Addresses are kept as bytes in the struct: a header is parsed without allocating; the connection makes its
// IPEndPoint once, after the header is complete.
//
// What it deliberately does not do: accept v1 UNKNOWN (it would hand the proxy's own address, often loopback
// and exempt from per-client limits, to every client behind it; Postfix refuses it too, haproxy_srvr.c);
// accept UDP or UNIX families for PROXY; interpret TLVs (skipped by the length field, always, even for LOCAL
// with a body: haproxy issue 511); verify CRC32C (the spec's MUST applies to receivers that support it).
//
// How it fails: never throws on input; the reason says which rule the bytes broke.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace EdgeMta.Transport.Proxy;

/// <summary>Sixteen address bytes held inline, so that a parsed header allocates nothing.</summary>
[InlineArray(16)]
public struct ProxyAddressBytes
{
    private byte _first;
}

/// <summary>A parsed PROXY header: who the proxy says the client is (or LOCAL: nobody, use the socket).</summary>
public struct ProxyHeader
{
    /// <summary>The most a v1 line may take, CRLF included (spec §2.1: "a 108-byte buffer is always enough").</summary>
    public const int MaxV1Length = 107;

    /// <summary>The most a v2 header may take here, address block and TLVs included (our cap).</summary>
    public const int MaxV2Length = 4096;

    internal const int V2FixedLength = 16;

    // \r\n\r\n\0\r\nQUIT\n (spec §2.2): contains a NUL, so it can never be mistaken for text.
    internal static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    private ProxyAddressBytes _source;
    private ProxyAddressBytes _destination;

    /// <summary>1 or 2.</summary>
    public byte Version { get; private set; }

    /// <summary>v2 LOCAL (a health check): no client behind it; the socket's own endpoints stand.</summary>
    public bool IsLocal { get; private set; }

    /// <summary>InterNetwork or InterNetworkV6 for the source (an IPv4-mapped IPv6 source is InterNetwork);
    /// Unspecified for LOCAL.</summary>
    public AddressFamily SourceFamily { get; private set; }

    /// <summary>As <see cref="SourceFamily"/>, for the destination.</summary>
    public AddressFamily DestinationFamily { get; private set; }

    /// <summary>The client's port.</summary>
    public ushort SourcePort { get; private set; }

    /// <summary>The port the client connected to on the proxy.</summary>
    public ushort DestinationPort { get; private set; }

    /// <summary>Why the bytes were Invalid (None otherwise).</summary>
    public ProxyRejectReason Error { get; private set; }

    /// <summary>The client's address bytes (4 or 16), empty for LOCAL.</summary>
    public readonly ReadOnlySpan<byte> SourceAddress(Span<byte> into) => Copy(_source, SourceFamily, into);

    /// <summary>The proxy-side address bytes (4 or 16), empty for LOCAL.</summary>
    public readonly ReadOnlySpan<byte> DestinationAddress(Span<byte> into) => Copy(_destination, DestinationFamily, into);

    /// <summary>The client as an endpoint (allocates: once per connection); null for LOCAL.</summary>
    public readonly IPEndPoint? ToSourceEndPoint()
    {
        if (IsLocal)
        {
            return null;
        }
        Span<byte> bytes = stackalloc byte[16];
        return new IPEndPoint(new IPAddress(SourceAddress(bytes)), SourcePort);
    }

    private static ReadOnlySpan<byte> Copy(scoped in ProxyAddressBytes address, AddressFamily family, Span<byte> into)
    {
        int length = family switch
        {
            AddressFamily.InterNetwork => 4,
            AddressFamily.InterNetworkV6 => 16,
            _ => 0,
        };
        ReadOnlySpan<byte> source = address;
        source[..length].CopyTo(into);
        return into[..length];
    }

    /// <summary>
    /// Parses the header at the start of <paramref name="input"/>. Complete: <paramref name="length"/> bytes are
    /// the header and the rest is the session's. Invalid: <see cref="Error"/> of <paramref name="header"/> says why.
    /// </summary>
    public static ProxyParseStatus TryParse(ReadOnlySpan<byte> input, out ProxyHeader header, out int length)
    {
        header = default;
        length = 0;
        if (input.IsEmpty)
        {
            return ProxyParseStatus.Incomplete;
        }
        ProxyParseStatus status = input[0] == V2Signature[0]
            ? ParseV2(input, ref header, out length)
            : ParseV1(input, ref header, out length);
        if (status != ProxyParseStatus.Complete)
        {
            length = 0;
        }
        return status;
    }

    private static ProxyParseStatus Fail(ref ProxyHeader header, ProxyRejectReason reason)
    {
        header = default;
        header.Error = reason;
        return ProxyParseStatus.Invalid;
    }

    // v2 (spec §2.2): signature(12) ver_cmd(1) fam(1) len(2, big-endian) then len bytes: the address block of
    // the family, then TLVs, all skipped by len.
    private static ProxyParseStatus ParseV2(ReadOnlySpan<byte> input, ref ProxyHeader header, out int length)
    {
        length = 0;
        ReadOnlySpan<byte> signature = V2Signature;
        int compared = Math.Min(input.Length, signature.Length);
        if (!input[..compared].SequenceEqual(signature[..compared]))
        {
            return Fail(ref header, ProxyRejectReason.BadSignature);
        }
        if (input.Length < 13)
        {
            return ProxyParseStatus.Incomplete;
        }
        byte versionCommand = input[12];
        if (versionCommand >> 4 != 2)
        {
            return Fail(ref header, ProxyRejectReason.V2BadVersion);
        }
        int command = versionCommand & 0x0F;
        if (command > 1)
        {
            return Fail(ref header, ProxyRejectReason.V2BadCommand);
        }
        if (input.Length < 14)
        {
            return ProxyParseStatus.Incomplete;
        }
        byte family = input[13];
        int addressBlock = family switch
        {
            0x11 => 12, // TCP over IPv4: src(4) dst(4) sport(2) dport(2)
            0x21 => 36, // TCP over IPv6: src(16) dst(16) sport(2) dport(2)
            0x00 or 0x12 or 0x22 or 0x31 or 0x32 => 0, // defined by the spec, refused below for PROXY
            _ => -1,
        };
        bool local = command == 0;
        if (addressBlock < 0 || (!local && addressBlock == 0))
        {
            return Fail(ref header, ProxyRejectReason.V2BadFamily);
        }
        if (input.Length < V2FixedLength)
        {
            return ProxyParseStatus.Incomplete;
        }
        int bodyLength = BinaryPrimitives.ReadUInt16BigEndian(input[14..]);
        int total = V2FixedLength + bodyLength;
        if (total > MaxV2Length)
        {
            return Fail(ref header, ProxyRejectReason.TooLarge);
        }
        if (!local && bodyLength < addressBlock)
        {
            return Fail(ref header, ProxyRejectReason.V2BadLength);
        }
        if (input.Length < total)
        {
            return ProxyParseStatus.Incomplete;
        }
        header.Version = 2;
        length = total;
        if (local)
        {
            // Spec §2.2: the receiver "must use the real connection endpoints"; the body (if any) is skipped.
            header.IsLocal = true;
            return ProxyParseStatus.Complete;
        }
        ReadOnlySpan<byte> body = input.Slice(V2FixedLength, addressBlock);
        int size = family == 0x11 ? 4 : 16;
        header.SourceFamily = SetAddress(ref header._source, body[..size]);
        header.DestinationFamily = SetAddress(ref header._destination, body.Slice(size, size));
        header.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(body[(2 * size)..]);
        header.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(body[(2 * size + 2)..]);
        return ProxyParseStatus.Complete;
    }

    /// <summary>Stores 4 or 16 address bytes; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is stored as
    /// IPv4, as Postfix does, so that every per-client decision sees one form.</summary>
    private static AddressFamily SetAddress(ref ProxyAddressBytes into, ReadOnlySpan<byte> address)
    {
        Span<byte> target = into;
        if (address.Length == 4)
        {
            address.CopyTo(target);
            return AddressFamily.InterNetwork;
        }
        if (IsIPv4Mapped(address))
        {
            address[12..].CopyTo(target);
            return AddressFamily.InterNetwork;
        }
        address.CopyTo(target);
        return AddressFamily.InterNetworkV6;
    }

    private static bool IsIPv4Mapped(ReadOnlySpan<byte> address) =>
        BinaryPrimitives.ReadUInt64BigEndian(address) == 0 && BinaryPrimitives.ReadUInt32BigEndian(address[8..]) == 0xFFFF;

    // v1 (spec §2.1): "PROXY" SP ( "TCP4" | "TCP6" | "UNKNOWN" ) SP src SP dst SP sport SP dport CRLF, at most
    // 107 bytes, single spaces, ports in decimal without leading zeros. A bare CR or LF never ends it.
    private static ProxyParseStatus ParseV1(ReadOnlySpan<byte> input, ref ProxyHeader header, out int length)
    {
        length = 0;
        ReadOnlySpan<byte> prefix = V1Prefix;
        int compared = Math.Min(input.Length, prefix.Length);
        if (!input[..compared].SequenceEqual(prefix[..compared]))
        {
            return Fail(ref header, ProxyRejectReason.BadSignature);
        }
        ReadOnlySpan<byte> window = input[..Math.Min(input.Length, MaxV1Length)];
        int end = window.IndexOfAny((byte)'\r', (byte)'\n');
        if (end < 0)
        {
            return input.Length >= MaxV1Length ? Fail(ref header, ProxyRejectReason.V1TooLong) : ProxyParseStatus.Incomplete;
        }
        if (window[end] == '\n')
        {
            return Fail(ref header, ProxyRejectReason.V1Malformed); // a bare LF
        }
        if (end + 1 >= window.Length)
        {
            // The CR is the last byte seen: its LF may still come, unless the line would then pass 107 bytes.
            return end + 1 >= MaxV1Length ? Fail(ref header, ProxyRejectReason.V1TooLong) : ProxyParseStatus.Incomplete;
        }
        if (window[end + 1] != '\n')
        {
            return Fail(ref header, ProxyRejectReason.V1Malformed); // a bare CR
        }
        ProxyRejectReason reason = ParseV1Line(input[prefix.Length..end], ref header);
        if (reason != ProxyRejectReason.None)
        {
            return Fail(ref header, reason);
        }
        header.Version = 1;
        length = end + 2;
        return ProxyParseStatus.Complete;
    }

    private static ProxyRejectReason ParseV1Line(ReadOnlySpan<byte> line, ref ProxyHeader header)
    {
        // "PROXY UNKNOWN" may end the line at once (spec §2.1); refused either way.
        if (line.StartsWith("UNKNOWN"u8) && (line.Length == 7 || line[7] == ' '))
        {
            return ProxyRejectReason.V1Unknown;
        }
        if (!NextField(ref line, out ReadOnlySpan<byte> protocol))
        {
            return ProxyRejectReason.V1Malformed;
        }
        bool v6;
        if (protocol.SequenceEqual("TCP4"u8))
        {
            v6 = false;
        }
        else if (protocol.SequenceEqual("TCP6"u8))
        {
            v6 = true;
        }
        else
        {
            return ProxyRejectReason.V1Malformed;
        }
        if (!NextField(ref line, out ReadOnlySpan<byte> source) || !NextField(ref line, out ReadOnlySpan<byte> destination)
            || !NextField(ref line, out ReadOnlySpan<byte> sourcePort) || !LastField(line, out ReadOnlySpan<byte> destinationPort))
        {
            return ProxyRejectReason.V1Malformed;
        }
        Span<byte> address = stackalloc byte[16];
        if (!ProxyTextAddress.TryParse(source, v6, address))
        {
            return ProxyRejectReason.V1BadAddress;
        }
        header.SourceFamily = SetAddress(ref header._source, address[..(v6 ? 16 : 4)]);
        if (!ProxyTextAddress.TryParse(destination, v6, address))
        {
            return ProxyRejectReason.V1BadAddress;
        }
        header.DestinationFamily = SetAddress(ref header._destination, address[..(v6 ? 16 : 4)]);
        if (!TryParsePort(sourcePort, out ushort sport) || !TryParsePort(destinationPort, out ushort dport))
        {
            return ProxyRejectReason.V1BadPort;
        }
        header.SourcePort = sport;
        header.DestinationPort = dport;
        return ProxyRejectReason.None;
    }

    /// <summary>A non-empty field ended by exactly one space (a second space makes the next field empty).</summary>
    private static bool NextField(ref ReadOnlySpan<byte> line, out ReadOnlySpan<byte> field)
    {
        int space = line.IndexOf((byte)' ');
        field = space < 0 ? default : line[..space];
        if (space <= 0)
        {
            return false;
        }
        line = line[(space + 1)..];
        return true;
    }

    private static bool LastField(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> field)
    {
        field = line;
        return !line.IsEmpty && !line.Contains((byte)' ');
    }

    /// <summary>0..65535 in decimal, 1 to 5 digits, no leading zero (spec §2.1).</summary>
    private static bool TryParsePort(ReadOnlySpan<byte> text, out ushort port)
    {
        port = 0;
        if (text.IsEmpty || text.Length > 5 || (text[0] == '0' && text.Length > 1))
        {
            return false;
        }
        int value = 0;
        foreach (byte c in text)
        {
            if ((uint)(c - '0') > 9)
            {
                return false;
            }
            value = value * 10 + (c - '0');
        }
        if (value > ushort.MaxValue)
        {
            return false;
        }
        port = (ushort)value;
        return true;
    }
}
