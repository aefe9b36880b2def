// The fast PROXY parser against a slow, obvious one written here from the spec's text (strings, regular
// expressions, IPAddress), over random and mutated headers: both must give the same status, length and
// client. A fixed seed per run keeps a failure reproducible; the failing input is printed in hex.
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Transport.Tests;

public sealed partial class ProxyHeaderFuzzTests
{
    private readonly record struct Outcome(ProxyParseStatus Status, int Length, string? Source, int SourcePort, bool Local);

    [GeneratedRegex(@"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")]
    private static partial Regex DottedQuad();

    [GeneratedRegex(@"^[0-9a-fA-F:]*(:[0-9.]+)?$")]
    private static partial Regex Ipv6Characters();

    [GeneratedRegex(@"^(0|[1-9][0-9]{0,4})$")]
    private static partial Regex Port();

    // ---- the reference ----

    private static Outcome Reference(byte[] data)
    {
        if (data.Length == 0)
        {
            return new(ProxyParseStatus.Incomplete, 0, null, 0, false);
        }
        return data[0] == 0x0D ? ReferenceV2(data) : ReferenceV1(data);
    }

    private static Outcome Incomplete => new(ProxyParseStatus.Incomplete, 0, null, 0, false);

    private static Outcome Invalid => new(ProxyParseStatus.Invalid, 0, null, 0, false);

    private static Outcome ReferenceV1(byte[] data)
    {
        string text = Encoding.Latin1.GetString(data);
        const string prefix = "PROXY ";
        if (!prefix.StartsWith(text[..Math.Min(text.Length, prefix.Length)], StringComparison.Ordinal))
        {
            return Invalid;
        }
        // A CR not followed by LF, or an LF not preceded by CR, before the first CRLF: the line is broken.
        int crlf = text.IndexOf("\r\n", StringComparison.Ordinal);
        int scanTo = Math.Min(crlf < 0 ? text.Length : crlf, 107);
        for (int i = 0; i < scanTo; i++)
        {
            if (text[i] == '\n' || (text[i] == '\r' && i + 1 < text.Length && text[i + 1] != '\n'))
            {
                return Invalid;
            }
        }
        if (crlf < 0 || crlf + 2 > 107)
        {
            return text.Length >= 107 ? Invalid : Incomplete;
        }
        string[] fields = text[..crlf].Split(' ');
        if (fields.Length != 6 || (fields[1] != "TCP4" && fields[1] != "TCP6"))
        {
            return Invalid;
        }
        bool v6 = fields[1] == "TCP6";
        IPAddress? source = ReferenceAddress(fields[2], v6);
        IPAddress? destination = ReferenceAddress(fields[3], v6);
        int? sport = ReferencePort(fields[4]);
        int? dport = ReferencePort(fields[5]);
        if (source is null || destination is null || sport is null || dport is null)
        {
            return Invalid;
        }
        return new(ProxyParseStatus.Complete, crlf + 2, Normalize(source), sport.Value, false);
    }

    private static IPAddress? ReferenceAddress(string text, bool v6)
    {
        if (!v6)
        {
            return DottedQuad().IsMatch(text) ? IPAddress.Parse(text) : null;
        }
        if (!Ipv6Characters().IsMatch(text) || !IPAddress.TryParse(text, out IPAddress? address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return null;
        }
        // Each hex group at most four digits; a dotted tail a strict dotted quad after a colon.
        int lastColon = text.LastIndexOf(':');
        string tail = text[(lastColon + 1)..];
        if (tail.Contains('.') && !DottedQuad().IsMatch(tail))
        {
            return null;
        }
        string groups = tail.Contains('.') ? text[..lastColon] : text;
        foreach (string group in groups.Split(':'))
        {
            if (group.Length > 4)
            {
                return null;
            }
        }
        // "::" must replace at least one zero group: eight explicit groups (seven with a dotted tail) plus "::" is not an address.
        int explicitGroups = 0;
        foreach (string group in groups.Split(':'))
        {
            explicitGroups += group.Length > 0 ? 1 : 0;
        }
        if (tail.Contains('.'))
        {
            explicitGroups += 2;
        }
        if (text.Contains("::", StringComparison.Ordinal) ? explicitGroups >= 8 : explicitGroups != 8)
        {
            return null;
        }
        return address;
    }

    private static int? ReferencePort(string text) =>
        Port().IsMatch(text) && int.Parse(text) <= 65535 ? int.Parse(text) : null;

    private static string Normalize(IPAddress address) =>
        (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    private static Outcome ReferenceV2(byte[] data)
    {
        byte[] signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
        for (int i = 0; i < Math.Min(data.Length, 12); i++)
        {
            if (data[i] != signature[i])
            {
                return Invalid;
            }
        }
        if (data.Length < 13)
        {
            return Incomplete;
        }
        int version = data[12] / 16;
        int command = data[12] % 16;
        if (version != 2 || (command != 0 && command != 1))
        {
            return Invalid;
        }
        if (data.Length < 14)
        {
            return Incomplete;
        }
        int family = data[13];
        int[] known = [0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32];
        if (Array.IndexOf(known, family) < 0 || (command == 1 && family != 0x11 && family != 0x21))
        {
            return Invalid;
        }
        if (data.Length < 16)
        {
            return Incomplete;
        }
        int length = data[14] * 256 + data[15];
        if (16 + length > 4096)
        {
            return Invalid;
        }
        int needed = family == 0x11 ? 12 : 36;
        if (command == 1 && length < needed)
        {
            return Invalid;
        }
        if (data.Length < 16 + length)
        {
            return Incomplete;
        }
        if (command == 0)
        {
            return new(ProxyParseStatus.Complete, 16 + length, null, 0, true);
        }
        int size = family == 0x11 ? 4 : 16;
        var source = new IPAddress(data.AsSpan(16, size));
        int port = data[16 + 2 * size] * 256 + data[17 + 2 * size];
        return new(ProxyParseStatus.Complete, 16 + length, Normalize(source), port, false);
    }

    // ---- the fast one, as an outcome ----

    private static Outcome Fast(byte[] data)
    {
        ProxyParseStatus status = ProxyHeader.TryParse(data, out ProxyHeader header, out int length);
        if (status != ProxyParseStatus.Complete)
        {
            Assert.Equal(0, length);
            Assert.Equal(status == ProxyParseStatus.Invalid, header.Error != ProxyRejectReason.None);
            return new(status, 0, null, 0, false);
        }
        IPEndPoint? source = header.ToSourceEndPoint();
        return new(status, length, source?.Address.ToString(), source?.Port ?? 0, header.IsLocal);
    }

    // ---- generators ----

    private static string RandomIPv6Text(Random random)
    {
        var bytes = new byte[16];
        random.NextBytes(bytes);
        int zeros = random.Next(0, 10);
        for (int i = 0; i < zeros; i++)
        {
            bytes[random.Next(16)] = 0;
        }
        if (random.Next(6) == 0)
        {
            Array.Clear(bytes, 0, 10);
            bytes[10] = bytes[11] = 0xFF; // IPv4-mapped
        }
        string text = new IPAddress(bytes).ToString();
        return random.Next(4) switch
        {
            0 => text.ToUpperInvariant(),
            1 => string.Join(':', Enumerable.Range(0, 8).Select(g => (bytes[2 * g] * 256 + bytes[2 * g + 1]).ToString(random.Next(2) == 0 ? "x" : "x4"))),
            _ => text,
        };
    }

    private static byte[] RandomHeader(Random random)
    {
        switch (random.Next(5))
        {
            case 0:
                {
                    var a = new byte[4];
                    var b = new byte[4];
                    random.NextBytes(a);
                    random.NextBytes(b);
                    return Encoding.ASCII.GetBytes($"PROXY TCP4 {new IPAddress(a)} {new IPAddress(b)} {random.Next(65536)} {random.Next(65536)}\r\n");
                }
            case 1:
                return Encoding.ASCII.GetBytes($"PROXY TCP6 {RandomIPv6Text(random)} {RandomIPv6Text(random)} {random.Next(65536)} {random.Next(65536)}\r\n");
            case 2:
                {
                    var a = new byte[4];
                    random.NextBytes(a);
                    var tlvs = new byte[random.Next(0, 40)];
                    random.NextBytes(tlvs);
                    return ProxyHeaderTests.V2Tcp4(new IPAddress(a), (ushort)random.Next(65536), IPAddress.Loopback, 25, tlvs);
                }
            case 3:
                {
                    var a = new byte[16];
                    random.NextBytes(a);
                    if (random.Next(4) == 0)
                    {
                        Array.Clear(a, 0, 10);
                        a[10] = a[11] = 0xFF;
                    }
                    var tlvs = new byte[random.Next(0, 40)];
                    random.NextBytes(tlvs);
                    return ProxyHeaderTests.V2Tcp6(new IPAddress(a), (ushort)random.Next(65536), IPAddress.IPv6Loopback, 25, tlvs);
                }
            default:
                {
                    var body = new byte[random.Next(0, 60)];
                    random.NextBytes(body);
                    byte[] families = [0x00, 0x11, 0x21, 0x12];
                    return ProxyHeaderTests.V2(0x20, families[random.Next(families.Length)], body);
                }
        }
    }

    private static readonly byte[] Interesting = "0123456789abcdefABCDEF:. \r\nPROXYTCP46UNKNOWN"u8.ToArray();

    private static byte[] Mutate(byte[] header, Random random)
    {
        var bytes = new List<byte>(header);
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            byte value = random.Next(3) == 0 ? (byte)random.Next(256) : Interesting[random.Next(Interesting.Length)];
            switch (random.Next(5))
            {
                case 0: bytes[at] = value; break;
                case 1: bytes.Insert(at, value); break;
                case 2: bytes.RemoveAt(at); break;
                case 3: bytes.RemoveRange(at, bytes.Count - at); break; // truncate
                default: bytes[at] ^= (byte)(1 << random.Next(8)); break;
            }
        }
        return [.. bytes];
    }

    private static void Agree(byte[] data)
    {
        Outcome expected = Reference(data);
        Outcome actual = Fast(data);
        Assert.True(expected == actual, $"input {Convert.ToHexString(data)}: reference {expected}, parser {actual}");
    }

    [Fact]
    public void RandomHeadersParseAsTheReferenceSays()
    {
        var random = new Random(20261207);
        for (int i = 0; i < 5_000; i++)
        {
            byte[] header = RandomHeader(random);
            Assert.Equal(ProxyParseStatus.Complete, Reference(header).Status);
            Agree(header);
            Agree([.. header, .. "EHLO x\r\n"u8]); // bytes after the header are not its business
        }
    }

    [Fact]
    public void MutatedHeadersParseAsTheReferenceSays()
    {
        var random = new Random(7);
        int invalid = 0;
        int complete = 0;
        for (int i = 0; i < 30_000; i++)
        {
            byte[] data = Mutate(RandomHeader(random), random);
            Agree(data);
            ProxyParseStatus status = ProxyHeader.TryParse(data, out _, out _);
            invalid += status == ProxyParseStatus.Invalid ? 1 : 0;
            complete += status == ProxyParseStatus.Complete ? 1 : 0;
        }
        // The mutations reach all three answers, or the comparison says little.
        Assert.True(invalid > 1_000 && complete > 1_000, $"invalid {invalid}, complete {complete}");
    }

    [Fact]
    public void RandomBytesParseAsTheReferenceSays()
    {
        var random = new Random(11);
        for (int i = 0; i < 10_000; i++)
        {
            var data = new byte[random.Next(0, 120)];
            random.NextBytes(data);
            if (data.Length > 0 && random.Next(2) == 0)
            {
                data[0] = random.Next(2) == 0 ? (byte)'P' : (byte)0x0D;
            }
            Agree(data);
        }
    }
}
