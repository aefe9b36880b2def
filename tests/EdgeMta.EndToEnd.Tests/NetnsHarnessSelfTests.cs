using System.Text.Json;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The scale-out run's harness checked without edgemta, so that a failing ScaleOutTests points at edgemta:
/// namespaces joined by veth pairs with no route out, HAProxy (plain TCP, health checks) started inside one,
/// the smtplib client (ScaleOut/client.py) in another sending through it to the aiosmtpd next hop
/// (ScaleOut/hop.py) in a third, and every namespace gone after disposal; and the private Postfix the scale-out
/// run relays to, inside a namespace (PostfixHop.StartInNamespaceAsync). Needs no edgemta binary.
/// </summary>
public sealed class NetnsHarnessSelfTests(ITestOutputHelper output)
{
    private static string Script(string name) =>
        Path.Combine(EdgeMtaBinary.RepositoryRoot, "tests", "EdgeMta.EndToEnd.Tests", "ScaleOut", name);

    [NetnsFact]
    public async Task AClientInOneNamespaceReachesAHopInAnotherThroughHaproxyInAThirdAndAllAreRemoved()
    {
        var ns = new NetworkNamespaces(output);
        try
        {
            string cli = await ns.AddAsync("cli"), lb = await ns.AddAsync("lb"), hop = await ns.AddAsync("hop");
            await ns.LinkAsync(cli, "192.0.2.10/24", lb, "192.0.2.1/24");
            await ns.LinkAsync(lb, "198.51.100.1/30", hop, "198.51.100.2/30");
            // No route out of the client's namespace: the hop's link is not on it, so only HAProxy reaches the hop.
            ToolResult direct = await ns.RunInAsync(cli, "/usr/bin/python3", "-c",
                "import socket; socket.create_connection(('198.51.100.2', 25), timeout=2)");
            Assert.NotEqual(0, direct.ExitCode);
            Assert.Contains("unreachable", direct.StandardError, StringComparison.OrdinalIgnoreCase);

            await using BackgroundProcess nextHop = BackgroundProcess.Start(output, "hop",
                ["/usr/bin/python3", Script("hop.py"), "198.51.100.2", "25"], NetworkNamespaces.Exec(hop));
            await nextHop.WaitForLinesAsync(l => l == "ready");
            await using HaproxyProcess haproxy = await HaproxyProcess.StartAsync(output,
                [new HaproxyFrontend("mx", "192.0.2.1:25", [new HaproxyServer("hop", "198.51.100.2:25", SendProxyV2: false, Check: true)])],
                NetworkNamespaces.Exec(lb));
            await haproxy.WaitForServerAsync("mx-back", "hop", "UP", "L4OK");

            await using BackgroundProcess client = BackgroundProcess.Start(output, "client",
                ["/usr/bin/python3", Script("client.py"), "192.0.2.1", "25", "/nonexistent/stop", "5", "2"], NetworkNamespaces.Exec(cli));
            Assert.Equal(0, await client.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(5, client.Lines.Length);
            Assert.All(client.Lines, l => Assert.Equal(250, JsonDocument.Parse(l).RootElement.GetProperty("code").GetInt32()));
            string[] arrived = await nextHop.WaitForLinesAsync(l => l.StartsWith('{'), 5);
            // HAProxy's own address on the hop's link: the hop never sees the client's.
            Assert.All(arrived, l => Assert.Equal("198.51.100.1", JsonDocument.Parse(l).RootElement.GetProperty("peer").GetString()));
        }
        finally
        {
            await ns.DisposeAsync();
        }
        Assert.Empty(await ns.LeftOverAsync());
    }

    [NetnsFact]
    public async Task PostfixInANamespaceHoldsMailFromMynetworksRefusesAnyoneElseAndStopsByItsPid()
    {
        var ns = new NetworkNamespaces(output);
        int master = 0;
        try
        {
            string inside = await ns.AddAsync("in"), outside = await ns.AddAsync("out"), hop = await ns.AddAsync("hop");
            await ns.LinkAsync(inside, "203.0.113.1/30", hop, "203.0.113.2/30");
            await ns.LinkAsync(outside, "198.51.100.1/30", hop, "198.51.100.2/30");
            await using (PostfixHop postfix = await PostfixHop.StartInNamespaceAsync(output, hop, ["203.0.113.2", "198.51.100.2"], ["203.0.113.0/30"]))
            {
                master = postfix.MasterPid;
                Assert.Equal("smtp://203.0.113.2:25", postfix.Url);
                // A client on a mynetworks link: held, over STARTTLS, with the client's link address in Received:.
                ToolResult held = await ns.RunInAsync(inside, Swaks.Binary, "-s", "203.0.113.2", "-p", "25", "--tls", "--helo", "in.test",
                    "--from", "s@example.org", "--to", "r@example.test", "--header", "X-Test: inside");
                Assert.True(held.ExitCode == 0, held.ToString());
                // Anyone else reaches it (it listens on that link too) and is refused at RCPT (swaks exit 24: no RCPT).
                ToolResult refused = await ns.RunInAsync(outside, Swaks.Binary, "-s", "198.51.100.2", "-p", "25", "--helo", "out.test",
                    "--from", "s@example.org", "--to", "r@example.test");
                Assert.True(refused.ExitCode == 24, refused.ToString());
                Assert.Contains("554 5.7.1", refused.StandardOutput);

                HeldMessage m = Assert.Single(await postfix.WaitForHeldAsync(1));
                Assert.StartsWith("Received: from in.test (unknown [203.0.113.1])", m.PostfixReceived);
                Assert.Contains("using TLS", m.PostfixReceived);
                Assert.Contains("X-Test: inside", m.Data);
                Assert.Equal(["r@example.test"], m.Recipients);
                Assert.True(Directory.Exists($"/proc/{master}"), "Postfix's master runs");
            }
            Assert.False(Directory.Exists($"/proc/{master}"), $"Postfix's master (pid {master}) outlived its disposal");
        }
        finally
        {
            await ns.DisposeAsync();
        }
        Assert.Empty(await ns.LeftOverAsync());
    }
}
