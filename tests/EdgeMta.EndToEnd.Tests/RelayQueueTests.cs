using System.Collections.Concurrent;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The queue commands against a running server (docs/DELIVERY.md "Queue commands"): a hold survives a restart
/// and keeps the message from the hop until it is released; a delete is for good, the message never reaches
/// the hop. "Never" is checked after a later message was delivered through the same hop, a barrier that
/// proves the agent had its chance.
/// </summary>
public sealed class RelayQueueTests(ITestOutputHelper output)
{
    private const string Sender = "sender@example.org";

    [Fact]
    public async Task AHoldSurvivesARestartUntilReleasedAndADeletedMessageIsNeverDelivered()
    {
        var refused = new ConcurrentDictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
        refused["held@example.test"] = true;
        refused["deleted@example.test"] = true;
        await using var hop = ScriptedHop.Start(rule: e => e.Step == HopStep.Rcpt && refused.ContainsKey(e.Recipient) ? "451 4.2.0 Not now" : null);
        // A minute between attempts: a deferred message then sits still, never in flight when a command names it,
        // and only a flush (or a restart) makes it due within the test.
        string[] flags = ["--relay", hop.Url, "--retry-min", "60s"];

        EdgeMtaProcess first = await EdgeMtaProcess.StartAsync(output, flags);
        first.KeepWorkDirectory = true;
        SentMessage held, deleted;
        try
        {
            held = await first.SendAsync(Sender, ["held@example.test"], RelayClient.Message("held"));
            deleted = await first.SendAsync(Sender, ["deleted@example.test"], RelayClient.Message("deleted"));
            await first.WaitForEventsAsync("deferred", where: l => l["id"] == held.QueueId);
            await first.WaitForEventsAsync("deferred", where: l => l["id"] == deleted.QueueId);

            ToolResult hold = await first.RunQueueAsync(output, "hold", held.QueueId);
            Assert.True(hold.ExitCode == 0, hold.ToString());
            Assert.True(DeliveryLogLines.IsHeld(Assert.Single(await first.QueueJsonAsync(output, held.QueueId))), "held after `queue hold`");
            Assert.Equal(0, await first.StopAsync());
        }
        finally
        {
            await first.DisposeAsync();
        }

        EdgeMtaProcess second = await EdgeMtaProcess.StartAsync(output, flags, spool: first.SpoolDirectory);
        try
        {
            Assert.True(DeliveryLogLines.IsHeld(Assert.Single(await second.QueueJsonAsync(output, held.QueueId))), "still held after the restart");
            Assert.False(DeliveryLogLines.IsHeld(Assert.Single(await second.QueueJsonAsync(output, deleted.QueueId))), "only the one put on hold is held");

            // The hop would take it now; held, it must not go.
            refused.TryRemove("held@example.test", out _);
            Assert.Equal(0, (await second.RunQueueAsync(output, "flush")).ExitCode);
            await Barrier(second, hop, "after-hold");
            Assert.Empty(hop.DeliveriesTo("held@example.test"));

            ToolResult release = await second.RunQueueAsync(output, "release", held.QueueId);
            Assert.True(release.ExitCode == 0, release.ToString());
            // The earlier flush made it due already, so the agent may have taken it before this flush arrives (then
            // the flush finds nothing waiting, exit 1): the delivery is what counts, not the flush's exit code.
            await second.RunQueueAsync(output, "flush", held.QueueId);
            await second.WaitForEventsAsync("delivered", where: l => l["id"] == held.QueueId);
            Assert.Single(hop.DeliveriesTo("held@example.test"));

            ToolResult delete = await second.RunQueueAsync(output, "delete", deleted.QueueId);
            Assert.True(delete.ExitCode == 0, delete.ToString());
            Assert.Empty(await second.QueueJsonAsync(output, deleted.QueueId));
            refused.TryRemove("deleted@example.test", out _);
            Assert.Equal(0, (await second.RunQueueAsync(output, "flush")).ExitCode);
            await Barrier(second, hop, "after-delete");
            Assert.Empty(hop.DeliveriesTo("deleted@example.test"));
            Assert.DoesNotContain(second.Events("delivered"), l => l["id"] == deleted.QueueId);
            Assert.DoesNotContain(second.Events("bounce"), l => l["for"] == deleted.QueueId);   // "gone for good, no bounce"

            // An unknown id: exit 1, the others still done (docs/DELIVERY.md "Exit codes").
            Assert.Equal(1, (await second.RunQueueAsync(output, "hold", "NOSUCHID")).ExitCode);
        }
        finally
        {
            await second.DisposeAsync();
            try { Directory.Delete(first.WorkDirectory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Sends one more message and waits until it is delivered: whatever was due before it has had its turn.</summary>
    private static async Task Barrier(EdgeMtaProcess server, ScriptedHop hop, string name)
    {
        SentMessage m = await server.SendAsync(Sender, [$"{name}@example.test"], RelayClient.Message(name));
        await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId);
        Assert.Single(hop.DeliveriesTo($"{name}@example.test"));
    }
}
