using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The harness checked against a known-good SMTP server, Postfix's smtp-sink, so that a failing
/// end-to-end test points at edgemta and not at the raw client: multi-line replies, pipelined replies in
/// order, dot-stuffing, and seeing the close after QUIT. These do not need the edgemta binary.
/// </summary>
public sealed class HarnessSelfTests(ITestOutputHelper output)
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<Process> StartSmtpSinkAsync(int port)
    {
        string sink = File.Exists("/usr/sbin/smtp-sink") ? "/usr/sbin/smtp-sink" : "smtp-sink";
        var start = new ProcessStartInfo(sink) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        // -u: smtp-sink refuses to keep root privileges; nobody exists on every Debian.
        foreach (string a in (string[])["-u", "nobody", $"127.0.0.1:{port}", "16"]) start.ArgumentList.Add(a);
        var p = Process.Start(start)!;
        for (int i = 0; i < 100; i++)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return p;
            }
            catch (SocketException)
            {
                if (p.HasExited) break;
                await Task.Delay(50);
            }
        }
        string err = p.HasExited ? await p.StandardError.ReadToEndAsync() : "";
        if (!p.HasExited) p.Kill();
        Assert.Fail($"smtp-sink did not start on port {port} (tests/run.sh installs postfix): {err}");
        return p;
    }

    [Fact]
    public async Task TheRawClientReadsMultiLineAndPipelinedRepliesFromPostfixSmtpSink()
    {
        int port = FreePort();
        using Process sink = await StartSmtpSinkAsync(port);
        try
        {
            await using SmtpConnection c = await SmtpConnection.ConnectAsync(port);
            await c.ExpectAsync(220);
            SmtpReply ehlo = await c.CommandAsync("EHLO client.example", 250);
            Assert.True(ehlo.Lines.Count > 3, ehlo.ToString());
            Assert.Contains("PIPELINING", ehlo.Lines);

            await c.SendAsync("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
            await c.ExpectAsync(250);
            await c.ExpectAsync(250);
            await c.ExpectAsync(250);
            await c.ExpectAsync(354);
            await c.SendAsync((byte[])[.. Mail.DotStuff(Mail.Crlf("Subject: x", "", ".dot", "..", "end")), .. "QUIT\r\n"u8.ToArray()]);
            await c.ExpectAsync(250);
            await c.ExpectAsync(221);
            Assert.Empty(await c.ReadUntilClosedAsync());
            Assert.True(c.Closed);
            output.WriteLine(c.Transcript);
        }
        finally
        {
            sink.Kill();
            await sink.WaitForExitAsync();
        }
    }

    [Fact]
    public void DotStuffDoublesLeadingDotsAndAppendsTheEndOfData()
    {
        byte[] stuffed = Mail.DotStuff(Mail.Crlf(".a", "b.", "..", ""));
        Assert.Equal("..a\r\nb.\r\n...\r\n\r\n.\r\n", System.Text.Encoding.ASCII.GetString(stuffed));
        Assert.Equal(".\r\n", System.Text.Encoding.ASCII.GetString(Mail.DotStuff([])));
    }

    [Fact]
    public void TheExportReaderSplitsAFoldedReceivedHeaderFromTheClientMessage()
    {
        byte[] eml = "Received: from x\r\n\tby y;\r\n date\r\nReceived: from client\r\nSubject: s\r\n\r\nbody\r\n"u8.ToArray();
        var m = new ExportedMessage("ID", eml, "a@b", ["c@d"], "{}");
        Assert.Equal("Received: from x\r\n\tby y;\r\n date\r\n", m.ReceivedHeader);
        Assert.Equal("Received: from client\r\nSubject: s\r\n\r\nbody\r\n", System.Text.Encoding.ASCII.GetString(m.ClientMessage));
    }

    [Fact]
    public void TheExportReaderFindsSenderAndRecipientsUnderLooseNames()
    {
        string dir = Directory.CreateTempSubdirectory("edgemta-e2e-export-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "A1.eml"), "Received: x\r\n\r\n");
            File.WriteAllText(Path.Combine(dir, "A1.json"), """{"id":"A1","envelope":{"mailFrom":"<s@x>","rcptTo":["r1@y",{"address":"r2@y"}]}}""");
            File.WriteAllText(Path.Combine(dir, "B2.eml"), "Received: x\r\n\r\n");
            File.WriteAllText(Path.Combine(dir, "B2.json"), """{"sender":"","recipients":["<r@z>"]}""");
            // The spool branch's shape (SpoolCommands.WriteEnvelopeJson).
            File.WriteAllText(Path.Combine(dir, "C3.eml"), "Received: x\r\n\r\n");
            File.WriteAllText(Path.Combine(dir, "C3.json"), """
                {"id":"C3","arrival":"2026-11-22T07:00:00Z","size":14,"client_address":"127.0.0.1","helo":"client.example",
                 "mail_from":"s@x","mail_parameters":"BODY=8BITMIME","rcpt":[{"parameters":"NOTIFY=NEVER","to":"r1@y"},{"to":"r2@y","parameters":""}]}
                """);
            SpoolExport e = SpoolExport.Read(dir);
            Assert.Equal(3, e.Count);
            Assert.Equal("s@x", e["C3"].Sender);
            Assert.Equal(["r1@y", "r2@y"], e["C3"].Recipients);
            Assert.Equal("s@x", e["A1"].Sender);
            Assert.Equal(["r1@y", "r2@y"], e["A1"].Recipients);
            Assert.Equal("", e["B2"].Sender);
            Assert.Equal(["r@z"], e["B2"].Recipients);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
