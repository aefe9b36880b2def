using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The next hops the relay tests deliver to, checked with swaks and the raw client and without edgemta: when a
/// RelayTests case fails, these say whether the hop or edgemta is at fault. ScriptedHop's scripted faults
/// (replies per command and connection, drops mid-data and after the dot, accept-and-close), the private
/// Postfix (STARTTLS, the held message read back byte for byte) and Dovecot's LMTP (one reply per recipient
/// after the data, RFC 2033 §4.2; unknown user and quota).
/// </summary>
public sealed class NextHopSelfTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheScriptedHopRecordsTheEnvelopeAndTheUnstuffedData()
    {
        await using var hop = ScriptedHop.Start();
        Swaks s = await Swaks.RunAsync(hop.Port, output, "--from", "s@example.org", "--to", "a@example.test,b@example.test",
            "--body", "line\n.leading dot\n..two\n");
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        HopTransaction t = Assert.Single(hop.Transactions);
        Assert.Equal("s@example.org", t.Sender);
        Assert.Equal(["a@example.test", "b@example.test"], t.DeliveredTo);
        Mail.AssertSameBytes(s.SentMessage(), Assert.IsType<byte[]>(t.Data), "the data the hop recorded");
        Assert.Contains("\r\n.leading dot\r\n..two\r\n", t.Text);
        Assert.Equal(1, hop.Connections);
    }

    [Fact]
    public async Task AScriptedFourHundredOnTheFirstConnectionOnlyFailsOnlyThatOne()
    {
        await using var hop = ScriptedHop.Start(rule: e => e.Step == HopStep.Rcpt && e.Connection == 0 ? "451 4.3.0 try later" : null);
        Swaks first = await Swaks.RunAsync(hop.Port, output, "--from", "s@example.org", "--to", "a@example.test");
        Swaks second = await Swaks.RunAsync(hop.Port, output, "--from", "s@example.org", "--to", "a@example.test");
        Assert.Equal(451, first.ReplyTo("RCPT"));
        Assert.Equal(250, second.ReplyTo("RCPT"));
        Assert.Equal(2, hop.Connections);
        Assert.Single(hop.DeliveriesTo("a@example.test"));
    }

    [Fact]
    public async Task AFiveHundredForOneOfThreeRecipientsLeavesTheOtherTwoDelivered()
    {
        await using var hop = ScriptedHop.Start(rule: e => e is { Step: HopStep.Rcpt, RecipientIndex: 1 } ? "550 5.1.1 no such user" : null);
        Swaks s = await Swaks.RunAsync(hop.Port, output, "--from", "s@example.org", "--to", "a@example.test,b@example.test,c@example.test");
        HopTransaction t = Assert.Single(hop.Transactions);
        Assert.Equal([250, 550, 250], t.Recipients.Select(r => r.Code));
        Assert.Equal(["a@example.test", "c@example.test"], t.DeliveredTo);
        Assert.NotNull(s.Result);
    }

    [Fact]
    public async Task AGreetingOf421ClosesAndAnAcceptAndCloseHopCountsEveryAttempt()
    {
        await using var busy = ScriptedHop.Start(rule: e => e.Step == HopStep.Connect ? "421 4.3.2 busy" : null);
        Swaks s = await Swaks.RunAsync(busy.Port, output, "--from", "s@example.org", "--to", "a@example.test");
        Assert.StartsWith("421", s.Banner());
        Assert.Empty(busy.Transactions);

        await using var closing = ScriptedHop.Start(rule: e => e.Step == HopStep.Connect ? ScriptedHop.Drop : null);
        for (int i = 0; i < 3; i++)
        {
            await using SmtpConnection c = await SmtpConnection.ConnectAsync(closing.Port);
            Assert.True(await c.IsClosedAsync(TimeSpan.FromSeconds(5)), "the hop should close at once");
        }
        await closing.WaitUntilAsync(h => h.Connections == 3, "three connections");
        Assert.Equal(3, closing.ConnectionTimes.Length);
    }

    [Fact]
    public async Task AGreetingCanNameAnyHost()
    {
        await using var hop = ScriptedHop.Start(hostName: "edge.example.net");
        Swaks s = await Swaks.RunAsync(hop.Port, output, "--from", "s@example.org", "--to", "a@example.test");
        Assert.Contains("edge.example.net", s.Banner());
        Assert.Contains("edge.example.net", s.ReplyLineTo("EHLO"));
    }

    [Fact]
    public async Task ADropMidDataResetsBeforeTheDotAndADropAfterTheDotKeepsTheDataUnanswered()
    {
        await using var hop = ScriptedHop.Start(rule: e => e.Step switch
        {
            HopStep.MidData when e.Transaction == 0 => ScriptedHop.Drop,
            HopStep.EndOfData when e.Transaction == 1 => ScriptedHop.Drop,
            _ => null,
        });
        await using (SmtpConnection c = await SmtpConnection.ConnectAsync(hop.Port))
        {
            await c.ExpectAsync(220);
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<s@example.org>", 250);
            await c.CommandAsync("RCPT TO:<a@example.test>", 250);
            await c.CommandAsync("DATA", 354);
            string line = new string('x', 998) + "\r\n";
            try
            {
                for (int i = 0; i < 200 && !c.Closed; i++) await c.SendAsync(line);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                // The reset reached us while we were still writing: that is the point.
            }
            Assert.True(await c.IsClosedAsync(TimeSpan.FromSeconds(5)), "the hop should reset the connection mid-data");
        }
        await hop.WaitUntilAsync(h => h.Transactions is [{ AbortedInData: true }], "the first transaction cut off in its data");

        await using (SmtpConnection c = await SmtpConnection.ConnectAsync(hop.Port))
        {
            await c.ExpectAsync(220);
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<s@example.org>", 250);
            await c.CommandAsync("RCPT TO:<b@example.test>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync(Mail.DotStuff(Mail.Crlf("Subject: t", "", "body")));
            Assert.True(await c.IsClosedAsync(TimeSpan.FromSeconds(5)), "the hop should close after the dot without a reply");
        }
        await hop.WaitUntilAsync(h => h.Transactions.Length == 2 && h.Transactions[1].Data is not null, "the second message's data");
        HopTransaction second = hop.Transactions[1];
        Assert.Empty(second.DeliveredTo);
        Assert.Equal("Subject: t\r\n\r\nbody\r\n", second.Text);
    }

    [Fact]
    public async Task TheLmtpModeAnswersEachRecipientAfterTheData()
    {
        await using var hop = ScriptedHop.Start(lmtp: true,
            rule: e => e is { Step: HopStep.EndOfData, RecipientIndex: 1 } ? "452 4.2.2 <b@example.test> mailbox full" : null);
        Swaks s = await Swaks.RunAsync(hop.Port, output, "--protocol", "LMTP", "--from", "s@example.org", "--to", "a@example.test,b@example.test,c@example.test");
        List<string> replies = s.ReplyLinesTo(".");
        Assert.Equal(3, replies.Count);
        Assert.StartsWith("250", replies[0]);
        Assert.StartsWith("452", replies[1]);
        Assert.StartsWith("250", replies[2]);
        Assert.Equal(["a@example.test", "c@example.test"], Assert.Single(hop.Transactions).DeliveredTo);
    }

    [Fact]
    public async Task ThePrivatePostfixTakesMailOverStartTlsAndHoldsItByteForByte()
    {
        await using PostfixHop postfix = await PostfixHop.StartAsync(output);
        Swaks s = await Swaks.RunAsync(postfix.Port, output, "--tls", "--from", "s@example.org", "--to", "a@example.test,b@example.net",
            "--body", "first\n.dot\nlast\n");
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        HeldMessage m = Assert.Single(await postfix.WaitForHeldAsync(1));
        Assert.Equal("s@example.org", m.Sender);
        Assert.Equal(["a@example.test", "b@example.net"], m.Recipients);
        Assert.StartsWith("Received: from ", m.PostfixReceived);
        Assert.Contains("using TLS", m.PostfixReceived);
        Mail.AssertSameBytes(s.SentMessage(), Encoding.UTF8.GetBytes(m.DataCrlf), "the message Postfix holds");
        Assert.Contains("TLS connection established from", postfix.MailLog);
    }

    [Fact]
    public async Task DovecotLmtpDeliversOneRejectsAnUnknownUserAndOneOverQuota()
    {
        await using DovecotLmtpHop dovecot = await DovecotLmtpHop.StartAsync(output);
        string body = string.Concat(Enumerable.Repeat(new string('q', 70) + "\n", 40));   // ~2.8 KiB: over Bob's 1 KiB
        Swaks s = await Swaks.RunAsync(dovecot.Port, output, "--protocol", "LMTP", "--from", "s@example.org",
            "--to", $"{DovecotLmtpHop.Alice},nobody@example.test,{DovecotLmtpHop.Bob}", "--body", body);
        List<string> afterData = s.ReplyLinesTo(".");
        Assert.Equal(2, afterData.Count);   // one per accepted recipient: Alice and Bob
        Assert.StartsWith("250", afterData[0]);
        Assert.StartsWith("552 5.2.2", afterData[1]);
        Assert.Contains(s.Result.StandardOutput.Split('\n'), l => l.Contains("550 5.1.1", StringComparison.Ordinal));
        MaildirMessage m = Assert.Single(await dovecot.WaitForInboxAsync(DovecotLmtpHop.Alice, 1));
        Mail.AssertSameBytes(s.SentMessage(), Encoding.UTF8.GetBytes(m.DataCrlf), "the message in Alice's maildir");
        Assert.Empty(dovecot.Inbox(DovecotLmtpHop.Bob));
    }

    [Fact]
    public void TheDeliveryLogReaderTakesQuotedAndEscapedValuesAlike()
    {
        DeliveryLine? bare = DeliveryLogLines.Parse("2026-12-06T21:00:00.000Z 17 delivered id=A1 rcpt=a@b relay=127.0.0.1:25 reply=250%202.0.0%20Ok delay=0.5 attempts=1");
        DeliveryLine? quoted = DeliveryLogLines.Parse("delivered id=A1 rcpt=a@b relay=127.0.0.1:25 reply=\"250 2.0.0 Ok\" delay=0.5 attempts=1");
        Assert.NotNull(bare);
        Assert.NotNull(quoted);
        foreach (DeliveryLine l in (DeliveryLine[])[bare, quoted])
        {
            Assert.Equal("delivered", l.Event);
            Assert.Equal("A1", l["id"]);
            Assert.Equal("127.0.0.1:25", l["relay"]);
            Assert.Equal("250 2.0.0 Ok", l["reply"]);
            Assert.Equal("1", l["attempts"]);
            Assert.Equal("", l["next"]);
        }
        Assert.Equal("relay-dead", DeliveryLogLines.Parse("t 21 relay-dead relay=h:1 reason=refused")?.Event);
        Assert.Null(DeliveryLogLines.Parse("listening on 127.0.0.1:25"));
    }

    [Fact]
    public void AQueueListLineIsHeldByItsFlagOrByARecipientState()
    {
        Assert.True(DeliveryLogLines.IsHeld("""{"id":"A","held":true,"recipients":[{"address":"a@b","state":"deferred"}]}"""));
        Assert.True(DeliveryLogLines.IsHeld("""{"id":"A","recipients":[{"address":"a@b","state":"held"}]}"""));
        Assert.False(DeliveryLogLines.IsHeld("""{"id":"A","held":false,"recipients":[{"address":"a@b","state":"deferred"}]}"""));
    }
}
