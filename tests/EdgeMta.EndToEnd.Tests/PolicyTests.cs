using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The server's gates over the wire: pipelining discipline (RFC 2920 §3.1), early talkers, --refuse-mail
/// (RFC 7504), the error limit, connection limits, mail loops (RFC 5321 §6.3), bare-newline
/// normalisation, and the recipient directory's list/moved/forward entries with VRFY and EXPN.
/// </summary>
public sealed class PolicyTests(ITestOutputHelper output)
{
    // Audit finding: --verbose logged BDAT chunks (message text) in its command lines; DATA text never was.
    [Fact]
    public async Task VerboseLogsCommandsButNoMessageTextOfDataOrBdat()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--verbose"]);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<logged@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync("Subject: one\r\n\r\nsecret-in-data\r\n.\r\n");
            await c.ExpectAsync(250);
            await c.CommandAsync("MAIL FROM:<logged@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.SendAsync("BDAT 32 LAST\r\nSubject: two\r\n\r\nsecret-in-bdat\r\n");
            await c.ExpectAsync(250);
            await c.CommandAsync("QUIT", 221);
        }
        Assert.Equal(2, (await server.StopAndExportAsync()).Count);
        Assert.Contains("in=MAIL%20FROM:<logged@example.com>", server.Log);
        Assert.Contains("in=DATA\n", server.Log); // logged as parsed, an accepted DATA too
        Assert.Contains("in=BDAT%2032%20LAST\n", server.Log); // the command line alone: its count says the rest
        Assert.DoesNotContain("secret-in-data", server.Log);
        Assert.DoesNotContain("secret-in-bdat", server.Log);
    }

    // Found with real senders: --verbose never logged an accepted DATA and dropped a whole pipelined read that
    // ended in one (Postfix's MAIL+RCPT+DATA left only EHLO and QUIT), and every read inside a BDAT chunk after
    // its first was logged as a command (`in=QUIT%0D%0AMAIL...` from a body holding those lines).
    [Fact]
    public async Task VerboseLogsEachPipelinedCommandAndNoTextOfAChunkSpreadOverReads()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--verbose"]);
        string evil = "QUIT\r\nMAIL FROM:<evil@x.test>\r\n";
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.SendAsync("MAIL FROM:<piped@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
            await c.ExpectAsync(250);
            await c.ExpectAsync(250);
            await c.ExpectAsync(354);
            await c.SendAsync("Subject: one\r\n\r\nbody\r\n.\r\n");
            await c.ExpectAsync(250);
            await c.CommandAsync("MAIL FROM:<piped@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.SendAsync($"BDAT {evil.Length * 3} LAST\r\n{evil}");
            for (int i = 0; i < 2; i++)
            {
                await Task.Delay(100); // separate reads on the server's side, most likely: the old bug needed them
                await c.SendAsync(evil);
            }
            await c.ExpectAsync(250);
            await c.CommandAsync("QUIT", 221);
        }
        Assert.Equal(2, (await server.StopAndExportAsync()).Count);
        string[] commands = [.. server.Log.Split('\n').Where(l => l.Contains(" 30 command ", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(" in=", StringComparison.Ordinal) + 4)..])];
        Assert.Equal(["EHLO%20client.example", "MAIL%20FROM:<piped@example.com>", "RCPT%20TO:<b@example.org>", "DATA",
            "MAIL%20FROM:<piped@example.com>", "RCPT%20TO:<b@example.org>", $"BDAT%20{evil.Length * 3}%20LAST", "QUIT"], commands);
        Assert.DoesNotContain("evil", server.Log);
    }

    [Fact]
    public async Task InputPipelinedAfterEhloIsAProtocolSynchronizationErrorAndCloses()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.SendAsync("EHLO client.example\r\nMAIL FROM:<eager@example.com>\r\n");
        List<SmtpReply> replies = await c.ReadUntilClosedAsync();
        Assert.True(replies.Count > 0 && replies[^1].Code == 554 && replies[^1].Enhanced == "5.5.0",
            $"EHLO must end a pipelining group: `554 5.5.0` then close\n{c.Transcript}");
        Assert.True(replies.Count == 1 || (replies.Count == 2 && replies[0].Lines[0].Contains("greets", StringComparison.Ordinal)),
            $"Nothing pipelined after EHLO may be acted on (at most EHLO's own 250 before the 554)\n{c.Transcript}");
    }

    [Fact]
    public async Task AnEarlyTalkerBeforeTheDelayedGreetingGets554AndIsClosed()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--greet-delay", "2"]);
        await using SmtpConnection c = await server.ConnectAsync();
        // postscreen's teaser: the first greeting line comes at once; a bot answering it is an early talker.
        string? teaser = await c.ReadRawLineAsync(TimeSpan.FromSeconds(15));
        Assert.True(teaser is not null && teaser.StartsWith("220-", StringComparison.Ordinal), $"The teaser line `220-...` first, got `{teaser}`\n{c.Transcript}");
        await c.SendAsync("EHLO too-early.example\r\n");
        List<SmtpReply> replies = await c.ReadUntilClosedAsync(TimeSpan.FromSeconds(15));
        Assert.True(replies.Count > 0 && replies[^1].Code == 554 && replies[^1].Enhanced == "5.5.0",
            $"Bytes before the final greeting line (--greet-delay 2) get `554 5.5.0`, then a close\n{c.Transcript}");
        Assert.DoesNotContain(replies, r => r.Code == 250);
        string[] logged = await server.WaitForLinesAsync(" pregreet ");
        Assert.Contains("client=127.0.0.1", logged[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task AClientThatWaitsForTheFinalGreetingLineIsServed()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--greet-delay", "1"]);
        await using SmtpConnection c = await server.ConnectAsync();
        SmtpReply greeting = await c.ExpectAsync(220, timeout: TimeSpan.FromSeconds(15));
        Assert.True(greeting.Lines.Count == 2 && greeting.Lines[0] == greeting.Lines[1],
            $"The greeting is the teaser line and the final line, with the same text\n{c.Transcript}");
        await c.CommandAsync("EHLO patient.example", 250);
        await c.CommandAsync("QUIT", 221);
        Assert.Empty(server.LinesWith(" pregreet "));
    }

    [Fact]
    public async Task RefuseMailAnswers521AtConnectAndCloses()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--refuse-mail"]);
        await using SmtpConnection c = await server.ConnectAsync();
        await c.ExpectAsync(521, null, "the connection (--refuse-mail, RFC 7504)");
        Assert.True(await c.IsClosedAsync(SmtpConnection.ReadTimeout), $"After 521 the server closes\n{c.Transcript}");
    }

    [Fact]
    public async Task TwentyErrorsInOneSessionEndItWith421()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        int errors = 0;
        SmtpReply? last = null;
        for (int i = 0; i < 30; i++)
        {
            await c.SendAsync($"BOGUS{i}\r\n");
            last = await c.TryReadReplyAsync();
            if (last is null || last.Code == 421) break;
            Assert.True(last.Code == 500 && last.Enhanced == "5.5.2", $"An unknown command gets 500 5.5.2\n{c.Transcript}");
            errors++;
        }
        Assert.True(last is { Code: 421 } && last.Enhanced == "4.7.0", $"Too many errors end the session with 421 4.7.0\n{c.Transcript}");
        Assert.InRange(errors, 19, 21);
        Assert.True(await c.IsClosedAsync(SmtpConnection.ReadTimeout), $"After 421 the server closes\n{c.Transcript}");
    }

    [Fact]
    public async Task AConnectionOverMaxConnectionsGets421AndASlotFreesWhenASessionEnds()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--max-connections", "2"]);
        SmtpConnection first = await server.OpenSessionAsync();
        await using SmtpConnection second = await server.OpenSessionAsync();
        await using (SmtpConnection third = await server.ConnectAsync())
        {
            await third.ExpectAsync(421, "4.7.0", "a connection over --max-connections 2");
            Assert.True(await third.IsClosedAsync(SmtpConnection.ReadTimeout), $"After 421 the server closes\n{third.Transcript}");
        }
        await first.CommandAsync("QUIT", 221);
        await first.DisposeAsync();

        // The slot is released asynchronously: allow a few tries (bounded).
        SmtpReply? greeting = null;
        for (int attempt = 0; attempt < 50 && greeting?.Code != 220; attempt++)
        {
            await using SmtpConnection next = await server.ConnectAsync();
            greeting = await next.TryReadReplyAsync();
            if (greeting?.Code == 220) await next.CommandAsync("QUIT", 221);
            else await Task.Delay(100);
        }
        Assert.True(greeting?.Code == 220, $"After a session ends a new connection is greeted; last answer: {greeting}");
    }

    [Fact]
    public async Task AMessageWithMoreThan100ReceivedHeadersIsRefusedAsAMailLoop()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<loop@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            string[] hops = Enumerable.Range(0, 101).Select(i => $"Received: from hop{i}.example by hop{i + 1}.example; Thu, 1 Jan 2026 00:00:00 +0000").ToArray();
            await c.SendAsync(Mail.DotStuff(Mail.Crlf([.. hops, "Subject: around and around", "", "body"])));
            await c.ExpectAsync(554, "5.4.6", "a message with 101 Received: headers (RFC 5321 §6.3)");
            await c.CommandAsync("QUIT", 221);
        }
        Assert.Equal(0, (await server.StopAndExportAsync()).Count);
    }

    [Fact]
    public async Task BareNewlineNormalizeStoresCrlfAndStillNeverEndsDataOnASmuggledDot()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--bare-newline", "normalize"]);
        string plainId, smuggledId;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<lf@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync("Subject: bare\nX-Cr: a\rb\r\n\r\nline one\nline two\r\n.\r\n");
            plainId = (await c.ExpectAsync(250, "2.0.0", "a message with bare LF and CR under --bare-newline normalize")).QueueId!;

            await c.CommandAsync("MAIL FROM:<honest@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync("Subject: first\r\n\r\nbefore\n.\nMAIL FROM:<ceo@example.org>\r\nsmuggled\r\n.\r\n");
            smuggledId = (await c.ExpectAsync(250, "2.0.0", "the only end of data, <CRLF>.<CRLF>")).QueueId!;
            await c.SendAsync("QUIT\r\n");
            List<SmtpReply> rest = await c.ReadUntilClosedAsync();
            Assert.True(rest.Count == 1 && rest[0].Code == 221, $"Only QUIT's 221 may follow: anything else answers a smuggled command\n{c.Transcript}");
        }
        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(2, export.Count);
        Mail.AssertSameBytes("Subject: bare\r\nX-Cr: a\r\nb\r\n\r\nline one\r\nline two\r\n"u8, export[plainId].ClientMessage, "the normalized message");
        string smuggled = System.Text.Encoding.ASCII.GetString(export[smuggledId].ClientMessage);
        Assert.Contains("MAIL FROM:<ceo@example.org>\r\nsmuggled\r\n", smuggled);
    }

    private const string Directory = """
        Jones@foo.com
        Admin.MRC@foo.com   Mark Crispin
        mark@foo.com        Mark Twain
        staff@foo.com       list: Jones@foo.com, Admin.MRC@foo.com
        old@foo.com         moved: new@elsewhere.org
        fwd@foo.com         forward: x@elsewhere.org
        """;

    [Fact]
    public async Task TheRecipientDirectoryAnswersMovedForwardListVrfyAndExpnAsTheContractSays()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--vrfy", "enabled", "--expn", "enabled"], Directory);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<a@example.com>", 250);
        SmtpReply moved = await c.CommandAsync("RCPT TO:<old@foo.com>", 551, "5.1.6");
        Assert.Contains("new@elsewhere.org", moved.Text);
        SmtpReply forward = await c.CommandAsync("RCPT TO:<fwd@foo.com>", 251, "2.1.5");
        Assert.Contains("x@elsewhere.org", forward.Text);
        await c.CommandAsync("RCPT TO:<staff@FOO.com>", 250);
        await c.CommandAsync("RCPT TO:<nobody@foo.com>", 550);
        await c.CommandAsync("RCPT TO:<jones@elsewhere.org>", 550, "5.7.1");

        SmtpReply expn = await c.CommandAsync("EXPN staff@foo.com", 250);
        Assert.True(expn.Lines.Count == 2, $"EXPN lists the two members, one a line\n{c.Transcript}");
        Assert.Contains(expn.Lines, l => l.Contains("Jones@foo.com", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(expn.Lines, l => l.Contains("Admin.MRC@foo.com", StringComparison.OrdinalIgnoreCase));
        await c.CommandAsync("VRFY Mark", 553);
        Assert.EndsWith("Mark Crispin <Admin.MRC@foo.com>", (await c.CommandAsync("VRFY Admin.MRC", 250)).Text);
        await c.CommandAsync("VRFY nobody", 550);
        await c.CommandAsync("QUIT", 221);
    }

    [Fact]
    public async Task HelpTurnAndExpnAnswerAsTheContractSaysByDefault()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        SmtpReply help = await c.CommandAsync("HELP", 214);
        Assert.True(help.Lines.Count > 1, $"HELP is a multi-line 214\n{c.Transcript}");
        await c.CommandAsync("HELP NO-SUCH-TOPIC", 504);
        await c.CommandAsync("TURN", 502);
        await c.CommandAsync("EXPN staff", 502);
        await c.CommandAsync("QUIT", 221);
    }
}
