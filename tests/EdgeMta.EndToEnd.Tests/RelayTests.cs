using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Store and forward against real next hops (docs/DELIVERY.md): a private Postfix as the smarthost over SMTP
/// with STARTTLS required, and Dovecot's LMTP as the final hop with one reply per recipient (RFC 2033 §4.2).
/// What the hop keeps must be byte for byte what edgemta spooled: its own Received: field, then exactly what
/// the client sent. NextHopSelfTests proves the hops themselves.
/// </summary>
public sealed class RelayTests(ITestOutputHelper output)
{
    [Fact]
    public async Task PostfixOverRequiredStartTlsHoldsEachMessageByteForByteAndTheQueueEmpties()
    {
        await using PostfixHop postfix = await PostfixHop.StartAsync(output);
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            ["--relay", postfix.Url, "--relay-tls", "require", "--retry-min", "1s"]);
        var sent = new List<(string Id, byte[] Message, string[] To)>();
        for (int i = 0; i < 3; i++)
        {
            string[] to = i == 1 ? [$"r{i}a@example.test", $"r{i}b@example.net"] : [$"r{i}@example.test"];
            Swaks s = await Swaks.RunAsync(server.Port, output, "--from", $"s{i}@example.org", "--to", string.Join(',', to),
                "--header", $"Subject: relay {i}", "--body", $"message {i}\n.starts with a dot\n");
            Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
            sent.Add((s.QueueId(), s.SentMessage(), to));
        }

        DeliveryLine[] delivered = await server.WaitForEventsAsync("delivered", 4, bound: TimeSpan.FromSeconds(30), context: () => postfix.MailLog);
        foreach ((string id, _, string[] to) in sent)
        {
            foreach (string r in to)
            {
                DeliveryLine line = Assert.Single(delivered, l => l["id"] == id && l["rcpt"] == r);
                Assert.Equal($"127.0.0.1:{postfix.Port}", line["relay"]);
                Assert.StartsWith("250", line["reply"]);
            }
        }

        List<HeldMessage> held = await postfix.WaitForHeldAsync(3);
        Assert.Equal(3, held.Count);
        foreach ((string id, byte[] message, string[] to) in sent)
        {
            HeldMessage m = Assert.Single(held, h => h.Data.Contains($"id {id}", StringComparison.Ordinal));
            Assert.Equal(to, m.Recipients);
            // The data: edgemta's Received: field (naming this message's queue id), then the client's bytes.
            var relayed = new ExportedMessage(id, Encoding.UTF8.GetBytes(m.DataCrlf), m.Sender, m.Recipients, "");
            Assert.StartsWith("Received: from ", relayed.ReceivedHeader);
            Assert.Contains($"id {id}", relayed.ReceivedHeader);
            Mail.AssertSameBytes(message, relayed.ClientMessage, $"what Postfix holds of {id} after edgemta's Received:");
            Assert.Contains("using TLS", m.PostfixReceived);   // smtpd_tls_received_header: this hop was reached over TLS
        }
        Assert.Contains("TLS connection established from", postfix.MailLog);

        Assert.Empty(await server.QueueJsonAsync(output));
    }

    [Fact]
    public async Task LmtpToDovecotDeliversOneFailsAnUnknownUserAndOneOverQuotaAndBouncesBoth()
    {
        await using DovecotLmtpHop dovecot = await DovecotLmtpHop.StartAsync(output);
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--relay", dovecot.Url, "--retry-min", "1s"]);
        string unknown = "nobody@example.test";
        // Alice sends, so the bounce (relayed through the same hop, docs/DELIVERY.md "Bounces") lands in her INBOX.
        byte[] message = Mail.Crlf(["Subject: three recipients", "", .. Enumerable.Repeat(new string('q', 70), 40)]);   // ~2.9 KiB > Bob's 1 KiB
        SentMessage m;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            m = await c.SendMessageAsync(DovecotLmtpHop.Alice, [DovecotLmtpHop.Alice, unknown, DovecotLmtpHop.Bob], message);
        }

        DeliveryLine delivered = Assert.Single(await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId));
        Assert.Equal(DovecotLmtpHop.Alice, delivered["rcpt"]);
        DeliveryLine[] failed = await server.WaitForEventsAsync("failed", 2, where: l => l["id"] == m.QueueId);
        Assert.StartsWith("550", Assert.Single(failed, l => l["rcpt"] == unknown)["reply"]);
        Assert.StartsWith("552", Assert.Single(failed, l => l["rcpt"] == DovecotLmtpHop.Bob)["reply"]);
        DeliveryLine[] bounces = await server.WaitForEventsAsync("bounce", where: l => l["for"] == m.QueueId);
        Assert.All(bounces, b => Assert.Equal(DovecotLmtpHop.Alice, b["to"]));

        // Alice holds the original (exactly the spooled bytes) and the bounce, which names both failures.
        List<MaildirMessage> inbox = await dovecot.WaitForInboxAsync(DovecotLmtpHop.Alice, 1 + bounces.Length, () => server.Log);
        MaildirMessage original = Assert.Single(inbox, x => x.Data.Contains("Subject: three recipients", StringComparison.Ordinal) &&
                                                             !x.Data.Contains("multipart/report", StringComparison.Ordinal));
        var relayed = new ExportedMessage(m.QueueId, Encoding.UTF8.GetBytes(original.DataCrlf), null, [], "");
        Assert.Contains($"id {m.QueueId}", relayed.ReceivedHeader);
        Mail.AssertSameBytes(message, relayed.ClientMessage, "the message in Alice's maildir after edgemta's Received:");
        string report = string.Concat(inbox.Where(x => x.Data.Contains("report-type=delivery-status", StringComparison.Ordinal)).Select(x => x.Stored));
        Assert.Contains("Return-Path: <>", report);
        Assert.Contains($"Final-Recipient: rfc822; {unknown}", report);
        Assert.Contains($"Final-Recipient: rfc822; {DovecotLmtpHop.Bob}", report);
        Assert.Contains("Action: failed", report);
        Assert.Empty(dovecot.Inbox(DovecotLmtpHop.Bob));
    }

    [Fact]
    public async Task LmtpOverDovecotsUnixSocketDelivers()
    {
        await using DovecotLmtpHop dovecot = await DovecotLmtpHop.StartAsync(output);
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--relay", dovecot.UnixUrl, "--retry-min", "1s"]);
        byte[] message = RelayClient.Message("over a unix socket");
        SentMessage m = await server.SendAsync("sender@example.org", [DovecotLmtpHop.Alice], message);

        DeliveryLine delivered = Assert.Single(await server.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId));
        Assert.Equal(DovecotLmtpHop.Alice, delivered["rcpt"]);
        MaildirMessage stored = Assert.Single(await dovecot.WaitForInboxAsync(DovecotLmtpHop.Alice, 1, () => server.Log));
        var relayed = new ExportedMessage(m.QueueId, Encoding.UTF8.GetBytes(stored.DataCrlf), null, [], "");
        Mail.AssertSameBytes(message, relayed.ClientMessage, "the message in Alice's maildir after edgemta's Received:");
    }
}
