using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeMta.LoadTests;

namespace EdgeMta.LoadTests.Tests;

/// <summary>
/// The PROXY header edgemta-load sends with --proxy, checked byte by byte against HAProxy's
/// doc/proxy-protocol.txt (§2.1 for v1, §2.2 for v2), and on the wire: first on every connection, before the
/// greeting is read, with a different client for each connection.
/// </summary>
public class ProxyPreambleTests
{
    static readonly IPEndPoint Target4 = new(IPAddress.Parse("127.0.0.1"), 2526);
    static readonly IPEndPoint Target6 = new(IPAddress.IPv6Loopback, 2526);
    static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    static byte[] Header(ProxyVersion v, long connection, IPEndPoint target)
    {
        var buffer = new byte[ProxyPreamble.MaxLength];
        int n = ProxyPreamble.Write(v, ProxyPreamble.SourceFor(connection, target), target, buffer);
        return buffer[..n];
    }

    [Fact]
    public void V1IsOneTcp4LineNamingADocumentationClientAndTheTarget()
    {
        string line = Encoding.ASCII.GetString(Header(ProxyVersion.V1, 4, Target4));
        Assert.EndsWith("\r\n", line, StringComparison.Ordinal);
        Assert.Equal(line.Length - 2, line.IndexOf('\r', StringComparison.Ordinal));    // one line, nothing after it
        string[] f = line[..^2].Split(' ');
        Assert.Equal(6, f.Length);
        Assert.Equal("PROXY", f[0]);
        Assert.Equal("TCP4", f[1]);
        Assert.Equal("203.0.113.5", f[2]);
        Assert.Equal("127.0.0.1", f[3]);
        Assert.InRange(int.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture), 1, 65535);
        Assert.Equal("2526", f[5]);
        Assert.InRange(line.Length, 1, 107);
    }

    [Fact]
    public void V1ForAnIpv6TargetIsTcp6()
    {
        string line = Encoding.ASCII.GetString(Header(ProxyVersion.V1, 0, Target6));
        Assert.StartsWith("PROXY TCP6 2001:db8::1 ::1 ", line, StringComparison.Ordinal);
        Assert.EndsWith(" 2526\r\n", line, StringComparison.Ordinal);
    }

    [Fact]
    public void V2IsSignatureVersionCommandFamilyLengthAndTheAddressBlock()
    {
        byte[] h = Header(ProxyVersion.V2, 300, Target4);
        Assert.Equal(16 + 12, h.Length);
        Assert.Equal(Signature, h[..12]);
        Assert.Equal(0x21, h[12]);                                      // version 2, command PROXY
        Assert.Equal(0x11, h[13]);                                      // AF_INET, STREAM
        Assert.Equal(12, BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(14)));
        Assert.Equal(new byte[] { 203, 0, 113, (byte)(300 % 254 + 1) }, h[16..20]);
        Assert.Equal(new byte[] { 127, 0, 0, 1 }, h[20..24]);
        Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(24)));
        Assert.Equal(2526, BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(26)));
    }

    [Fact]
    public void V2ForAnIpv6TargetCarriesSixteenByteAddresses()
    {
        byte[] h = Header(ProxyVersion.V2, 0, Target6);
        Assert.Equal(16 + 36, h.Length);
        Assert.Equal(0x21, h[13]);                                      // AF_INET6, STREAM
        Assert.Equal(36, BinaryPrimitives.ReadUInt16BigEndian(h.AsSpan(14)));
        Assert.Equal(IPAddress.Parse("2001:db8::1"), new IPAddress(h.AsSpan(16, 16)));
        Assert.Equal(IPAddress.IPv6Loopback, new IPAddress(h.AsSpan(32, 16)));
    }

    [Fact]
    public void EachConnectionUpTo254IsADifferentClient()
    {
        var seen = new HashSet<IPAddress>();
        for (int i = 0; i < 254; i++) seen.Add(ProxyPreamble.SourceFor(i, Target4).Address);
        Assert.Equal(254, seen.Count);
        Assert.DoesNotContain(IPAddress.Parse("203.0.113.0"), seen);
        Assert.DoesNotContain(IPAddress.Parse("203.0.113.255"), seen);
    }

    // A listener that records the first bytes of each connection and then closes it: the header must arrive
    // without a greeting having been sent (a PROXY listener sends none before it, docs/SCREENING.md).
    [Fact]
    public async Task EveryConnectionStartsWithItsOwnV2HeaderBeforeAnyGreeting()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var target = (IPEndPoint)listener.LocalEndpoint;
        var firsts = new List<byte[]>();
        Task accepting = Task.Run(async () =>
        {
            for (int c = 0; c < 3; c++)
            {
                using Socket s = await listener.AcceptSocketAsync().WaitAsync(TimeSpan.FromSeconds(20));
                var buf = new byte[28];
                int got = 0;
                while (got < buf.Length)
                {
                    int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
                    if (n == 0) break;
                    got += n;
                }
                firsts.Add(buf[..got]);
            }
        });
        RunResult r = await new LoadRun(new LoadOptions
        {
            Target = target,
            Sessions = 1,
            Messages = 3,
            PerMessageConnections = true,
            Proxy = ProxyVersion.V2,
            Timeout = TimeSpan.FromSeconds(10),
            Quiet = true,
        }).RunAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await accepting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, r.Metrics.Delivered);                          // closed before any greeting
        Assert.Equal(3, firsts.Count);
        foreach (byte[] f in firsts)
        {
            Assert.Equal(28, f.Length);
            Assert.Equal(Signature, f[..12]);
            Assert.Equal(target.Port, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(26)));
        }
        Assert.Equal(3, firsts.Select(f => Convert.ToHexString(f, 16, 4)).Distinct().Count());
    }
}
