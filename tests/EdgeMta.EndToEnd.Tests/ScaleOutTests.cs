using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The scale-out run: two edgemta nodes behind one HAProxy, each in a network namespace of its own, with a
/// mail client and a real Postfix in two more. Topology (RFC 5737 documentation addresses, no default route
/// anywhere, so nothing leaves the namespaces this test made):
/// <code>
///   cli 192.0.2.10 ── 192.0.2.1 lb (HAProxy :25) 198.51.100.1 ── 198.51.100.2 n1 (edgemta :25) 203.0.113.1 ── 203.0.113.2 hop (Postfix :25)
///                                                198.51.100.5 ── 198.51.100.6 n2 (edgemta :25) 203.0.113.5 ── 203.0.113.6 hop
/// </code>
/// HAProxy balances round robin with PROXY v2 (`send-proxy-v2`) and v2 LOCAL health checks; each node trusts
/// only its HAProxy link address (`--proxy-trusted`) and relays (`--relay`) to a private Postfix listening on
/// both hop addresses, relaying only for the two node links (mynetworks) and holding every message it takes
/// (PostfixHop). The client (smtplib, ScaleOut/client.py, four sessions at a time, one message each, each with
/// its own X-Scaleout-Seq header) sends until told to stop; node 1 is stopped by SIGTERM mid-run, node 2 takes
/// the mail alone, then node 1 is started again on its spool and takes mail again.
/// Asserted: each node logged the client's own address (192.0.2.10) and HAProxy's as `proxy=`; every queue id
/// the client got a 250 for is in a spool (`edgemta spool list --json`) with that client address; and every
/// one arrives at Postfix with its own sequence number, through the node that took it (Postfix's Received:),
/// naming the real client (edgemta's Received:), exactly once: a SIGTERM is a clean stop, and a clean stop never
/// duplicates (docs/DELIVERY.md "Guarantees"). Postfix holds nothing the client was not acknowledged for.
/// What each node logged and what Postfix holds are printed for the record.
/// How it fails: every wait is bounded; processes are stopped by pid (Postfix's master by its pid file), then
/// the namespaces and temp directories are deleted in a finally.
/// </summary>
public sealed partial class ScaleOutTests(ITestOutputHelper output)
{
    private const string Python = "/usr/bin/python3";   // Debian's, with python3-aiosmtpd
    private const string Client = "192.0.2.10";
    private const int Batch = 12;                       // acknowledgements awaited at each step
    // The client's cap if the stop file never comes; node 2 alone takes about 200 a second, and the run must not end
    // before node 1 is back.
    private const string MaxMessages = "20000";
    private static readonly TimeSpan ArrivalBound = TimeSpan.FromSeconds(60);

    private static string Script(string name) =>
        Path.Combine(EdgeMtaBinary.RepositoryRoot, "tests", "EdgeMta.EndToEnd.Tests", "ScaleOut", name);

    private sealed record Ack(int Seq, string QueueId);

    /// <summary>A message Postfix holds: its Postfix queue id, the node's address from Postfix's Received:, and
    /// from edgemta's Received: (the first field of what the node sent) the node's queue id and the client.</summary>
    private sealed record Arrival(string PostfixId, string Peer, string EdgeId, string Client, int Seq);

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

    [GeneratedRegex(@"^Received: from \S+ \(.*?\[([0-9A-Fa-f.:]+)\]\)\s+by \S+ with \S+ id (\S+)", RegexOptions.Multiline)]
    private static partial Regex EdgeMtaReceived();

    [GeneratedRegex(@"^X-Scaleout-Seq: (\d+)", RegexOptions.Multiline)]
    private static partial Regex SeqHeader();

    [GeneratedRegex(@"^Received: from \S+ \(\S+ \[([0-9.]+)\]\)")]
    private static partial Regex PostfixReceived();

    private static Arrival Read(HeldMessage m)
    {
        Match edge = EdgeMtaReceived().Match(m.Data), seq = SeqHeader().Match(m.Data), peer = PostfixReceived().Match(m.PostfixReceived);
        return new Arrival(m.QueueId, peer.Success ? peer.Groups[1].Value : "?", edge.Success ? edge.Groups[2].Value : "?",
            edge.Success ? edge.Groups[1].Value : "?", seq.Success ? int.Parse(seq.Groups[1].Value, CultureInfo.InvariantCulture) : -1);
    }

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
        string haproxy, string hop, string? spool = null) =>
        // --listen 127.0.0.1:0 (the harness's, on the namespace's own loopback) only carries the first line the
        // harness reads; mail comes through the proxy listener. --retry-min 1s: a deferral (none is expected) is
        // retried within the test's bound, not after the default 300 s.
        EdgeMtaProcess.StartAsync(output,
            ["--listen-proxy", listen, "--proxy-trusted", haproxy + "/32", "--hostname", name, "--relay", $"smtp://{hop}:25",
             "--retry-min", "1s", "--retry-max", "2s"],
            spool: spool, launcher: NetworkNamespaces.Exec(ns));

    private static string[] SessionLines(EdgeMtaProcess node) =>
        node.Log.Split('\n').Where(l => l.Contains(" session-", StringComparison.Ordinal)
            || l.Contains(" message-accepted ", StringComparison.Ordinal) || l.Contains(" proxy-rejected ", StringComparison.Ordinal)).ToArray();

    /// <summary>The first and last 20 of many lines (the whole logs follow when each process is disposed).</summary>
    private static string Excerpt(IReadOnlyList<string> lines) =>
        lines.Count <= 40 ? string.Join('\n', lines)
            : string.Join('\n', lines.Take(20)) + $"\n  ... {lines.Count - 40} more ...\n" + string.Join('\n', lines.Skip(lines.Count - 20));

    [NetnsFact]
    public async Task TwoNodesBehindHaproxyLogTheRealClientAndLoseNothingAcknowledgedWhenOneStops()
    {
        var ns = new NetworkNamespaces(output);
        string work = Directory.CreateTempSubdirectory("edgemta-scaleout-").FullName;
        string? node1Work = null;   // node 1's work directory holds the spool its restart reuses: deleted here
        var run = Stopwatch.StartNew();
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

            await using PostfixHop postfix = await PostfixHop.StartInNamespaceAsync(output, hop, ["203.0.113.2", "203.0.113.6"],
                ["203.0.113.0/30", "203.0.113.4/30"]);
            await using EdgeMtaProcess node1 = await StartNodeAsync(output, n1, "node1.test", "198.51.100.2:25", "198.51.100.1", "203.0.113.2");
            node1.KeepWorkDirectory = true;
            node1Work = node1.WorkDirectory;
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
                [Python, Script("client.py"), "192.0.2.1", "25", stop, MaxMessages, "4"], NetworkNamespaces.Exec(cli));

            // Round robin: both nodes take mail before one stops.
            await client.WaitForLinesAsync(IsAck, Batch, TimeSpan.FromSeconds(30));
            await node1.WaitForLinesAsync($"client={Client}");
            await node2.WaitForLinesAsync($"client={Client}");
            int acksAtSignal = Acks(client).Count;
            var stopping = Stopwatch.StartNew();
            node1.Signal(EdgeMtaProcess.SIGTERM);
            int exit = await node1.WaitForExitAsync(EdgeMtaProcess.StopTimeout);
            Assert.True(exit == 0, $"node 1 exit {exit} after SIGTERM\n{node1.Log}");
            long stopMs = stopping.ElapsedMilliseconds;
            int acksAtStop = Acks(client).Count;
            // Node 1's spool read stopped: what it took, and what of it it had not relayed yet.
            Dictionary<string, (string State, string Client)> spool1AtStop = await SpoolAsync(node1);
            // HAProxy's checks find it gone (`fall 2` at 500 ms); meanwhile a refused connect is redispatched.
            await haproxy.WaitForServerAsync("mx-back", "n1", "DOWN", "L4CON");
            await client.WaitForLinesAsync(IsAck, acksAtStop + Batch, TimeSpan.FromSeconds(30));

            // Node 1 again, on the same spool: it relays what it had left and HAProxy sends it mail again. It starts
            // with n1 in maintenance, as an operator restarts a node behind HAProxy (no checks are sent then:
            // management guide §9.3 "disable server"): edgemta starts accepting before it prints `listening on`, and a
            // check in between puts its session-close line first, ahead of the line the harness reads.
            Assert.NotNull(await haproxy.TryCommandAsync("disable server mx-back/n1"));
            await using EdgeMtaProcess node1Again = await StartNodeAsync(output, n1, "node1.test", "198.51.100.2:25", "198.51.100.1",
                "203.0.113.2", spool: node1.SpoolDirectory);
            Assert.NotNull(await haproxy.TryCommandAsync("enable server mx-back/n1"));
            await haproxy.WaitForServerAsync("mx-back", "n1", "UP", "L4OK");
            await node1Again.WaitForLinesAsync($"client={Client}");
            int acksAtRestart = Acks(client).Count;
            await client.WaitForLinesAsync(IsAck, acksAtRestart + Batch, TimeSpan.FromSeconds(30));
            await File.WriteAllTextAsync(stop, "");
            await client.WaitForExitAsync(TimeSpan.FromSeconds(30));
            List<Ack> acks = Acks(client);

            // Every acknowledged message reaches Postfix. Held ones are counted in the hold queue's directory and
            // read (postcat) once there are enough; a count reached by a copy waits on for the rest (bounded).
            var arrivalClock = Stopwatch.StartNew();
            var acked = acks.Select(a => (a.QueueId, a.Seq)).ToHashSet();
            List<Arrival> arrived;
            int want = acks.Count;
            while (true)
            {
                arrived = (await postfix.WaitForHeldAsync(want, () => $"{node1Again.Log}\n{node2.Log}", ArrivalBound)).Select(Read).ToList();
                int missing = acked.Count(a => !arrived.Any(r => r.EdgeId == a.QueueId && r.Seq == a.Seq));
                if (missing == 0) break;
                Assert.True(arrivalClock.Elapsed < ArrivalBound, $"{missing} acknowledged message(s) never reached Postfix");
                want = arrived.Count + 1;
            }
            long arrivalMs = arrivalClock.ElapsedMilliseconds;
            Assert.Equal(0, await node1Again.StopAsync());
            Assert.Equal(0, await node2.StopAsync());

            // Nothing acknowledged is lost, and the spools hold the real client (read stopped).
            Dictionary<string, (string State, string Client)> spool1 = await SpoolAsync(node1Again), spool2 = await SpoolAsync(node2);
            foreach (Ack a in acks)
            {
                bool in1 = spool1.TryGetValue(a.QueueId, out var m1) || spool1AtStop.TryGetValue(a.QueueId, out m1);
                bool in2 = spool2.TryGetValue(a.QueueId, out var m2);
                Assert.True(in1 || in2, $"message {a.Seq} (queue id {a.QueueId}) was acknowledged and is in neither spool");
                Assert.Equal(Client, in1 ? m1.Client : m2.Client);
            }
            Assert.Contains(acks, a => spool1AtStop.ContainsKey(a.QueueId));
            Assert.True(acks.Count(a => spool2.ContainsKey(a.QueueId)) >= Batch, "node 2 took the mail after node 1 stopped");
            Assert.Contains(acks, a => spool1.ContainsKey(a.QueueId) && !spool1AtStop.ContainsKey(a.QueueId));

            // Each node logged the client's own address, and its HAProxy link address as the proxy.
            foreach ((EdgeMtaProcess node, string proxy) in new[] { (node1, "198.51.100.1"), (node1Again, "198.51.100.1"), (node2, "198.51.100.5") })
            {
                string[] accepted = node.LinesWith("message-accepted");
                Assert.NotEmpty(accepted);
                Assert.All(accepted, l => Assert.Contains($" client={Client} ", l));
                Assert.Contains(node.LinesWith("session-close"), l => l.Contains($" client={Client} ", StringComparison.Ordinal)
                    && l.Contains($" proxy={proxy}", StringComparison.Ordinal));
                Assert.Empty(node.LinesWith("proxy-rejected"));
                Assert.Empty(node.LinesWith("possible-duplicate"));
            }

            // Postfix: what it holds came from the real client (edgemta's Received:), each through the node that took
            // it (node 1's link is 203.0.113.1, node 2's 203.0.113.5), only what was acknowledged, and once.
            Assert.All(arrived, r => Assert.True(acked.Contains((r.EdgeId, r.Seq)), $"Postfix holds {r}, which the client was not acknowledged for"));
            Assert.All(arrived, r => Assert.Equal(Client, r.Client));
            Assert.All(arrived, r => Assert.Equal(spool2.ContainsKey(r.EdgeId) ? "203.0.113.5" : "203.0.113.1", r.Peer));
            var copies = arrived.GroupBy(r => r.EdgeId).Where(g => g.Count() > 1).ToList();

            int refused = client.Lines.Length - acks.Count;
            int leftAtStop = spool1AtStop.Values.Count(m => m.State != "done");
            output.WriteLine($"=== scale-out ({run.ElapsedMilliseconds} ms; Postfix started in {postfix.StartTime.TotalMilliseconds:F0} ms): " +
                             $"{client.Lines.Length} messages sent, {acks.Count} acknowledged ({acksAtSignal} before node 1 got SIGTERM, " +
                             $"{acksAtStop} when it had exited {stopMs} ms later, {acksAtRestart} when it was back), {refused} not acknowledged; " +
                             $"spools: node 1 {spool1.Count} ({spool1AtStop.Count} at its stop, {leftAtStop} of them not yet relayed), node 2 {spool2.Count}; " +
                             $"Postfix holds {arrived.Count} ({arrived.Select(r => r.EdgeId).Distinct().Count()} distinct, {copies.Count} duplicated), " +
                             $"the last acknowledged one {arrivalMs} ms after the client stopped; via node 1 {arrived.Count(r => r.Peer == "203.0.113.1")}, " +
                             $"via node 2 {arrived.Count(r => r.Peer == "203.0.113.5")}");
            foreach ((string name, EdgeMtaProcess node) in new[] { ("node 1", node1), ("node 1 restarted", node1Again), ("node 2", node2) })
            {
                string[] lines = SessionLines(node), delivered = node.LinesWith(" delivered ");
                output.WriteLine($"=== {name} logged ({lines.Length} session and message lines):\n{Excerpt(lines)}");
                output.WriteLine($"=== {name} relayed ({delivered.Length} delivered lines), the first:\n{string.Join('\n', delivered.Take(3))}");
            }
            output.WriteLine($"=== Postfix holds ({arrived.Count}):\n" + Excerpt(arrived.Select(r =>
                $"postfix {r.PostfixId} from [{r.Peer}] X-Scaleout-Seq {r.Seq}, edgemta id {r.EdgeId} client [{r.Client}]").ToList()));
            // Postfix's own word for the first messages through each node: TLS, the HOLD and the queue id it took.
            string[] maillog = postfix.MailLog.Split('\n');
            foreach (string peer in (string[])["203.0.113.1", "203.0.113.5"])
            {
                output.WriteLine($"=== Postfix's maillog for [{peer}], the first:\n" + string.Join('\n', maillog.Where(l => l.Contains($"[{peer}]", StringComparison.Ordinal)
                    && (l.Contains("TLS connection established", StringComparison.Ordinal) || l.Contains(": hold: ", StringComparison.Ordinal)
                        || l.Contains(": client=", StringComparison.Ordinal))).Take(6)));
            }
            foreach (var g in copies) output.WriteLine($"=== DUPLICATE at Postfix: {string.Join("; ", g)}");
            foreach (string line in client.Lines.Where(l => !IsAck(l))) output.WriteLine($"=== not acknowledged: {line}");
            Assert.True(copies.Count == 0, $"{copies.Count} message(s) reached Postfix more than once after clean stops");
        }
        finally
        {
            await ns.DisposeAsync();
            string[] left = await ns.LeftOverAsync();
            output.WriteLine(left.Length == 0 ? "namespaces removed" : $"namespaces LEFT: {string.Join(' ', left)}");
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
            if (node1Work is not null)
            {
                try { Directory.Delete(node1Work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }
}
