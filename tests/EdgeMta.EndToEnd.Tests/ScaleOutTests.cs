using System.Text.Json;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The scale-out run: two edgemta nodes behind one HAProxy, each in a network namespace of its own, with a
/// mail client and a next hop in two more. Topology (RFC 5737 documentation addresses, no default route
/// anywhere, so nothing leaves the namespaces this test made):
/// <code>
///   cli 192.0.2.10 ── 192.0.2.1 lb (HAProxy :25) 198.51.100.1 ── 198.51.100.2 n1 (edgemta :25) 203.0.113.1 ── 203.0.113.2 hop
///                                                198.51.100.5 ── 198.51.100.6 n2 (edgemta :25) 203.0.113.5 ── 203.0.113.6 hop
/// </code>
/// HAProxy balances round robin with PROXY v2 (`send-proxy-v2`) and v2 LOCAL health checks; each node trusts
/// only its HAProxy link address (`--proxy-trusted`) and relays to the hop (aiosmtpd, ScaleOut/hop.py).
/// The client (smtplib, ScaleOut/client.py, four sessions at a time, one message each) sends until told to
/// stop; node 1 is stopped by SIGTERM mid-run. Asserted: each node logged the client's own address
/// (192.0.2.10) and HAProxy's as `proxy=`; every queue id the client got a 250 for is in one of the two
/// spools (`edgemta spool list --json`) with that client address, and HAProxy sent later mail to node 2.
/// What node 1 had not relayed when it stopped stays in its spool; the rest reached the hop, whose Received:
/// names the real client too. What each node logged is printed for the record.
/// How it fails: every wait is bounded; the namespaces are deleted in a finally, processes stopped by pid first.
/// </summary>
public sealed class ScaleOutTests(ITestOutputHelper output)
{
    private const string Python = "/usr/bin/python3";   // Debian's, with python3-aiosmtpd
    private const string Client = "192.0.2.10";
    private const int Batch = 12;                       // acknowledgements awaited before and after the stop

    private static string Script(string name) =>
        Path.Combine(EdgeMtaBinary.RepositoryRoot, "tests", "EdgeMta.EndToEnd.Tests", "ScaleOut", name);

    private sealed record Ack(int Seq, string QueueId);

    private static List<Ack> Acks(BackgroundProcess client)
    {
        var acks = new List<Ack>();
        foreach (string line in client.Lines)
        {
            using JsonDocument d = JsonDocument.Parse(line);
            if (d.RootElement.GetProperty("code").GetInt32() == 250 && d.RootElement.TryGetProperty("queue_id", out JsonElement id))
            {
                acks.Add(new Ack(d.RootElement.GetProperty("seq").GetInt32(), id.GetString()!));
            }
        }
        return acks;
    }

    /// <summary>The queue ids the hop received (from edgemta's Received: header, as hop.py reports it).</summary>
    private static HashSet<string> HopIds(string[] lines) =>
        lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString() ?? "").ToHashSet();

    private static bool IsAck(string line) => line.Contains("\"code\": 250", StringComparison.Ordinal);

    /// <summary>`spool list --json` of a node: id → (state, client_address).</summary>
    private static async Task<Dictionary<string, (string State, string Client)>> SpoolAsync(EdgeMtaProcess node)
    {
        ToolResult list = await node.RunSpoolAsync("list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        using JsonDocument d = JsonDocument.Parse(list.StandardOutput);
        return d.RootElement.EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!,
            m => (m.GetProperty("state").GetString()!, m.GetProperty("client_address").GetString()!));
    }

    private static Task<EdgeMtaProcess> StartNodeAsync(ITestOutputHelper output, string ns, string name, string listen,
        string haproxy, string hop) =>
        // --listen 127.0.0.1:0 (the harness's, on the namespace's own loopback) only carries the first line the
        // harness reads; mail comes through the proxy listener.
        EdgeMtaProcess.StartAsync(output,
            ["--listen-proxy", listen, "--proxy-trusted", haproxy + "/32", "--hostname", name, "--relay", $"smtp://{hop}:25"],
            launcher: NetworkNamespaces.Exec(ns));

    [NetnsFact]
    public async Task TwoNodesBehindHaproxyLogTheRealClientAndLoseNothingAcknowledgedWhenOneStops()
    {
        var ns = new NetworkNamespaces(output);
        string work = Directory.CreateTempSubdirectory("edgemta-scaleout-").FullName;
        try
        {
            string cli = await ns.AddAsync("cli"), lb = await ns.AddAsync("lb"), n1 = await ns.AddAsync("n1"),
                n2 = await ns.AddAsync("n2"), hop = await ns.AddAsync("hop");
            await ns.LinkAsync(cli, $"{Client}/24", lb, "192.0.2.1/24");
            await ns.LinkAsync(lb, "198.51.100.1/30", n1, "198.51.100.2/30");
            await ns.LinkAsync(lb, "198.51.100.5/30", n2, "198.51.100.6/30");
            await ns.LinkAsync(n1, "203.0.113.1/30", hop, "203.0.113.2/30");
            await ns.LinkAsync(n2, "203.0.113.5/30", hop, "203.0.113.6/30");
            foreach (string name in (string[])[cli, lb, n1, n2, hop])
            {
                ToolResult routes = await ns.RunInAsync(name, NetworkNamespaces.Ip, "-4", "route", "show", "default");
                Assert.True(routes.ExitCode == 0 && routes.StandardOutput.Trim().Length == 0, $"a route out of {name}\n{routes}");
            }

            await using BackgroundProcess nextHop = BackgroundProcess.Start(output, "hop",
                [Python, Script("hop.py"), "0.0.0.0", "25"], NetworkNamespaces.Exec(hop));
            await nextHop.WaitForLinesAsync(l => l == "ready");
            await using EdgeMtaProcess node1 = await StartNodeAsync(output, n1, "node1.test", "198.51.100.2:25", "198.51.100.1", "203.0.113.2");
            await using EdgeMtaProcess node2 = await StartNodeAsync(output, n2, "node2.test", "198.51.100.6:25", "198.51.100.5", "203.0.113.6");
            await using HaproxyProcess haproxy = await HaproxyProcess.StartAsync(output,
            [
                new HaproxyFrontend("mx", "192.0.2.1:25",
                [
                    new HaproxyServer("n1", "198.51.100.2:25", SendProxyV2: true, Check: true),
                    new HaproxyServer("n2", "198.51.100.6:25", SendProxyV2: true, Check: true),
                ]),
            ], NetworkNamespaces.Exec(lb));
            await haproxy.WaitForServerAsync("mx-back", "n1", "UP", "L4OK");
            await haproxy.WaitForServerAsync("mx-back", "n2", "UP", "L4OK");

            string stop = Path.Combine(work, "stop");
            await using BackgroundProcess client = BackgroundProcess.Start(output, "client",
                [Python, Script("client.py"), "192.0.2.1", "25", stop, "2000", "4"], NetworkNamespaces.Exec(cli));

            // Round robin: both nodes take mail before one stops.
            await client.WaitForLinesAsync(IsAck, Batch, TimeSpan.FromSeconds(30));
            await node1.WaitForLinesAsync($"client={Client}");
            await node2.WaitForLinesAsync($"client={Client}");
            int acksAtSignal = Acks(client).Count;
            var stopping = System.Diagnostics.Stopwatch.StartNew();
            node1.Signal(EdgeMtaProcess.SIGTERM);
            int exit = await node1.WaitForExitAsync(EdgeMtaProcess.StopTimeout);
            Assert.True(exit == 0, $"node 1 exit {exit} after SIGTERM\n{node1.Log}");
            long stopMs = stopping.ElapsedMilliseconds;
            int acksAtStop = Acks(client).Count;
            // HAProxy's checks find it gone (`fall 2` at 500 ms); meanwhile a refused connect is redispatched.
            await haproxy.WaitForServerAsync("mx-back", "n1", "DOWN", "L4CON");
            await client.WaitForLinesAsync(IsAck, acksAtStop + Batch, TimeSpan.FromSeconds(30));
            await File.WriteAllTextAsync(stop, "");
            await client.WaitForExitAsync(TimeSpan.FromSeconds(30));

            // Nothing acknowledged is lost, and the spool holds the real client. Node 1's spool is read stopped,
            // node 2's live (README: the spool commands other than drain read a live spool).
            List<Ack> acks = Acks(client);
            Dictionary<string, (string State, string Client)> spool1 = await SpoolAsync(node1), spool2 = await SpoolAsync(node2);
            foreach (Ack a in acks)
            {
                bool in1 = spool1.TryGetValue(a.QueueId, out var m1), in2 = spool2.TryGetValue(a.QueueId, out var m2);
                Assert.True(in1 || in2, $"message {a.Seq} (queue id {a.QueueId}) was acknowledged and is in neither spool");
                Assert.Equal(Client, in1 ? m1.Client : m2.Client);
            }
            Assert.Contains(acks, a => spool1.ContainsKey(a.QueueId));
            Assert.True(acks.Count(a => spool2.ContainsKey(a.QueueId)) >= Batch, "node 2 took the mail after node 1 stopped");

            // Everything node 2 took, and what node 1 relayed before it stopped, reaches the hop.
            var expectedAtHop = acks.Where(a => spool2.ContainsKey(a.QueueId) || spool1[a.QueueId].State == "done")
                .Select(a => a.QueueId).ToHashSet();
            await nextHop.WaitUntilAsync(lines => expectedAtHop.IsSubsetOf(HopIds(lines)),
                $"the {expectedAtHop.Count} relayed messages", TimeSpan.FromSeconds(30));
            Assert.Equal(0, await node2.StopAsync());

            // Each node logged the client's own address, and its HAProxy link address as the proxy.
            foreach ((EdgeMtaProcess node, string proxy) in new[] { (node1, "198.51.100.1"), (node2, "198.51.100.5") })
            {
                string[] accepted = node.LinesWith("message-accepted");
                Assert.NotEmpty(accepted);
                Assert.All(accepted, l => Assert.Contains($" client={Client} ", l));
                Assert.Contains(node.LinesWith("session-close"), l => l.Contains($" client={Client} ", StringComparison.Ordinal)
                    && l.Contains($" proxy={proxy}", StringComparison.Ordinal));
                Assert.Empty(node.LinesWith("proxy-rejected"));
            }

            // The hop: what arrived came from the real client (edgemta's Received:), each through the node that
            // took it (node 1's link is 203.0.113.1, node 2's 203.0.113.5).
            var arrived = nextHop.Lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            HashSet<string> arrivedIds = HopIds(nextHop.Lines);
            Assert.Subset(arrivedIds, expectedAtHop);
            Assert.All(arrived, e => Assert.Equal(Client, e.GetProperty("client").GetString()));
            Assert.All(arrived, e => Assert.Equal(spool2.ContainsKey(e.GetProperty("id").GetString()!) ? "203.0.113.5" : "203.0.113.1",
                e.GetProperty("peer").GetString()));

            int refused = client.Lines.Length - acks.Count;
            output.WriteLine($"=== scale-out: {client.Lines.Length} messages sent, {acks.Count} acknowledged ({acksAtSignal} before node 1 " +
                             $"got SIGTERM, {acksAtStop} when it had exited {stopMs} ms later), {refused} not acknowledged; spools: node 1 {spool1.Count} " +
                             $"({spool1.Values.Count(m => m.State != "done")} not yet relayed), node 2 {spool2.Count}; " +
                             $"hop received {arrived.Count} ({arrivedIds.Count} distinct)");
            foreach ((string name, EdgeMtaProcess node) in new[] { ("node 1", node1), ("node 2", node2) })
            {
                string[] lines = node.Log.Split('\n').Where(l => l.Contains(" session-", StringComparison.Ordinal)
                    || l.Contains(" message-accepted ", StringComparison.Ordinal) || l.Contains(" proxy-rejected ", StringComparison.Ordinal)).ToArray();
                // The first and last 20 (node 2 takes a few hundred); the whole log follows when the node is disposed.
                string shown = lines.Length <= 40 ? string.Join('\n', lines)
                    : string.Join('\n', lines[..20]) + $"\n  ... {lines.Length - 40} more ...\n" + string.Join('\n', lines[^20..]);
                output.WriteLine($"=== {name} logged ({lines.Length} session and message lines):\n{shown}");
            }
            foreach (string line in client.Lines.Where(l => !IsAck(l))) output.WriteLine($"=== not acknowledged: {line}");
        }
        finally
        {
            await ns.DisposeAsync();
            string[] left = await ns.LeftOverAsync();
            output.WriteLine(left.Length == 0 ? "namespaces removed" : $"namespaces LEFT: {string.Join(' ', left)}");
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }
}
