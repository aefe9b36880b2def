using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Restarts in a row keep the delivery state (docs/DELIVERY.md "Guarantees": per-recipient state is durable,
/// after a restart delivery resumes where it stopped, a clean stop never duplicates). The case perf/relay-kill.sh
/// found: messages delivered and released while another message in the same segment is still waiting. The first
/// restart folds the journal and compacts it; the second must still know those messages were delivered, so the
/// queue after it holds the one waiting message, and the next hop sees every message exactly once.
/// Deliberately not: SIGKILL (perf/relay-kill.sh); here every stop is a clean SIGTERM, so any copy is a bug.
/// Bounded: every wait has its bound; each server is stopped by its pid on disposal.
/// </summary>
public sealed class RelayRestartTests(ITestOutputHelper output)
{
    private const string Sender = "sender@example.org";

    [Fact]
    public async Task TwoCleanRestartsInARowKeepDeliveredMessagesDelivered()
    {
        const string Waiting = "waiting@example.test";
        var later = true;   // the hop defers the waiting recipient (RFC 5321 §4.2.5) until the test says otherwise
        await using var hop = ScriptedHop.Start(rule: e =>
            e.Step == HopStep.Rcpt && e.Line.Contains(Waiting, StringComparison.Ordinal) && Volatile.Read(ref later) ? "450 4.2.1 try later" : null);
        string[] flags = ["--hostname", "edge.test", "--relay", hop.Url, "--retry-min", "1s", "--retry-max", "2s"];
        string[] first = [.. Enumerable.Range(0, 5).Select(i => $"r{i}@example.test")];

        EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, flags);
        server.KeepWorkDirectory = true;
        string spool = server.SpoolDirectory, work = server.WorkDirectory;
        var runs = new List<EdgeMtaProcess> { server };
        try
        {
            foreach (string r in first) await server.SendAsync(Sender, [r], RelayClient.Message("first " + r));
            await server.WaitForEventsAsync("delivered", first.Length);
            // One more message waits (deferred) in the same segment as the five delivered ones.
            await server.SendAsync(Sender, [Waiting], RelayClient.Message("waiting"));
            await server.WaitForEventsAsync("deferred", where: l => l["rcpt"] == Waiting);
            Assert.Equal(0, await server.StopAsync());

            for (int restart = 1; restart <= 2; restart++)
            {
                server = await EdgeMtaProcess.StartAsync(output, flags, spool: spool);
                runs.Add(server);
                DeliveryLine start = Assert.Single(await server.WaitForEventsAsync("delivery-start"));
                // Only the waiting message is queued; the five delivered ones are done for good.
                Assert.True(start["queued"] == "1", $"restart {restart}: `{start}` (the five delivered messages came back)");
                if (restart == 1) Assert.Equal(0, await server.StopAsync());
            }

            Volatile.Write(ref later, false);
            await hop.WaitUntilAsync(h => h.DeliveriesTo(Waiting).Length >= 1, "the waiting message", TimeSpan.FromSeconds(30), () => server.Log);
            Assert.Equal(0, await server.StopAsync());
            foreach (string r in first) Assert.Single(hop.DeliveriesTo(r));
            Assert.Empty(runs.SelectMany(s => s.Events("possible-duplicate")));
        }
        finally
        {
            foreach (EdgeMtaProcess s in runs) await s.DisposeAsync();
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }
}
