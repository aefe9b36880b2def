// The PROXY header parser (src/EdgeMta.Transport/Proxy/ProxyHeader.cs): ns per header and bytes allocated.
// Run: dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*ProxyHeader*' --job short
// The aim (docs/SCREENING.md, "PROXY protocol"): no allocation; a header costs a few dozen ns, once per connection.
using BenchmarkDotNet.Attributes;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Benchmarks;

[MemoryDiagnoser]
public class ProxyHeaderBenchmarks
{
    private readonly byte[] _v1Tcp4 = "PROXY TCP4 203.0.113.9 192.0.2.25 40000 25\r\nEHLO client.example\r\n"u8.ToArray();

    // TCP over IPv6 with one AUTHORITY TLV (the SNI HAProxy forwards), as send-proxy-v2 writes it.
    private readonly byte[] _v2Tcp6 =
    [
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
        0x21, 0x21, 0x00, 36 + 3 + 10, // PROXY, TCP over IPv6, length
        0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, // source 2001:db8::9
        0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25, // destination 2001:db8::25
        0x9C, 0x40, 0x00, 0x19, // ports 40000, 25
        0x02, 0x00, 0x0A, (byte)'m', (byte)'x', (byte)'.', (byte)'e', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e',
    ];

    [Benchmark(Description = "v1 TCP4 line")]
    public int V1Tcp4()
    {
        ProxyHeader.TryParse(_v1Tcp4, out ProxyHeader header, out int length);
        return length + header.SourcePort;
    }

    [Benchmark(Description = "v2 TCP6 with a TLV")]
    public int V2Tcp6WithTlv()
    {
        ProxyHeader.TryParse(_v2Tcp6, out ProxyHeader header, out int length);
        return length + header.SourcePort;
    }
}
