using System.Text.Json;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The scale-out run's harness checked without edgemta, so that a failing ScaleOutTests points at edgemta:
/// namespaces joined by veth pairs with no route out, HAProxy (plain TCP, health checks) started inside one,
/// the smtplib client (ScaleOut/client.py) in another sending through it to the aiosmtpd next hop
/// (ScaleOut/hop.py) in a third, and every namespace gone after disposal. Needs no edgemta binary.
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
}
