using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The four example sessions of docs/seeds/003 (RFC 5321 Appendix D), replayed by swaks where swaks can say
/// them; the raw versions (RSET mid-transaction and SEND, which swaks cannot say, included) are golden
/// transcripts under Transcripts/seed003-*.smtp. The server plays foo.com with a recipient directory in
/// which Jones and Brown have mailboxes and Green does not.
/// </summary>
public sealed class SeedSessionTests(ITestOutputHelper output)
{
    private const string Directory = """
        # docs/seeds/003: Jones and Brown have mailboxes at foo.com, Green does not
        Jones@foo.com
        Brown@foo.com
        Admin.MRC@foo.com   Mark Crispin
        # the relay scenario's final destination, made local
        Jones@XYZ.COM
        """;

    private Task<EdgeMtaProcess> StartFooComAsync(params string[] flags) =>
        EdgeMtaProcess.StartAsync(output, ["--hostname", "foo.com", .. flags], Directory);

    private string WriteData(EdgeMtaProcess server, params string[] lines)
    {
        string file = Path.Combine(server.WorkDirectory, "data-" + Guid.NewGuid().ToString("N")[..6] + ".txt");
        File.WriteAllText(file, string.Concat(lines.Select(l => l + "\r\n")));
        return file;
    }

    [Fact]
    public async Task SwaksTypicalTransactionDeliversToJonesAndBrownAndRefusesGreen()
    {
        await using EdgeMtaProcess server = await StartFooComAsync();
        string data = WriteData(server, "Blah blah blah...", "...etc. etc. etc.");

        Swaks s = await Swaks.RunAsync(server.Port, output, "--ehlo", "bar.com", "--from", "Smith@bar.com",
            "--to", "Jones@foo.com,Green@foo.com,Brown@foo.com", "--data", "@" + data);

        Assert.True(s.Result.ExitCode == 0, $"swaks should succeed with two of three recipients accepted\n{s.Result}");
        Assert.StartsWith("220 foo.com ", s.Banner());
        Assert.StartsWith("foo.com greets bar.com", s.ReplyLineTo("EHLO bar.com")[4..]);
        List<string> ehlo = s.ReplyLinesTo("EHLO bar.com");
        foreach (string ext in (string[])["PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "HELP"])
        {
            Assert.True(ehlo.Any(l => l.Length > 4 && l[4..].Split(' ')[0] == ext), $"EHLO should advertise {ext}\n{s.Result}");
        }
        Assert.Equal(250, s.ReplyTo("MAIL FROM:<Smith@bar.com>"));
        Assert.Equal(250, s.ReplyTo("RCPT TO:<Jones@foo.com>"));
        Assert.Equal(550, s.ReplyTo("RCPT TO:<Green@foo.com>"));
        Assert.Equal(250, s.ReplyTo("RCPT TO:<Brown@foo.com>"));
        Assert.Equal(354, s.ReplyTo("DATA"));
        Assert.Equal(250, s.ReplyTo("."));
        Assert.Equal(221, s.ReplyTo("QUIT"));

        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(1, export.Count);
        Mail.AssertExportedExactly(export, [new SentMessage(s.QueueId(), s.SentMessage(), "Smith@bar.com", ["Jones@foo.com", "Brown@foo.com"])]);
    }

    [Fact]
    public async Task SwaksAbortAfterRcptLeavesTheSpoolEmpty()
    {
        await using EdgeMtaProcess server = await StartFooComAsync();
        Swaks s = await Swaks.RunAsync(server.Port, output, "--ehlo", "bar.com", "--from", "Smith@bar.com",
            "--to", "Jones@foo.com,Green@foo.com", "--quit-after", "RCPT");
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        Assert.Equal(550, s.ReplyTo("RCPT TO:<Green@foo.com>"));
        Assert.Equal(221, s.ReplyTo("QUIT"));
        Assert.Equal(0, (await server.StopAndExportAsync()).Count);
    }

    [Fact]
    public async Task SwaksRelayedMailWithSourceRoutesIsAcceptedAndTheRouteIsIgnored()
    {
        await using EdgeMtaProcess server = await StartFooComAsync();
        string[] letter =
        [
            "Date: Thu, 21 May 1998 05:33:29 -0700",
            "From: John Q. Public <JQP@bar.com>",
            "Subject:  The Next Meeting of the Board",
            "To: Jones@xyz.com",
            "",
            "Bill:",
            "The next meeting of the board of directors will be",
            "on Tuesday.",
            "                        John.",
        ];

        // Step 1: source host to relay host, a source route in RCPT.
        Swaks step1 = await Swaks.RunAsync(server.Port, output, "--ehlo", "bar.com", "--from", "JQP@bar.com",
            "--to", "@foo.com:Jones@XYZ.COM", "--data", "@" + WriteData(server, letter));
        Assert.True(step1.Result.ExitCode == 0, step1.Result.ToString());
        Assert.Equal(250, step1.ReplyTo("RCPT TO:<@foo.com:Jones@XYZ.COM>"));
        Assert.Equal(250, step1.ReplyTo("."));

        // Step 2: relay host to destination, a source route in MAIL and the relay's Received: line (folded).
        Swaks step2 = await Swaks.RunAsync(server.Port, output, "--ehlo", "foo.com", "--from", "@foo.com:JQP@bar.com",
            "--to", "Jones@XYZ.COM", "--data", "@" + WriteData(server, ["Received: from bar.com by foo.com ; Thu, 21 May 1998", "    05:33:29 -0700", .. letter]));
        Assert.True(step2.Result.ExitCode == 0, step2.Result.ToString());
        Assert.Equal(250, step2.ReplyTo("MAIL FROM:<@foo.com:JQP@bar.com>"));
        Assert.Equal(250, step2.ReplyTo("RCPT TO:<Jones@XYZ.COM>"));
        Assert.Equal(250, step2.ReplyTo("."));

        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(2, export.Count);
        Mail.AssertExportedExactly(export,
        [
            new SentMessage(step1.QueueId(), step1.SentMessage(), "JQP@bar.com", ["Jones@XYZ.COM"]),
            new SentMessage(step2.QueueId(), step2.SentMessage(), "JQP@bar.com", ["Jones@XYZ.COM"]),
        ]);
    }

    [Fact]
    public async Task VerifyingAndSendingWithVrfyEnabledAndLegacySendQueuesForCrispin()
    {
        await using EdgeMtaProcess server = await StartFooComAsync("--vrfy", "enabled", "--legacy-send");
        byte[] message = Mail.Crlf("Blah blah blah...", "...etc. etc. etc.");
        string id;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            SmtpReply ehlo = await c.CommandAsync("EHLO bar.com", 250);
            Assert.Contains(ehlo.Lines, l => l == "VRFY");
            SmtpReply vrfy = await c.CommandAsync("VRFY Crispin", 250);
            Assert.EndsWith("Mark Crispin <Admin.MRC@foo.com>", vrfy.Text);
            await c.CommandAsync("SEND FROM:<EAK@bar.com>", 250);
            await c.CommandAsync("RCPT TO:<Admin.MRC@foo.com>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync(Mail.DotStuff(message));
            id = (await c.ExpectAsync(250, "2.0.0", "the end of data")).QueueId!;
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(1, export.Count);
        Mail.AssertExportedExactly(export, [new SentMessage(id, message, "EAK@bar.com", ["Admin.MRC@foo.com"])]);
    }

    [Fact]
    public async Task WithoutTheFlagsVrfyIsAmbiguousAndSendIsNotImplemented()
    {
        await using EdgeMtaProcess server = await StartFooComAsync();
        await using SmtpConnection c = await server.OpenSessionAsync();
        SmtpReply ehlo = await c.CommandAsync("EHLO bar.com", 250);
        Assert.DoesNotContain(ehlo.Lines, l => l == "VRFY");
        await c.CommandAsync("VRFY Crispin", 252, "2.5.2");
        await c.CommandAsync("SEND FROM:<EAK@bar.com>", 502);
        await c.CommandAsync("QUIT", 221);
    }
}
