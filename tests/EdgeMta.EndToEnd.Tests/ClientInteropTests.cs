using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Python's smtplib as a real client (8BITMIME, SMTPUTF8), and the pipelining a client like Postfix's smtp
/// does (RFC 2920), which smtplib cannot: MAIL, RCPT, RCPT, DATA in one write.
/// </summary>
public sealed class ClientInteropTests(ITestOutputHelper output)
{
    [Fact]
    public async Task SmtplibSendsAnEightBitBodyWithBody8BitMimeAndItIsStoredByteForByte()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        // 8-bit octets (UTF-8 and lone high bytes, never NUL, CR or LF), a dot-stuffed line, a long line.
        byte[] body = [.. "Subject: caf\u00e9 cr\u00e8me\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"u8.ToArray(),
            .. Encoding.UTF8.GetBytes("na\u00efve r\u00e9sum\u00e9 \u00fcber \u65e5\u672c\u8a9e\r\n"),
            .. (byte[])[0xA0, 0xFF, 0xFE, 0x80, (byte)'\r', (byte)'\n'],
            .. ".a line that starts with a dot\r\n..and two dots\r\n.\u00e9\r\n"u8.ToArray(),
            .. Encoding.ASCII.GetBytes(new string('x', 990) + "\r\n")];
        string bodyFile = Path.Combine(server.WorkDirectory, "body.bin");
        await File.WriteAllBytesAsync(bodyFile, body);

        var (_, steps) = await PythonClient.RunAsync(server.WorkDirectory, server.Port, """
                s = smtplib.SMTP('127.0.0.1', port, timeout=10)
                out("ehlo", s.ehlo("client.example"))
                out("has8bitmime", (1 if s.has_extn("8bitmime") else 0, ""))
                out("mail", s.mail("sender@example.com", ["BODY=8BITMIME"]))
                out("rcpt", s.rcpt("rcpt@example.com"))
                out("data", s.data(open(sys.argv[2], "rb").read()))
                out("quit", s.quit())
            """, output, bodyFile);

        Assert.Equal(250, steps.Step("ehlo").Code);
        Assert.Equal(1, steps.Step("has8bitmime").Code);
        Assert.Equal(250, steps.Step("mail").Code);
        Assert.Equal(250, steps.Step("rcpt").Code);
        PythonStep data = steps.Step("data");
        Assert.Equal(250, data.Code);
        Assert.Equal(221, steps.Step("quit").Code);
        string id = new SmtpReply(data.Code, [data.Text]).QueueId ?? "";
        Assert.True(id.Length > 0, $"The 250 to the end of data should name the queue id: `{data.Text}`");

        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [new SentMessage(id, body, "sender@example.com", ["rcpt@example.com"])]);
    }

    [Fact]
    public async Task SmtplibSendsToUtf8AddressesWithSmtpUtf8AndTheEnvelopeKeepsThem()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        const string sender = "j\u00f6rg@ex\u00e4mple.com", recipient = "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a";
        byte[] body = Encoding.UTF8.GetBytes($"From: {sender}\r\nTo: {recipient}\r\nSubject: gr\u00fc\u00dfe\r\n\r\nHall\u00f6 \u4e16\u754c\r\n");
        string bodyFile = Path.Combine(server.WorkDirectory, "body.bin");
        await File.WriteAllBytesAsync(bodyFile, body);

        var (_, steps) = await PythonClient.RunAsync(server.WorkDirectory, server.Port, """
                s = smtplib.SMTP('127.0.0.1', port, timeout=10)
                out("ehlo", s.ehlo("client.example"))
                out("hasutf8", (1 if s.has_extn("smtputf8") else 0, ""))
                out("mail", s.mail(sys.argv[3], ["SMTPUTF8", "BODY=8BITMIME"]))
                out("rcpt", s.rcpt(sys.argv[4]))
                out("data", s.data(open(sys.argv[2], "rb").read()))
                out("quit", s.quit())
            """, output, bodyFile, sender, recipient);

        Assert.Equal(1, steps.Step("hasutf8").Code);
        Assert.Equal(250, steps.Step("mail").Code);
        Assert.Equal(250, steps.Step("rcpt").Code);
        PythonStep data = steps.Step("data");
        Assert.Equal(250, data.Code);
        string id = new SmtpReply(data.Code, [data.Text]).QueueId ?? "";

        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [new SentMessage(id, body, sender, [recipient])]);
    }

    [Fact]
    public async Task AUtf8AddressWithoutTheSmtpUtf8ParameterIsRefused553()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<j\u00f6rg@example.com>", 553, "5.6.7");
        await c.CommandAsync("MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8", 250);
        await c.CommandAsync("QUIT", 221);
    }

    [Fact]
    public async Task PipelinedMailRcptRcptDataInOneWriteGetFourRepliesInOrder()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        byte[] message = Mail.Crlf("Subject: pipelined", "", "one write for the envelope", ".and a dot");
        string id;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            SmtpReply ehlo = await c.CommandAsync("EHLO client.example", 250);
            Assert.Contains("PIPELINING", ehlo.Lines);

            // RFC 2920 §3.1: MAIL and RCPT may be grouped; DATA ends the group, so it is the last in the write.
            await c.SendAsync("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
            await c.ExpectAsync(250, "2.1.0", "pipelined MAIL");
            await c.ExpectAsync(250, null, "the first pipelined RCPT");
            await c.ExpectAsync(250, null, "the second pipelined RCPT");
            await c.ExpectAsync(354, null, "pipelined DATA");

            // The end of data and QUIT together, as clients do (PROTOCOL.md: fine after the dot).
            await c.SendAsync((byte[])[.. Mail.DotStuff(message), .. "QUIT\r\n"u8.ToArray()]);
            id = (await c.ExpectAsync(250, "2.0.0", "the end of data")).QueueId!;
            await c.ExpectAsync(221, null, "the pipelined QUIT");
            Assert.Empty(await c.ReadUntilClosedAsync());
        }
        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [new SentMessage(id, message, "a@example.com", ["b@example.org", "c@example.org"])]);
    }
}
