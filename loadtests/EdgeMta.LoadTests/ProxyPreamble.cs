// Contract: the PROXY protocol header edgemta-load sends first on every connection with --proxy v1|v2
// (HAProxy's doc/proxy-protocol.txt §2.1 and §2.2; docs/SCREENING.md, "PROXY protocol"), so the race can
// drive an edgemta --listen-proxy listener the way HAProxy would.
//
// What it does: formats one header per connection, naming as the client a documentation address that
// changes from connection to connection (203.0.113.1-254, RFC 5737; 2001:db8::1-fe, RFC 3849, for an IPv6
// target, since v1 and v2 TCP headers carry one family for both ends) and a source port that changes too,
// and the target as the destination. Connection n gets host n % 254 + 1, so up to 254 concurrent sessions
// each look like a client of their own to per-client limits.
//
// What it deliberately does not do: send v1 UNKNOWN or v2 LOCAL (the server serves those as the proxy
// itself, which is not the path being measured), or any TLV; it never reads anything back (the protocol
// has no reply: the server's greeting follows the header).
//
// How it fails: it cannot, for an IPv4 or IPv6 target; the buffer it writes into is sized for the longest
// header (v1: 107 bytes, spec §2.1; v2 TCP over IPv6: 16 + 36 bytes, spec §2.2).
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.LoadTests;

public enum ProxyVersion
{
    None,
    V1,
    V2,
}

public static class ProxyPreamble
{
    /// <summary>Room for any header written here (v1's 107-byte maximum, spec §2.1, is the larger).</summary>
    public const int MaxLength = 107;

    // \r\n\r\n\0\r\nQUIT\n (spec §2.2).
    static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>The client named for connection number <paramref name="connection"/> to <paramref name="target"/>.</summary>
    public static IPEndPoint SourceFor(long connection, IPEndPoint target)
    {
        int host = (int)(connection % 254) + 1;
        int port = 1024 + (int)(connection % 64000);
        if (target.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Span<byte> v6 = stackalloc byte[16];
            v6.Clear();
            v6[0] = 0x20; v6[1] = 0x01; v6[2] = 0x0d; v6[3] = 0xb8;
            v6[15] = (byte)host;
            return new IPEndPoint(new IPAddress(v6), port);
        }
        return new IPEndPoint(new IPAddress([203, 0, 113, (byte)host]), port);
    }

    /// <summary>Writes the header for <paramref name="source"/> → <paramref name="destination"/> (same
    /// family) into <paramref name="into"/> and returns its length.</summary>
    public static int Write(ProxyVersion version, IPEndPoint source, IPEndPoint destination, Span<byte> into) =>
        version switch
        {
            ProxyVersion.V1 => WriteV1(source, destination, into),
            ProxyVersion.V2 => WriteV2(source, destination, into),
            _ => 0,
        };

    // "PROXY TCP4 SRC DST SPORT DPORT\r\n" (spec §2.1); once per connection, so a string is cheap enough.
    static int WriteV1(IPEndPoint source, IPEndPoint destination, Span<byte> into)
    {
        string family = source.AddressFamily == AddressFamily.InterNetworkV6 ? "TCP6" : "TCP4";
        string line = string.Create(CultureInfo.InvariantCulture,
            $"PROXY {family} {source.Address} {destination.Address} {source.Port} {destination.Port}\r\n");
        return Encoding.ASCII.GetBytes(line, into);
    }

    // Signature, 0x21 (version 2, PROXY), 0x11 or 0x21 (INET or INET6 over STREAM), the address block's
    // length (big-endian), then source address, destination address, source port, destination port (§2.2).
    static int WriteV2(IPEndPoint source, IPEndPoint destination, Span<byte> into)
    {
        bool v6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        int addressLength = v6 ? 16 : 4;
        int block = 2 * addressLength + 4;
        V2Signature.CopyTo(into);
        into[12] = 0x21;
        into[13] = v6 ? (byte)0x21 : (byte)0x11;
        BinaryPrimitives.WriteUInt16BigEndian(into[14..], (ushort)block);
        int at = 16;
        source.Address.TryWriteBytes(into[at..], out int written);
        at += written;
        destination.Address.TryWriteBytes(into[at..], out written);
        at += written;
        BinaryPrimitives.WriteUInt16BigEndian(into[at..], (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(into[(at + 2)..], (ushort)destination.Port);
        return at + 4;
    }
}
