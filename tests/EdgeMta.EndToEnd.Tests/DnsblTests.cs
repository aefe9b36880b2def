using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeMta.EndToEnd.Tests.Harness;
using EdgeMta.TestKit;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// DNS blocklists against a real DNS server (dnsmasq on a loopback port) and swaks from 127.0.0.1
/// (docs/SCREENING.md "DNS blocklists and allowlists"): each --dnsbl-action, the Spamhaus error answer that
/// must never block, and a DNS server that never answers.
/// </summary>
public sealed class DnsblTests(ITestOutputHelper output) : IDisposable
{
    private const string Refusal = "5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test";

    // bl.test lists 127.0.0.1 (127.0.0.2, a listing); err.test answers 127.255.255.254 for it (Spamhaus's
    // "queried through a public resolver", an error, not a listing).
    private readonly Dnsmasq _dns = new(["bl.test", "err.test"],
        [("1.0.0.127.bl.test", "127.0.0.2"), ("1.0.0.127.err.test", "127.255.255.254")]);

    public void Dispose() => _dns.Dispose();

    private Task<EdgeMtaProcess> Start(params string[] flags) =>
        EdgeMtaProcess.StartAsync(output, [.. flags, "--dns-server", $"127.0.0.1:{_dns.Port}"]);

    private Task<Swaks> Send(EdgeMtaProcess server) =>
        Swaks.RunAsync(server.Port, output, "--from", "a@example.com", "--to", "b@example.org", "--helo", "client.example");

    [Fact]
    public async Task EnforceAnswers550ToEveryRcptAndTakesMail()
    {
        await using EdgeMtaProcess server = await Start("--dnsbl", "bl.test", "--dnsbl", "err.test", "--metrics-listen", "127.0.0.1:0");
        int metrics = await MetricsScrape.PortAsync(server);
        Swaks s = await Send(server);
        Assert.Equal(220, int.Parse(s.Banner().AsSpan(0, 3)));
        Assert.Equal(250, s.ReplyTo("MAIL"));
        Assert.Equal("550 " + Refusal, s.ReplyLineTo("RCPT"));
        Assert.True(s.Result.ExitCode == 24, s.Result.ToString()); // swaks: no RCPT accepted
        await server.WaitForLinesAsync("dnsbl-listed client=127.0.0.1 zones=bl.test score=1");
        await server.WaitForLinesAsync("dnsbl-refused client=127.0.0.1 zone=bl.test action=enforce");
        string body = await MetricsScrape.ScrapeAsync(metrics);
        await MetricsScrape.AssertPromtoolAcceptsAsync(body, output);
        Dictionary<string, double> m = MetricsScrape.Samples(body);
        Assert.Equal(1, m["edgemta_dnsbl_queries_total{result=\"listed\"}"]);
        Assert.Equal(1, m["edgemta_dnsbl_queries_total{result=\"clean\"}"]); // err.test's 127.255.255.254
        Assert.Equal(0, m["edgemta_dnsbl_queries_total{result=\"timeout\"}"]);
        Assert.Equal(1, m["edgemta_dnsbl_blocked_total{action=\"enforce\"}"]);
        Assert.Equal(1, m["edgemta_dnsbl_cache_entries"]);
        Assert.Equal(0, (await server.StopAndExportAsync()).Count);
    }

    [Fact]
    public async Task DropAnswers521AtEhloThenAtConnectFromTheCache()
    {
        await using EdgeMtaProcess server = await Start("--dnsbl", "bl.test=127.0.0.[2..11]*2", "--dnsbl-threshold", "2", "--dnsbl-action", "drop");
        Swaks first = await Send(server);
        Assert.StartsWith("220", first.Banner());
        Assert.Equal("521 " + Refusal, first.ReplyLineTo("EHLO"));
        Swaks second = await Send(server);
        Assert.Equal("521 " + Refusal, second.Banner()); // the verdict is cached: no greeting at all
        await server.WaitForLinesAsync("dnsbl-refused client=127.0.0.1 zone=bl.test action=drop", 2);
        await server.WaitForLinesAsync("dnsbl-listed client=127.0.0.1 zones=bl.test score=2", 2);
    }

    [Fact]
    public async Task IgnoreTakesTheMailAndLogsTheListing()
    {
        await using EdgeMtaProcess server = await Start("--dnsbl", "bl.test", "--dnsbl-action", "ignore");
        Swaks s = await Send(server);
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        Assert.Equal(250, s.ReplyTo("RCPT"));
        await server.WaitForLinesAsync("dnsbl-listed client=127.0.0.1 zones=bl.test score=1");
        Assert.Empty(server.LinesWith("dnsbl-refused"));
        Assert.Equal(1, (await server.StopAndExportAsync()).Count);
    }

    [Fact]
    public async Task TheSpamhausErrorAnswerNeverBlocks()
    {
        await using EdgeMtaProcess server = await Start("--dnsbl", "err.test", "--dnsbl-action", "drop");
        Swaks s = await Send(server);
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        Assert.Empty(server.LinesWith("dnsbl-listed"));
        Assert.Equal(1, (await server.StopAndExportAsync()).Count);
    }

    [Fact]
    public async Task ADeadDnsServerMeansTheMailIsTakenAfterTheTimeout()
    {
        int silent = FreeUdpPort(); // nothing listens there: no answer ever comes
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            ["--dnsbl", "bl.test", "--dns-server", $"127.0.0.1:{silent}", "--dns-timeout", "2s"]);
        var clock = Stopwatch.StartNew();
        Swaks s = await Send(server);
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2), $"the RCPT waited for the verdict: {clock.Elapsed}");
        await server.WaitForLinesAsync("dnsbl-trouble zone=bl.test result=timeout suppressed=0");
        Assert.Equal(1, (await server.StopAndExportAsync()).Count);
    }

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
