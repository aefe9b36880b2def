using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// edgemta behind a real HAProxy (Debian `haproxy` 2.6), on loopback: a `--listen-proxy` listener trusting
/// only 127.0.0.1/32, HAProxy's frontend `mx` sending PROXY v2 headers (`send-proxy-v2`) and v2 LOCAL health
/// checks (`check-send-proxy`), and a frontend `plain` forwarding bare TCP to the same listener.
/// docs/SCREENING.md "PROXY protocol" is the contract: the header's address is the client (log `client=`,
/// spool, Received:), the socket peer only the log's `proxy=`; LOCAL is accepted with the socket's own
/// addresses; anything else is closed with no reply and one `proxy-rejected` line.
/// Clients connect from 127.0.0.2 and 127.0.0.3 (all of 127.0.0.0/8 is loopback on Linux) so that the
/// client address in the header differs from HAProxy's own 127.0.0.1: a server logging the socket peer as
/// the client fails here. What this does not do: namespaces and several nodes (ScaleOutTests).
/// </summary>
public sealed class HaproxyTests(ITestOutputHelper output)
{
    private const string ProxyTimeout = "2s";

    /// <summary>edgemta with a proxy listener, and HAProxy in front of it with both frontends.</summary>
    private sealed record Pair(EdgeMtaProcess Server, HaproxyProcess Haproxy, int MxPort, int PlainPort) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Haproxy.DisposeAsync();
            await Server.DisposeAsync();
        }
    }

    private async Task<Pair> StartAsync()
    {
        int proxyPort = HaproxyProcess.FreeLoopbackPort(), mx = HaproxyProcess.FreeLoopbackPort(), plain = HaproxyProcess.FreeLoopbackPort();
        EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            ["--listen-proxy", $"127.0.0.1:{proxyPort}", "--proxy-trusted", "127.0.0.1/32", "--proxy-timeout", ProxyTimeout]);
        HaproxyProcess haproxy;
        try
        {
            haproxy = await HaproxyProcess.StartAsync(output,
            [
                new HaproxyFrontend("mx", $"127.0.0.1:{mx}", [new HaproxyServer("s1", $"127.0.0.1:{proxyPort}", SendProxyV2: true, Check: true)]),
                new HaproxyFrontend("plain", $"127.0.0.1:{plain}", [new HaproxyServer("s1", $"127.0.0.1:{proxyPort}", SendProxyV2: false, Check: false)]),
            ]);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return new Pair(server, haproxy, mx, plain);
    }

    [Fact]
    public async Task SwaksThroughHaproxyIsDeliveredAndLoggedWithItsOwnAddressAndTheProxys()
    {
        await using Pair p = await StartAsync();
        await p.Haproxy.WaitForServerAsync("mx-back", "s1", "UP", "L4OK");

        Swaks swaks = await Swaks.RunAsync(p.MxPort, output, "--local-interface", "127.0.0.2", "--helo", "client.test",
            "--from", "sender@client.test", "--to", "rcpt@example.test");
        Assert.True(swaks.Result.ExitCode == 0, swaks.Result.ToString());
        Assert.StartsWith("220 ", swaks.Banner());
        string id = swaks.QueueId();

        // The header's address, not HAProxy's, is the client: in the accepted line, the session line and the spool.
        string accepted = Assert.Single(await p.Server.WaitForLinesAsync($"message-accepted id={id}"));
        Assert.Contains(" client=127.0.0.2 ", accepted);
        // session-close names the client first, then its counts, then the proxy (ServerLog field order).
        string session = Assert.Single(await p.Server.WaitForLinesAsync("client=127.0.0.2 messages="));
        Assert.Matches(@" proxy=127\.0\.0\.1(\s|$)", session);
        Assert.Empty(p.Server.LinesWith("proxy-rejected"));

        ToolResult list = await p.Server.RunSpoolAsync("list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        using JsonDocument spool = JsonDocument.Parse(list.StandardOutput);
        JsonElement message = Assert.Single(spool.RootElement.EnumerateArray(), m => m.GetProperty("id").GetString() == id);
        Assert.Equal("127.0.0.2", message.GetProperty("client_address").GetString());
        output.WriteLine($"edgemta logged:\n  {accepted}\n  {session}");
    }

    [Fact]
    public async Task HaproxyHealthChecksWithLocalHeadersKeepTheServerUpAndAreNeverRejected()
    {
        await using Pair p = await StartAsync();
        // Checks every 500 ms (`inter 500ms`), each a connection that sends a v2 LOCAL header and closes. Three
        // sessions seen by edgemta are three checks: HAProxy's frontends carry no other traffic yet.
        string[] checks = await p.Server.WaitForLinesAsync("session-close", 3);
        HaproxyServerStat s1 = await p.Haproxy.WaitForServerAsync("mx-back", "s1", "UP", "L4OK");

        Assert.Equal(0, s1.CheckFailures);
        Assert.Empty(p.Server.LinesWith("proxy-rejected"));
        // LOCAL: the socket's own addresses are used (docs/SCREENING.md), so the client is HAProxy itself.
        Assert.All(checks, l => Assert.Contains(" client=127.0.0.1 ", l));
        Assert.DoesNotContain(p.Haproxy.Log.Split('\n'), l => l.Contains("is DOWN", StringComparison.Ordinal));
        output.WriteLine($"edgemta logged for HAProxy's health checks:\n  {string.Join("\n  ", checks)}");
    }

    [Fact]
    public async Task PlainTcpFromATrustedProxyWithoutAHeaderGetsNoGreetingAndOneProxyRejectedLine()
    {
        await using Pair p = await StartAsync();
        await p.Haproxy.WaitForServerAsync("mx-back", "s1", "UP", "L4OK");

        // A client waiting for the greeting, as every SMTP client does, through the frontend without send-proxy:
        // edgemta reads no header, and after --proxy-timeout closes with no byte sent.
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.3"), 0));
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, p.PlainPort));
        var clock = Stopwatch.StartNew();
        var buffer = new byte[512];
        int received = 0, n;
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            while ((n = await client.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, deadline.Token)) > 0) received += n;
        }
        clock.Stop();

        Assert.True(received == 0, $"edgemta answered a connection with no PROXY header: {System.Text.Encoding.ASCII.GetString(buffer, 0, received)}");
        string rejected = Assert.Single(await p.Server.WaitForLinesAsync("proxy-rejected"));
        // The socket peer is HAProxy (127.0.0.1); the real client 127.0.0.3 is unknown without a header.
        Assert.Contains(" client=127.0.0.1", rejected);
        Assert.Contains("reason=", rejected);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.5),
            $"closed after {clock.ElapsedMilliseconds} ms, before --proxy-timeout {ProxyTimeout}");
        Assert.Empty(p.Server.LinesWith("client=127.0.0.3"));
        output.WriteLine($"edgemta logged:\n  {rejected}");
    }
}
