using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// What edgemta does on each kind of reply and fault from the next hop (docs/DELIVERY.md "What a delivery
/// attempt does"), with a ScriptedHop failing on command: 4xx then 2xx, 5xx for one recipient and its bounce,
/// a connection lost after the final dot (RFC 1047: the one expected duplicate) and before it, a greeting that
/// names edgemta itself, and 452 to part of a transaction. --retry-min 1s keeps every retry within a
/// couple of seconds; every wait is on a log line or on the hop's record, bounded.
/// </summary>
public sealed class RelayFaultTests(ITestOutputHelper output)
{
    private const string Sender = "sender@example.org";

    private Task<EdgeMtaProcess> StartRelayingAsync(ScriptedHop hop, params string[] more) =>
        EdgeMtaProcess.StartAsync(output, ["--relay", hop.Url, "--retry-min", "1s", .. more]);

    [Fact]
    public async Task AFourHundredIsDeferredAndTheNextAttemptDelivers()
    {
        await using var hop = ScriptedHop.Start(rule: e => e is { Step: HopStep.Rcpt, Transaction: 0 } ? "451 4.3.0 Try again later" : null);
        await using EdgeMtaProcess server = await StartRelayingAsync(hop);
        SentMessage m = await server.SendAsync(Sender, ["a@example.test"], RelayClient.Message("deferred once"));

        DeliveryLine deferred = (await server.WaitForEventsAsync("deferred", where: l => l["id"] == m.QueueId))[0];
        Assert.Equal("a@example.test", deferred["rcpt"]);
        Assert.StartsWith("451", deferred["reply"]);
        Assert.Equal($"127.0.0.1:{hop.Port}", deferred["relay"]);
        DeliveryLine delivered = Assert.Single(await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId));
        // attempts= counts the transactions that carried the recipient: here the 451 and the 250.
        int tried = hop.Transactions.Count(t => t.Recipients.Any(r => r.Address == "a@example.test"));
        Assert.Equal(2, tried);
        Assert.True(delivered["attempts"] == "2", $"attempts= should be 2 (the hop saw {tried} transactions): {delivered.Raw}");
        HopTransaction t = Assert.Single(hop.DeliveriesTo("a@example.test"));
        Assert.EndsWith("end of deferred once\r\n", t.Text);
    }

    [Fact]
    public async Task QueueFlushMakesADeferredMessageDueNow()
    {
        await using var hop = ScriptedHop.Start(rule: e => e is { Step: HopStep.Rcpt, Transaction: 0 } ? "451 4.3.0 Try again later" : null);
        // A minute's wait: only the flush can make it due within the bound.
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--relay", hop.Url, "--retry-min", "60s"]);
        SentMessage m = await server.SendAsync(Sender, ["a@example.test"], RelayClient.Message("flushed"));
        DeliveryLine deferred = (await server.WaitForEventsAsync("deferred", where: l => l["id"] == m.QueueId))[0];
        Assert.True(double.Parse(deferred["next"], System.Globalization.CultureInfo.InvariantCulture) >= 50, deferred.Raw);

        ToolResult flush = await server.RunQueueAsync(output, "flush", m.QueueId);
        Assert.True(flush.ExitCode == 0, flush.ToString());
        await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId, bound: TimeSpan.FromSeconds(10));
        Assert.Single(hop.DeliveriesTo("a@example.test"));
    }

    [Fact]
    public async Task AFiveHundredForOneOfThreeFailsItAndItsBounceReachesTheSenderThroughTheHop()
    {
        await using var hop = ScriptedHop.Start(rule: e => e is { Step: HopStep.Rcpt, Recipient: "b@example.test" } ? "550 5.1.1 <b@example.test> User unknown" : null);
        await using EdgeMtaProcess server = await StartRelayingAsync(hop);
        SentMessage m = await server.SendAsync(Sender, ["a@example.test", "b@example.test", "c@example.test"], RelayClient.Message("one of three"));

        DeliveryLine failed = Assert.Single(await server.WaitForEventsAsync("failed", where: l => l["id"] == m.QueueId));
        Assert.Equal("b@example.test", failed["rcpt"]);
        Assert.StartsWith("550", failed["reply"]);
        DeliveryLine[] delivered = await server.WaitForEventsAsync("delivered", 2, where: l => l["id"] == m.QueueId);
        Assert.Equal(["a@example.test", "c@example.test"], delivered.Select(l => l["rcpt"]).Order());
        DeliveryLine bounce = Assert.Single(await server.WaitForEventsAsync("bounce", where: l => l["for"] == m.QueueId));
        Assert.Equal(Sender, bounce["to"]);
        Assert.NotEqual(m.QueueId, bounce["id"]);

        // The bounce is an ordinary message relayed through the same hop: MAIL FROM:<>, RCPT TO:<sender>.
        await hop.WaitUntilAsync(h => h.DeliveriesTo(Sender).Length == 1, "the bounce delivered to the sender", context: () => server.Log);
        HopTransaction b = hop.DeliveriesTo(Sender)[0];
        Assert.Equal("", b.Sender);
        Assert.Contains("Content-Type: multipart/report", b.Text);
        Assert.Contains("report-type=delivery-status", b.Text);
        Assert.Contains("Final-Recipient: rfc822; b@example.test", b.Text);
        Assert.Contains("Status: 5.1.1", b.Text);
        Assert.DoesNotContain("Final-Recipient: rfc822; a@example.test", b.Text);
        await server.WaitForEventsAsync("delivered", where: l => l["id"] == bounce["id"]);
    }

    [Fact]
    public async Task AConnectionLostAfterTheFinalDotIsAPossibleDuplicateAndTheMessageIsSentAgain()
    {
        await using var hop = ScriptedHop.Start(rule: e => e is { Step: HopStep.EndOfData, Transaction: 0 } ? ScriptedHop.Drop : null);
        await using EdgeMtaProcess server = await StartRelayingAsync(hop);
        SentMessage m = await server.SendAsync(Sender, ["a@example.test"], RelayClient.Message("lost reply"));

        DeliveryLine dup = Assert.Single(await server.WaitForEventsAsync("possible-duplicate", where: l => l["id"] == m.QueueId));
        Assert.Equal($"127.0.0.1:{hop.Port}", dup["relay"]);
        await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId);
        // Both copies reached the hop whole; only the second was answered.
        HopTransaction[] copies = hop.Transactions.Where(t => t.Text.Contains("end of lost reply", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, copies.Length);
        Assert.Equal(copies[0].Text, copies[1].Text);
        Assert.Single(hop.DeliveriesTo("a@example.test"));
    }

    [Fact]
    public async Task AConnectionLostInTheMiddleOfTheDataIsDeferredNotAPossibleDuplicate()
    {
        // A small receive window, a message far larger than every socket buffer between the two: when the hop
        // resets after 64 KiB, edgemta cannot have written its final dot yet.
        await using var hop = ScriptedHop.Start(receiveBuffer: 4096, rule: e => e is { Step: HopStep.MidData, Transaction: 0 } ? ScriptedHop.Drop : null);
        await using EdgeMtaProcess server = await StartRelayingAsync(hop);
        byte[] big = RelayClient.Message("big", [.. Enumerable.Repeat(new string('x', 998), 10_000)]);   // ~10 MB
        SentMessage m = await server.SendAsync(Sender, ["a@example.test"], big);

        await server.WaitForEventsAsync("deferred", where: l => l["id"] == m.QueueId);
        await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId, bound: TimeSpan.FromSeconds(60));
        Assert.Empty(server.Events("possible-duplicate"));
        Assert.True(hop.Transactions[0].AbortedInData, hop.Transactions[0].ToString());
        HopTransaction t = Assert.Single(hop.DeliveriesTo("a@example.test"));
        Assert.True(t.Data!.AsSpan().EndsWith(big), "the second attempt carries the whole message after edgemta's Received:");
    }

    [Fact]
    public async Task AHopWhoseGreetingNamesEdgemtaItselfFailsTheRecipientsWith546()
    {
        await using var hop = ScriptedHop.Start(hostName: "edge.example.net");
        await using EdgeMtaProcess server = await StartRelayingAsync(hop, "--hostname", "edge.example.net");
        SentMessage m = await server.SendAsync(Sender, ["a@example.test", "b@example.test"], RelayClient.Message("loop"));

        DeliveryLine[] failed = await server.WaitForEventsAsync("failed", 2, where: l => l["id"] == m.QueueId);
        Assert.All(failed, l => Assert.Contains("5.4.6", l["reply"]));
        Assert.Equal(["a@example.test", "b@example.test"], failed.Select(l => l["rcpt"]).Order());
        Assert.DoesNotContain(server.Events("delivered"), l => l["id"] == m.QueueId);
        // Mail that loops is never handed over: no transaction at all, the bounce's included.
        Assert.Empty(hop.Transactions);
    }

    [Fact]
    public async Task A452AfterTwoRecipientsSendsFiveInThreeTransactions()
    {
        await using var hop = ScriptedHop.Start(rule: e => e is { Step: HopStep.Rcpt, RecipientIndex: >= 2 } ? "452 4.5.3 Too many recipients" : null);
        await using EdgeMtaProcess server = await StartRelayingAsync(hop);
        string[] to = [.. Enumerable.Range(1, 5).Select(i => $"r{i}@example.test")];
        SentMessage m = await server.SendAsync(Sender, to, RelayClient.Message("five"));

        DeliveryLine[] delivered = await server.WaitForEventsAsync("delivered", 5, where: l => l["id"] == m.QueueId);
        Assert.Equal(to, delivered.Select(l => l["rcpt"]).Order());
        HopTransaction[] carrying = hop.Transactions.Where(t => t.DeliveredTo.Count > 0).ToArray();
        Assert.Equal(3, carrying.Length);
        Assert.All(carrying, t => Assert.True(t.DeliveredTo.Count <= 2, t.ToString()));
        Assert.All(to, r => Assert.Single(hop.DeliveriesTo(r)));
        Assert.Empty(server.Events("failed"));
        // "452 to some recipients of a transaction: the rest go in a new transaction at once": every round, not
        // only the first, so none of the five waits for a retry.
        Assert.DoesNotContain(server.Events("deferred"), l => l["id"] == m.QueueId);
    }

    [Fact]
    public async Task AnLmtpFourHundredForOneRecipientAfterTheDataDefersOnlyThatRecipient()
    {
        // RFC 2033 §4.2: one reply per recipient after the data; only the deferred one may be sent again.
        await using var hop = ScriptedHop.Start(lmtp: true,
            rule: e => e is { Step: HopStep.EndOfData, Transaction: 0, Recipient: "b@example.test" } ? "451 4.3.0 <b@example.test> Try again later" : null);
        await using EdgeMtaProcess server = await StartRelayingAsync(hop);
        string[] to = ["a@example.test", "b@example.test", "c@example.test"];
        SentMessage m = await server.SendAsync(Sender, to, RelayClient.Message("lmtp partial"));

        DeliveryLine deferred = (await server.WaitForEventsAsync("deferred", where: l => l["id"] == m.QueueId))[0];
        Assert.Equal("b@example.test", deferred["rcpt"]);
        Assert.StartsWith("451", deferred["reply"]);
        DeliveryLine[] delivered = await server.WaitForEventsAsync("delivered", 3, where: l => l["id"] == m.QueueId);
        Assert.Equal(to, delivered.Select(l => l["rcpt"]).Order());
        Assert.All(to, r => Assert.Single(hop.DeliveriesTo(r)));
        HopTransaction retry = Assert.Single(hop.Transactions, t => t.Index > 0);
        Assert.Equal(["b@example.test"], retry.Recipients.Select(r => r.Address));
    }
}
