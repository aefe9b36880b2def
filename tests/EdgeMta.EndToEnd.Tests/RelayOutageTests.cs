using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The next hop as a whole (docs/DELIVERY.md "The next hop as a whole" and "Guarantees"): a hop that is down is
/// marked dead once and probed once per interval, not hammered message by message, and everything waiting is
/// sent when it is back; and two edgemtas in a chain, the second killed with SIGKILL mid-stream and
/// restarted, lose nothing the first one was told was accepted (duplicates are counted, not forbidden).
/// </summary>
public sealed class RelayOutageTests(ITestOutputHelper output)
{
    private const string Sender = "sender@example.org";

    [Fact]
    public async Task ADeadHopIsProbedOncePerIntervalAndGetsEverythingWhenItIsBack()
    {
        int port = LoopbackPort.Free();   // nothing listens: connections are refused
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            ["--relay", $"smtp://127.0.0.1:{port}", "--retry-min", "1s"]);
        string[] to = [.. Enumerable.Range(0, 20).Select(i => $"r{i}@example.test")];
        var sent = new List<SentMessage>();
        foreach (string r in to) sent.Add(await server.SendAsync(Sender, [r], RelayClient.Message("outage " + r)));
        DeliveryLine dead = Assert.Single(await server.WaitForEventsAsync("relay-dead"));
        Assert.Equal($"127.0.0.1:{port}", dead["relay"]);

        // Still down, now answering 421 (RFC 5321 §3.8) so the probes can be counted: one per
        // min(60 s, --retry-min) = 1 s, not one per waiting message.
        var answering = true;
        await using var hop = ScriptedHop.Start(port: port, rule: e => e.Step == HopStep.Connect && Volatile.Read(ref answering) ? "421 4.3.2 down for maintenance" : null);
        await hop.WaitUntilAsync(h => h.Connections >= 4, "four probes", TimeSpan.FromSeconds(15), () => server.Log);
        TimeSpan[] at = hop.ConnectionTimes;
        for (int i = 1; i < at.Length; i++)
        {
            // ±10% jitter on a 1 s interval; 0.5 s leaves room for a loaded machine without letting a burst pass.
            Assert.True(at[i] - at[i - 1] >= TimeSpan.FromMilliseconds(500),
                $"probes {i - 1} and {i} came {(at[i] - at[i - 1]).TotalMilliseconds:0} ms apart: {string.Join(", ", at.Select(t => t.TotalMilliseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture)))}");
        }
        Assert.Empty(hop.Transactions);

        Volatile.Write(ref answering, false);
        await server.WaitForEventsAsync("relay-alive", bound: TimeSpan.FromSeconds(15));
        await server.WaitForEventsAsync("delivered", 20, bound: TimeSpan.FromSeconds(30));
        Assert.All(to, r => Assert.Single(hop.DeliveriesTo(r)));
        Assert.Single(server.Events("relay-dead"));
        Assert.Equal(20, sent.Select(s => s.QueueId).Distinct().Count());
    }

    [Fact]
    public async Task AChainWhoseMiddleIsKilledAndRestartedDeliversEverythingAcknowledged()
    {
        await using var sink = ScriptedHop.Start();
        int bPort = LoopbackPort.Free();
        // Each its own --hostname: by default both take the machine's, and A would take B's greeting for a loop.
        string[] bFlags = ["--listen", $"127.0.0.1:{bPort}", "--hostname", "edge-b.test", "--relay", sink.Url, "--retry-min", "1s"];
        EdgeMtaProcess b = await EdgeMtaProcess.StartAsync(output, bFlags, listen: false);
        b.KeepWorkDirectory = true;
        string bSpool = b.SpoolDirectory;
        EdgeMtaProcess? b2 = null;
        try
        {
            await using EdgeMtaProcess a = await EdgeMtaProcess.StartAsync(output, ["--hostname", "edge-a.test", "--relay", $"smtp://127.0.0.1:{bPort}", "--retry-min", "1s"]);
            const int count = 30;
            var acknowledged = new List<SentMessage>();
            Task sending = Task.Run(async () =>
            {
                for (int i = 0; i < count; i++)
                {
                    SentMessage s = await a.SendAsync(Sender, [$"r{i}@example.test"], RelayClient.Message($"chain {i}"));
                    lock (acknowledged) acknowledged.Add(s);
                }
            });
            // Kill B as soon as it has taken a few from A: some are then in B's spool only, some in flight.
            await b.WaitForLinesAsync("message-accepted", 5);
            b.Signal(EdgeMtaProcess.SIGKILL);
            await b.WaitForExitAsync(TimeSpan.FromSeconds(10));
            Assert.True(b.HasExited, "B should be gone after SIGKILL");
            await sending.WaitAsync(TimeSpan.FromSeconds(60));

            b2 = await EdgeMtaProcess.StartAsync(output, bFlags, spool: bSpool, listen: false);
            await sink.WaitUntilAsync(h => Enumerable.Range(0, count).All(i => h.DeliveriesTo($"r{i}@example.test").Length >= 1),
                "every acknowledged message", TimeSpan.FromSeconds(60), () => a.Log + "\n--- B after restart ---\n" + b2.Log);

            Assert.Equal(count, acknowledged.Count);
            int copies = sink.DeliveredCount;
            int duplicates = copies - count;
            int flagged = a.Events("possible-duplicate").Length + b2.Events("possible-duplicate").Length;
            output.WriteLine($"{count} messages, {copies} copies at the sink: {duplicates} duplicate(s); {flagged} possible-duplicate line(s)");
            // Only an in-flight handover can repeat: at most one per message, never a burst of copies.
            Assert.All(Enumerable.Range(0, count), i => Assert.InRange(sink.DeliveriesTo($"r{i}@example.test").Length, 1, 2));
        }
        finally
        {
            await b.DisposeAsync();
            if (b2 is not null) await b2.DisposeAsync();
            try { Directory.Delete(b.WorkDirectory, recursive: true); } catch (IOException) { }
        }
    }
}
