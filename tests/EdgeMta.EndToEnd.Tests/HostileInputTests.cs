using System.Net.Sockets;
using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Input no honest client sends: SMTP smuggling, overlong lines, NUL bytes, recipient floods, clients
/// that stop reading or vanish. Each test checks the server's answer, that nothing wrong reached the
/// spool, and that the server still serves a fresh connection afterwards.
/// </summary>
public sealed class HostileInputTests(ITestOutputHelper output)
{
    private static async Task AssertStillServesAsync(EdgeMtaProcess server)
    {
        Assert.False(server.HasExited, $"edgemta exited\n{server.Log}");
        await using SmtpConnection fresh = await server.OpenSessionAsync();
        await fresh.CommandAsync("EHLO fresh.example", 250);
        await fresh.CommandAsync("NOOP", 250);
        await fresh.CommandAsync("QUIT", 221);
    }

    // Seen by "SMTP Smuggling" (SEC Consult, 2023): a receiver that takes any of these for <CRLF>.<CRLF>
    // lets a sender inject a second message. PROTOCOL.md: never an end of data; refused 550 5.6.0 by default.
    [Theory]
    [InlineData("\n.\n")]
    [InlineData("\r\n.\n")]
    [InlineData("\n.\r\n")]
    [InlineData("\r.\r")]
    [InlineData("\r\n.\r")]
    public async Task ASmugglingSequenceNeverEndsDataAndTheMessageIsRefused550(string smuggle)
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<honest@example.com>", 250);
            await c.CommandAsync("RCPT TO:<victim@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync("Subject: first\r\n\r\nbefore" + smuggle +
                              "MAIL FROM:<ceo@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n");
            // Exactly one reply for the whole payload: a smuggled end of data would have produced more.
            await c.ExpectAsync(550, "5.6.0", "a message with a bare CR or LF");
            await c.SendAsync("QUIT\r\n");
            List<SmtpReply> rest = await c.ReadUntilClosedAsync();
            Assert.True(rest.Count == 1 && rest[0].Code == 221,
                $"After the 550 only QUIT's 221 should come; anything else is a smuggled command's reply.\n{c.Transcript}");
        }
        Assert.Equal(0, (await server.StopAndExportAsync()).Count);
    }

    // Audit finding: 1,600 pipelined HELPs (about 275 KB of replies from one 16 KiB read) overflowed the
    // connection's output cap, and the connection closed with no reply at all.
    [Fact]
    public async Task AFloodOfPipelinedHelpsIsAnsweredInFullAndInOrder()
    {
        const int Helps = 3000;
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.SendAsync(new StringBuilder().Insert(0, "HELP\r\n", Helps).Append("NOOP\r\n").ToString());
            for (int i = 0; i < Helps; i++)
            {
                await c.ExpectAsync(214);
            }
            await c.ExpectAsync(250);
            await c.CommandAsync("QUIT", 221);
        }
        await AssertStillServesAsync(server);
        Assert.DoesNotContain("fault=", server.Log);
    }

    [Fact]
    public async Task AOneMegabyteCommandLineIsRefused500AndTheSessionGoesOnOrClosesCleanly()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            byte[] line = Encoding.ASCII.GetBytes("NOOP " + new string('a', 1024 * 1024) + "\r\n");
            bool sent = true;
            try
            {
                await c.SendAsync(line, TimeSpan.FromSeconds(15));
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                sent = false; // the server closed on us mid-line: allowed, if it closed cleanly (checked below)
            }
            catch (OperationCanceledException)
            {
                sent = false;
            }
            SmtpReply? reply = await c.TryReadReplyAsync();
            if (reply is not null)
            {
                Assert.True(reply.Code == 500 && reply.Enhanced == "5.5.6" || reply.Code == 421,
                    $"A command line over 512 octets gets `500 5.5.6 line too long` (or 421 and a close)\n{c.Transcript}");
            }
            if (reply is { Code: 500 } && sent && !c.Closed)
            {
                // The rest of the long line was discarded, not read as commands: the next reply is NOOP's.
                await c.CommandAsync("NOOP", 250);
                await c.CommandAsync("QUIT", 221);
            }
            else
            {
                Assert.True(await c.IsClosedAsync(SmtpConnection.ReadTimeout), $"Either the session goes on or the server closes it\n{c.Transcript}");
            }
        }
        await AssertStillServesAsync(server);
    }

    [Fact]
    public async Task ACommandWithANulByteIsRefused500AndNotActedOn()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<a@example.com>\0", 500, "5.5.2");
        await c.CommandAsync("MAIL FROM:<a@exa\0mple.com>", 500, "5.5.2");
        // Neither MAIL was acted on: there is no transaction for RCPT.
        await c.CommandAsync("RCPT TO:<b@example.com>", 503);
        await c.CommandAsync("QUIT\0", 500, "5.5.2");
        await c.CommandAsync("NOOP", 250);
        await c.CommandAsync("QUIT", 221);
    }

    [Fact]
    public async Task ACommandEndingInABareLfIsRefused500AndNotActedOn()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.SendAsync("MAIL FROM:<a@example.com>\n");
        await c.ExpectAsync(500, "5.5.2", "a command ending in a bare LF");
        await c.CommandAsync("RCPT TO:<b@example.com>", 503);
        await c.CommandAsync("QUIT", 221);
    }

    // Past the recipient limit (1000), RCPT gets 452 4.5.3 and the client sends the rest in a later transaction
    // (RFC 5321 §4.5.3.1.10). As Postfix (smtpd_recipient_overshoot_limit = 1000), the first 1000 excess
    // recipients are free; each one after that counts toward the error limit (20), which then closes.
    private const int RecipientLimit = 1000, OvershootLimit = 1000, ErrorLimit = 20;

    [Fact]
    public async Task FifteenHundredRcptsGet452PastTheLimitOf1000AndTheTransactionKeepsTheFirst1000()
    {
        const int Sent = 1500;
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        string id;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<list@example.com>", 250);
            (int accepted, int limited, SmtpReply? last) = await PipelineRcptsAsync(c, Sent);
            Assert.Equal((RecipientLimit, Sent - RecipientLimit), (accepted, limited));
            Assert.Null(last);

            await c.CommandAsync("DATA", 354);
            byte[] message = Mail.Crlf("Subject: many recipients", "", "body");
            await c.SendAsync(Mail.DotStuff(message));
            id = (await c.ExpectAsync(250, "2.0.0", "the end of data")).QueueId!;
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(1, export.Count);
        ExportedMessage m = export[id];
        // The first 1000 RCPTs are the ones kept (r0..r999), not any 1000.
        Assert.Equal(Enumerable.Range(0, RecipientLimit).Select(i => $"r{i}@example.org").Order(StringComparer.Ordinal),
            m.Recipients.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task TenThousandRcptsAreRefusedPastTheOvershootLimitThenClosedAndTheServerStillServes()
    {
        const int Sent = 10_000;
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<list@example.com>", 250);
            (int accepted, int limited, SmtpReply? last) = await PipelineRcptsAsync(c, Sent);
            Assert.Equal((RecipientLimit, OvershootLimit + ErrorLimit), (accepted, limited));
            Assert.True(last is { Code: 421, Enhanced: "4.7.0" }, $"after the error limit the server says 421 4.7.0, got `{last}`");
            Assert.True(await c.IsClosedAsync(TimeSpan.FromSeconds(10)), "the server closes after 421");
        }
        await using (SmtpConnection again = await server.OpenSessionAsync())
        {
            await again.CommandAsync("EHLO client.example", 250);
            await again.SendMessageAsync("a@example.com", ["b@example.org"], Mail.Crlf("Subject: after the flood", "", "still served"));
            await again.CommandAsync("QUIT", 221);
        }
    }

    // RCPT does not end a pipelining group (RFC 2920 §3.1): write them all while reading the replies. Stops at
    // the first reply that is neither 250 nor 452 4.5.3 (returned as `last`), or after `count` replies.
    private static async Task<(int Accepted, int Limited, SmtpReply? Last)> PipelineRcptsAsync(SmtpConnection c, int count)
    {
        var rcpts = new StringBuilder();
        for (int i = 0; i < count; i++) rcpts.Append("RCPT TO:<r").Append(i).Append("@example.org>\r\n");
        Task write = c.SendAsync(Encoding.ASCII.GetBytes(rcpts.ToString()), TimeSpan.FromSeconds(60));
        int accepted = 0, limited = 0;
        SmtpReply? last = null;
        for (int i = 0; i < count; i++)
        {
            SmtpReply r = await c.ReadReplyAsync();
            if (i < RecipientLimit)
            {
                Assert.True(r.Code == 250, $"RCPT #{i + 1} (within the limit of {RecipientLimit}) got `{r}`");
                accepted++;
            }
            else if (r.Code == 452 && r.Enhanced == "4.5.3")
            {
                limited++;
            }
            else
            {
                last = r;
                break;
            }
        }
        try
        {
            await write;
        }
        catch (Exception e) when (last is not null && e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            // The server closed while the rest of the flood was still being written: expected after its 421.
        }
        return (accepted, limited, last);
    }

    [Fact]
    public async Task AClientThatPipelinesNoopsAndNeverReadsDoesNotGrowTheServerWithoutBound()
    {
        const long MaxBytes = 48L << 20;
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        long baseline = server.ResidentBytes();
        long written = 0;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            byte[] chunk = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("NOOP\r\n", 64 * 1024 / 6)));
            // Write until the server stops reading (a send blocks: TCP back-pressure), closes, or 48 MiB went out.
            try
            {
                while (written < MaxBytes)
                {
                    await c.SendAsync(chunk, TimeSpan.FromSeconds(2));
                    written += chunk.Length;
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                output.WriteLine($"writing stopped after {written} bytes: {e.GetType().Name} {e.Message}");
            }
            long grown = server.ResidentBytes() - baseline;
            output.WriteLine($"wrote {written} bytes of NOOPs; server RSS grew by {grown >> 10} KiB");
            Assert.True(grown < 64L << 20,
                $"The server's resident memory grew by {grown >> 20} MiB while a client pipelined {written >> 20} MiB of NOOPs without reading: replies must not pile up without bound");
        }
        await AssertStillServesAsync(server);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AClientThatVanishesMidDataLeavesNothingInTheSpool(bool reset)
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        SmtpConnection gone = await server.OpenSessionAsync();
        await gone.CommandAsync("EHLO client.example", 250);
        await gone.CommandAsync("MAIL FROM:<gone@example.com>", 250);
        await gone.CommandAsync("RCPT TO:<b@example.org>", 250);
        await gone.CommandAsync("DATA", 354);
        await gone.SendAsync("Subject: vanished\r\n\r\nhalf a message, then nothing\r\n");
        if (reset) gone.Abort();
        else await gone.DisposeAsync();

        SentMessage kept;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            kept = await c.SendMessageAsync("kept@example.com", ["b@example.org"], Mail.Crlf("Subject: kept", "", "a whole message"));
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Assert.True(export.Count == 1, $"Only the whole message belongs in the spool; it has {export.Count}: {string.Join(", ", export.ById.Values.Select(m => m.Sender))}");
        Mail.AssertExportedExactly(export, [kept]);
    }
}
