using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Every message a client saw 250 for comes back from `spool export` byte for byte (after the server's
/// Received: header), whatever its content and whether it came by DATA or BDAT; and what is refused
/// (over the size limit, a foreign domain) leaves nothing behind.
/// </summary>
public sealed class RoundTripTests(ITestOutputHelper output)
{
    // Messages that break naive DATA readers. None starts with a space or tab: the export format cannot
    // tell such a first line from a fold of the server's own Received: header.
    private static IEnumerable<(string Name, byte[] Message)> AwkwardMessages()
    {
        yield return ("empty", []);
        yield return ("dots", Mail.Crlf("Subject: dots", "", ".", "..", "...", ". ", ".x", "x.", "", "."));
        yield return ("long lines", Mail.Crlf("Subject: long", "", new string('a', 5000), new string('b', 998), new string('c', 999)));
        yield return ("own Received", Mail.Crlf("Received: from elsewhere by somewhere;", "\tThu, 21 May 1998 05:33:29 -0700", "Subject: traced", "", "body"));
        var eight = new List<byte>("Subject: every octet\r\n\r\n"u8.ToArray());
        for (int b = 1; b < 256; b++)
        {
            if (b is '\r' or '\n') continue;
            eight.Add((byte)b);
            if (b % 64 == 0) eight.AddRange("\r\n"u8.ToArray());
        }
        eight.AddRange("\r\n"u8.ToArray());
        yield return ("every octet but NUL, CR, LF", eight.ToArray());
        var big = new StringBuilder("Subject: one megabyte\r\n\r\n");
        for (int i = 0; big.Length < 1 << 20; i++) big.Append(i % 7 == 0 ? "." : "").Append("line ").Append(i).Append(' ', i % 80).Append("\r\n");
        yield return ("1 MiB", Encoding.ASCII.GetBytes(big.ToString()));
        yield return ("no headers", Mail.Crlf("just a body line, no header block at all"));
    }

    [Fact]
    public async Task EveryMessageAClientSaw250ForComesBackFromSpoolExportByteForByte()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        var sent = new List<SentMessage>();
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            // Several transactions on one session: after a 250, MAIL starts the next (PROTOCOL.md state 7).
            foreach ((string name, byte[] message) in AwkwardMessages())
            {
                output.WriteLine($"sending: {name} ({message.Length} bytes)");
                sent.Add(await c.SendMessageAsync($"sender+{sent.Count}@example.com", [$"rcpt{sent.Count}@example.org"], message));
            }
            await c.CommandAsync("QUIT", 221);
        }
        Assert.Equal(sent.Count, sent.Select(s => s.QueueId).Distinct().Count());

        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(sent.Count, export.Count);
        Mail.AssertExportedExactly(export, sent);
        foreach (SentMessage s in sent)
        {
            // RFC 5321 §4.4 and PROTOCOL.md: the trace names the client's EHLO name, its address and the queue id.
            string received = export[s.QueueId].ReceivedHeader;
            Assert.Contains("client.example", received);
            Assert.Contains("127.0.0.1", received);
            Assert.Contains(s.QueueId, received);
        }
    }

    [Fact]
    public async Task ABdatMessageComesBackByteForByteWithoutDotUnstuffing()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        // RFC 3030 §2: BDAT carries exactly n octets, no dot-stuffing, so "\r\n.\r\n" is just content here.
        byte[] first = Mail.Crlf("Subject: chunked", "", ".leading dot, not stuffed", "..two", ".", "end of chunk one");
        byte[] second = Mail.Crlf("chunk two", ".", "last line");
        string id;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            SmtpReply ehlo = await c.CommandAsync("EHLO client.example", 250);
            Assert.Contains("CHUNKING", ehlo.Lines);
            await c.CommandAsync("MAIL FROM:<chunks@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.SendAsync((byte[])[.. Encoding.ASCII.GetBytes($"BDAT {first.Length}\r\n"), .. first]);
            await c.ExpectAsync(250, null, "the first BDAT chunk");
            await c.SendAsync((byte[])[.. Encoding.ASCII.GetBytes($"BDAT {second.Length} LAST\r\n"), .. second]);
            id = (await c.ExpectAsync(250, "2.0.0", "BDAT LAST")).QueueId!;
            Assert.False(string.IsNullOrEmpty(id), "The 250 to BDAT LAST should name the queue id");
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [new SentMessage(id, [.. first, .. second], "chunks@example.com", ["b@example.org"])]);
    }

    [Fact]
    public async Task MessagesOverTheSizeLimitAreRefused552AndTheSessionGoesOn()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--max-message-size", "10000"]);
        SentMessage small;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            SmtpReply ehlo = await c.CommandAsync("EHLO client.example", 250);
            Assert.Contains("SIZE 10000", ehlo.Lines);
            await c.CommandAsync("MAIL FROM:<big@example.com> SIZE=20000", 552, "5.3.4");
            await c.CommandAsync("MAIL FROM:<big@example.com> SIZE=99999999999999999999999999", 552, "5.3.4");
            await c.CommandAsync("MAIL FROM:<big@example.com> SIZE=abc", 501, "5.5.4");

            // Declared small, sent big: read to the end, discarded, 552, back to state 3.
            await c.CommandAsync("MAIL FROM:<big@example.com> SIZE=100", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync(Mail.DotStuff(Mail.Crlf(["Subject: too big", "", .. Enumerable.Repeat(new string('z', 900), 20)])));
            await c.ExpectAsync(552, "5.3.4", "a message over --max-message-size");
            await c.CommandAsync("RCPT TO:<b@example.org>", 503);

            small = await c.SendMessageAsync("small@example.com", ["b@example.org"], Mail.Crlf("Subject: small", "", "fits"));
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(1, export.Count);
        Mail.AssertExportedExactly(export, [small]);
    }

    [Fact]
    public async Task RecipientsOutsideTheLocalDomainsAreRelayDenied()
    {
        // A catch-all entry makes foo.com local (PROTOCOL.md: `@bar.org` is any local part at bar.org).
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, recipients: "@foo.com\n");
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<a@example.com>", 250);
        await c.CommandAsync("RCPT TO:<someone@elsewhere.org>", 550, "5.7.1");
        await c.CommandAsync("DATA", 554, "5.5.1");
        await c.CommandAsync("RCPT TO:<anyone@FOO.com>", 250);
        await c.CommandAsync("QUIT", 221);
    }
}
