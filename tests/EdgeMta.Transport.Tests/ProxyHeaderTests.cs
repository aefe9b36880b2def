// The PROXY header parser against the spec's own lines and layouts (HAProxy's doc/proxy-protocol.txt §2.1,
// §2.2), its length limits, and every way a header can be cut short or broken.
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeMta.TestKit;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Transport.Tests;

public sealed class ProxyHeaderTests
{
    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    internal static byte[] V2(byte versionCommand, byte family, ReadOnlySpan<byte> body, int? declaredLength = null)
    {
        var bytes = new byte[16 + body.Length];
        ProxyHeader.V2Signature.CopyTo(bytes);
        bytes[12] = versionCommand;
        bytes[13] = family;
        int length = declaredLength ?? body.Length;
        bytes[14] = (byte)(length >> 8);
        bytes[15] = (byte)length;
        body.CopyTo(bytes.AsSpan(16));
        return bytes;
    }

    internal static byte[] V2Tcp4(IPAddress source, ushort sport, IPAddress destination, ushort dport, ReadOnlySpan<byte> tlvs = default)
    {
        var body = new byte[12 + tlvs.Length];
        source.GetAddressBytes().CopyTo(body, 0);
        destination.GetAddressBytes().CopyTo(body, 4);
        body[8] = (byte)(sport >> 8);
        body[9] = (byte)sport;
        body[10] = (byte)(dport >> 8);
        body[11] = (byte)dport;
        tlvs.CopyTo(body.AsSpan(12));
        return V2(0x21, 0x11, body);
    }

    internal static byte[] V2Tcp6(IPAddress source, ushort sport, IPAddress destination, ushort dport, ReadOnlySpan<byte> tlvs = default)
    {
        var body = new byte[36 + tlvs.Length];
        source.GetAddressBytes().CopyTo(body, 0);
        destination.GetAddressBytes().CopyTo(body, 16);
        body[32] = (byte)(sport >> 8);
        body[33] = (byte)sport;
        body[34] = (byte)(dport >> 8);
        body[35] = (byte)dport;
        tlvs.CopyTo(body.AsSpan(36));
        return V2(0x21, 0x21, body);
    }

    private static ProxyHeader Complete(byte[] bytes, int expectedLength)
    {
        Assert.Equal(ProxyParseStatus.Complete, ProxyHeader.TryParse(bytes, out ProxyHeader header, out int length));
        Assert.Equal(expectedLength, length);
        return header;
    }

    private static ProxyRejectReason Invalid(byte[] bytes)
    {
        Assert.Equal(ProxyParseStatus.Invalid, ProxyHeader.TryParse(bytes, out ProxyHeader header, out int length));
        Assert.Equal(0, length);
        return header.Error;
    }

    [Fact]
    public void TheSpecsV1ExampleGivesTheClientAndLeavesTheRestAsInput()
    {
        byte[] bytes = Ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nEHLO x\r\n");
        ProxyHeader header = Complete(bytes, 47);
        Assert.Equal(1, header.Version);
        Assert.False(header.IsLocal);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.168.0.1"), 56324), header.ToSourceEndPoint());
        Assert.Equal(443, header.DestinationPort);
        Span<byte> destination = stackalloc byte[16];
        Assert.Equal(new byte[] { 192, 168, 0, 11 }, header.DestinationAddress(destination).ToArray());
    }

    [Fact]
    public void TheLongestTcp4LineIs56BytesAndTheLongestTcp6Line104()
    {
        byte[] tcp4 = Ascii("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
        Assert.Equal(56, tcp4.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Broadcast, 65535), Complete(tcp4, 56).ToSourceEndPoint());

        const string all = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        byte[] tcp6 = Ascii($"PROXY TCP6 {all} {all} 65535 65535\r\n");
        Assert.Equal(104, tcp6.Length);
        ProxyHeader header = Complete(tcp6, 104);
        Assert.Equal(AddressFamily.InterNetworkV6, header.SourceFamily);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(all), 65535), header.ToSourceEndPoint());
    }

    [Fact]
    public void A107ByteLineIsTheLimitAnd108IsTooLong()
    {
        // IPv6 text with a dotted tail is longer than eight groups: 45 characters at most, enough to pass 107.
        const string longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        string line = $"PROXY TCP6 {longest} ffff:ffff:ffff:ffff:ffff:fff:1.2.3.4 65535 65535\r\n";
        Assert.Equal(107, line.Length);
        Complete(Ascii(line), 107);

        string tooLong = $"PROXY TCP6 {longest} ffff:ffff:ffff:ffff:ffff:ffff:1.2.3.4 65535 65535\r\n";
        Assert.Equal(108, tooLong.Length);
        Assert.Equal(ProxyRejectReason.V1TooLong, Invalid(Ascii(tooLong)));
        // Decided at 107 bytes, without waiting for the rest.
        Assert.Equal(ProxyRejectReason.V1TooLong, Invalid(Ascii(tooLong)[..107]));
    }

    [Fact]
    public void TheSpecsUnknownLinesAreRefusedAsTheContractSays()
    {
        Assert.Equal(ProxyRejectReason.V1Unknown, Invalid(Ascii("PROXY UNKNOWN\r\n")));
        const string all = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        byte[] worst = Ascii($"PROXY UNKNOWN {all} {all} 65535 65535\r\n");
        Assert.Equal(107, worst.Length); // the spec's worst case
        Assert.Equal(ProxyRejectReason.V1Unknown, Invalid(worst));
    }

    [Theory]
    [InlineData("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", ProxyRejectReason.V1Malformed)] // two spaces
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", ProxyRejectReason.V1Malformed)] // trailing space
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ProxyRejectReason.V1Malformed)]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ProxyRejectReason.V1Malformed)] // bare LF
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n", ProxyRejectReason.V1Malformed)] // bare CR
    [InlineData("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyRejectReason.V1Malformed)]
    [InlineData("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", ProxyRejectReason.V1Malformed)]
    [InlineData("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", ProxyRejectReason.V1BadAddress)] // leading zero
    [InlineData("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", ProxyRejectReason.V1BadAddress)] // family mismatch
    [InlineData("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP6 1::2::3 ::1 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP6 12345:: ::1 1 2\r\n", ProxyRejectReason.V1BadAddress)]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", ProxyRejectReason.V1BadPort)] // leading zero
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", ProxyRejectReason.V1BadPort)]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", ProxyRejectReason.V1BadPort)]
    [InlineData("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyRejectReason.BadSignature)]
    [InlineData("EHLO client.example\r\n", ProxyRejectReason.BadSignature)]
    public void BrokenV1LinesAreInvalidWithTheirReason(string line, ProxyRejectReason reason)
    {
        Assert.Equal(reason, Invalid(Ascii(line)));
    }

    [Theory]
    [InlineData("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", "0.0.0.0", 0)]
    [InlineData("PROXY TCP6 ::ffff:203.0.113.9 ::1 25 2526\r\n", "203.0.113.9", 25)] // mapped: IPv4
    [InlineData("PROXY TCP6 2001:db8::1 ::1 1025 25\r\n", "2001:db8::1", 1025)]
    [InlineData("PROXY TCP6 :: ::1 1 2\r\n", "::", 1)]
    [InlineData("PROXY TCP6 1:2:3:4:5:6:7:: ::1 1 2\r\n", "1:2:3:4:5:6:7:0", 1)]
    [InlineData("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1 2\r\n", "2001:db8::1", 1)]
    public void ValidV1LinesGiveTheirSource(string line, string source, int port)
    {
        ProxyHeader header = Complete(Ascii(line), line.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(source), port), header.ToSourceEndPoint());
    }

    [Fact]
    public void V2Tcp4AndTcp6CarryTheClientAndSkipTlvs()
    {
        // A TLV as HAProxy sends it (spec §2.2.1): PP2_TYPE_AUTHORITY "mx.example", then PP2_TYPE_NOOP of 3 bytes.
        byte[] tlvs = [0x02, 0x00, 0x0A, .. "mx.example"u8, 0x04, 0x00, 0x03, 0, 0, 0];
        byte[] v4 = [.. V2Tcp4(IPAddress.Parse("203.0.113.9"), 40000, IPAddress.Parse("192.0.2.25"), 25, tlvs), .. "EHLO"u8];
        ProxyHeader header = Complete(v4, 16 + 12 + tlvs.Length);
        Assert.Equal(2, header.Version);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.9"), 40000), header.ToSourceEndPoint());
        Assert.Equal(25, header.DestinationPort);

        byte[] v6 = V2Tcp6(IPAddress.Parse("2001:db8::9"), 1, IPAddress.Parse("2001:db8::25"), 2526, tlvs);
        header = Complete(v6, v6.Length);
        Assert.Equal(AddressFamily.InterNetworkV6, header.SourceFamily);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::9"), 1), header.ToSourceEndPoint());

        byte[] mapped = V2Tcp6(IPAddress.Parse("::ffff:198.51.100.7"), 2, IPAddress.Parse("2001:db8::25"), 25);
        header = Complete(mapped, mapped.Length);
        Assert.Equal(AddressFamily.InterNetwork, header.SourceFamily);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 2), header.ToSourceEndPoint());
    }

    [Fact]
    public void V2LocalIsAcceptedAndItsBodySkippedByTheLength()
    {
        // HAProxy's check-send-proxy: LOCAL with an address block that must be skipped (haproxy issue 511).
        byte[] body = V2Tcp4(IPAddress.Loopback, 1, IPAddress.Loopback, 2)[16..];
        byte[] local = [.. V2(0x20, 0x11, body), .. "QUIT\r\n"u8];
        ProxyHeader header = Complete(local, 16 + body.Length);
        Assert.True(header.IsLocal);
        Assert.Null(header.ToSourceEndPoint());

        Complete(V2(0x20, 0x00, []), 16); // LOCAL, UNSPEC, empty: the plainest health check
    }

    [Theory]
    [InlineData(0x11, 0x11, ProxyRejectReason.V2BadVersion)] // version 1 in a v2 signature
    [InlineData(0x31, 0x11, ProxyRejectReason.V2BadVersion)]
    [InlineData(0x22, 0x11, ProxyRejectReason.V2BadCommand)]
    [InlineData(0x2F, 0x11, ProxyRejectReason.V2BadCommand)]
    [InlineData(0x21, 0x00, ProxyRejectReason.V2BadFamily)] // UNSPEC only with LOCAL
    [InlineData(0x21, 0x12, ProxyRejectReason.V2BadFamily)] // UDP
    [InlineData(0x21, 0x31, ProxyRejectReason.V2BadFamily)] // UNIX
    [InlineData(0x21, 0x41, ProxyRejectReason.V2BadFamily)] // undefined
    [InlineData(0x20, 0x13, ProxyRejectReason.V2BadFamily)] // undefined, even with LOCAL
    public void BadV2NibblesAndFamiliesAreInvalid(byte versionCommand, byte family, ProxyRejectReason reason)
    {
        Assert.Equal(reason, Invalid(V2(versionCommand, family, new byte[36])));
        // Decided as soon as the byte is seen, without waiting for the body.
        Assert.Equal(reason, Invalid(V2(versionCommand, family, new byte[36])[..14]));
    }

    [Fact]
    public void V2LengthsShortOfTheAddressBlockOrOver4KiBAreInvalid()
    {
        Assert.Equal(ProxyRejectReason.V2BadLength, Invalid(V2(0x21, 0x11, new byte[11])));
        Assert.Equal(ProxyRejectReason.V2BadLength, Invalid(V2(0x21, 0x21, new byte[35])));
        Assert.Equal(ProxyRejectReason.TooLarge, Invalid(V2(0x21, 0x11, [], declaredLength: 4096 - 16 + 1)));
        Assert.Equal(ProxyRejectReason.TooLarge, Invalid(V2(0x20, 0x00, [], declaredLength: 0xFFFF)));
        Complete(V2(0x21, 0x11, new byte[4096 - 16]), 4096); // exactly 4 KiB is allowed

        byte[] badSignature = V2Tcp4(IPAddress.Loopback, 1, IPAddress.Loopback, 2);
        badSignature[4] = 0x20; // the NUL of the signature
        Assert.Equal(ProxyRejectReason.BadSignature, Invalid(badSignature));
        Assert.Equal(ProxyRejectReason.BadSignature, Invalid(badSignature[..5]));
    }

    public static TheoryData<string> ValidHeaders() => new()
    {
        "v1:PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "v1:PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        "v2:tcp4",
        "v2:tcp6-tlv",
        "v2:local-body",
    };

    internal static byte[] Sample(string name) => name switch
    {
        "v2:tcp4" => V2Tcp4(IPAddress.Parse("203.0.113.9"), 40000, IPAddress.Parse("192.0.2.25"), 25),
        "v2:tcp6-tlv" => V2Tcp6(IPAddress.Parse("2001:db8::9"), 1, IPAddress.Parse("2001:db8::25"), 25, [0x04, 0x00, 0x02, 0, 0]),
        "v2:local-body" => V2(0x20, 0x11, new byte[12]),
        _ => Ascii(name[3..]),
    };

    [Theory]
    [MemberData(nameof(ValidHeaders))]
    public void EveryStrictPrefixOfAValidHeaderIsIncomplete(string name)
    {
        byte[] bytes = Sample(name);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            Assert.Equal(ProxyParseStatus.Incomplete, ProxyHeader.TryParse(bytes.AsSpan(0, cut), out _, out int length));
            Assert.Equal(0, length);
        }
        Assert.Equal(ProxyParseStatus.Complete, ProxyHeader.TryParse(bytes, out _, out int whole));
        Assert.Equal(bytes.Length, whole);
    }

    [Fact]
    public void ParsingAValidHeaderAllocatesNothing()
    {
        byte[] v1 = Sample("v1:PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
        byte[] v2 = Sample("v2:tcp6-tlv");
        long bytes = Allocations.SteadyStateBytes(() =>
        {
            ProxyHeader.TryParse(v1, out _, out _);
            ProxyHeader.TryParse(v2, out _, out _);
        });
        Assert.Equal(0, bytes);
    }
}
