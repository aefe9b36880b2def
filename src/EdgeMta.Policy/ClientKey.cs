// Contract: the one key every per-client decision counts by (docs/SCREENING.md, "Per-client rate limits").
//
// An IPv4 client is its /32. An IPv6 client is its /N, N = --client-ipv6-prefix (84 by default, Postfix's
// smtpd_client_ipv6_prefix_length since 3.8): one host on IPv6 is given a /64 or more by its provider and can
// take a fresh address per connection, so counting per /128 would let it dodge every limit. An IPv4-mapped
// IPv6 address (::ffff:a.b.c.d) is the IPv4 address. The key is a 16-byte value with no allocation, so a
// table of them is plain structs.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Policy;

/// <summary>The address block a client is counted by: IPv4 /32, IPv6 /prefix.</summary>
public readonly record struct ClientKey
{
    // IPv4 keys carry this tag in the top 64 bits; the tag is an IPv6 address under 2001:db8::/32
    // (documentation, RFC 3849) with a nibble no /N mask leaves set, so no IPv6 key can equal an IPv4 one.
    private const ulong IPv4Tag = 0x2001_0db8_ffff_ffffUL;

    private readonly ulong _high;
    private readonly ulong _low;

    private ClientKey(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    /// <summary>True for a key made from an IPv4 address (or an IPv4-mapped IPv6 one).</summary>
    public bool IsIPv4 => _high == IPv4Tag && (_low >> 32) == 0;

    /// <summary>
    /// The key of <paramref name="address"/>. <paramref name="ipv6Prefix"/> (1..128) applies to IPv6 only.
    /// </summary>
    public static ClientKey From(IPAddress address, int ipv6Prefix)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentOutOfRangeException.ThrowIfLessThan(ipv6Prefix, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ipv6Prefix, 128);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes, out _);
            return new ClientKey(IPv4Tag, BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }
        address.TryWriteBytes(bytes, out _);
        ulong high = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        ulong low = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        if (ipv6Prefix <= 64)
        {
            high &= ipv6Prefix == 64 ? ulong.MaxValue : ~(ulong.MaxValue >> ipv6Prefix);
            low = 0;
        }
        else
        {
            low &= ipv6Prefix == 128 ? ulong.MaxValue : ~(ulong.MaxValue >> (ipv6Prefix - 64));
        }
        if (high == IPv4Tag)
        {
            high ^= 1; // inside 2001:db8::/32, never a client on the internet; keeps the two spaces apart
        }
        return new ClientKey(high, low);
    }

    /// <summary>The block as text for logs: "192.0.2.1", or "2001:db8::/84" style for IPv6.</summary>
    public string Format(int ipv6Prefix)
    {
        if (IsIPv4)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)_low);
            return new IPAddress(v4).ToString();
        }
        Span<byte> v6 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(v6, _high);
        BinaryPrimitives.WriteUInt64BigEndian(v6[8..], _low);
        return $"{new IPAddress(v6)}/{ipv6Prefix}";
    }
}
