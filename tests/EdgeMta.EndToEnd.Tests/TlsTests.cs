using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// STARTTLS (RFC 3207) with a self-signed certificate: a real client (swaks --tls) delivers over it, plaintext
/// pipelined after STARTTLS is never executed (CVE-2011-0411), and --require-tls holds MAIL until TLS is up.
/// </summary>
public sealed class TlsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task SwaksDeliversOverStartTlsAndTheMessageIsStoredByteForByte()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, TestCertificate.Flags);
        string data = Path.Combine(server.WorkDirectory, "tls.txt");
        await File.WriteAllTextAsync(data, "Subject: over TLS\r\n\r\n.a dot line\r\nsecret\r\n");
        Swaks s = await Swaks.RunAsync(server.Port, output, "--tls", "--ehlo", "client.example", "--from", "tls@example.com",
            "--to", "b@example.org", "--data", "@" + data);
        Assert.True(s.Result.ExitCode == 0, $"swaks --tls should deliver (exit 10 means its TLS module, libnet-ssleay-perl, is missing)\n{s.Result}");
        Assert.Equal(220, s.ReplyTo("STARTTLS"));
        Assert.Equal(250, s.ReplyTo("."));
        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [new SentMessage(s.QueueId(), s.SentMessage(), "tls@example.com", ["b@example.org"])]);
    }

    [Fact]
    public async Task PlaintextPipelinedAfterStartTlsIsDiscardedNotExecuted()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, TestCertificate.Flags);
        await using SmtpConnection c = await server.OpenSessionAsync();
        SmtpReply ehlo = await c.CommandAsync("EHLO client.example", 250);
        Assert.Contains("STARTTLS", ehlo.Lines);

        // CVE-2011-0411: a man in the middle appends plaintext commands after STARTTLS.
        await c.SendAsync("STARTTLS\r\nMAIL FROM:<injected@example.com>\r\nRCPT TO:<victim@example.org>\r\n");
        await c.ExpectAsync(220, null, "STARTTLS");
        await c.StartTlsAsync();

        // The first reply over TLS answers our EHLO, not an injected command; and no transaction exists.
        SmtpReply again = await c.CommandAsync("EHLO client.example", 250);
        Assert.Contains(again.Lines, l => l.Contains("greets", StringComparison.Ordinal));
        Assert.DoesNotContain("STARTTLS", again.Lines);
        await c.CommandAsync("RCPT TO:<victim@example.org>", 503);
        await c.CommandAsync("QUIT", 221);
    }

    [Fact]
    public async Task RequireTlsRefusesMailWith530UntilStartTls()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, [.. TestCertificate.Flags, "--require-tls"]);
        SentMessage sent;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<plain@example.com>", 530, "5.7.0");
            await c.CommandAsync("STARTTLS", 220);
            await c.StartTlsAsync();
            await c.CommandAsync("EHLO client.example", 250);
            sent = await c.SendMessageAsync("secure@example.com", ["b@example.org"], Mail.Crlf("Subject: tls", "", "body"));
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [sent]);
    }

    [Fact]
    public async Task RequireTlsWithoutACertificateIsABadCommandLine()
    {
        // A server that demands TLS it cannot offer would refuse every message: say so at start instead.
        ToolResult run = await RunToExitAsync(["--require-tls"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--require-tls", run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKeyThatDoesNotMatchTheCertificateIsABadCommandLine()
    {
        string dir = Directory.CreateTempSubdirectory("edgemta-e2e-tls-").FullName;
        try
        {
            string[] first = TestCertificate.Write(dir);
            string otherDir = Directory.CreateDirectory(Path.Combine(dir, "other")).FullName;
            string[] second = TestCertificate.Write(otherDir);
            ToolResult run = await RunToExitAsync(["--tls-cert", first[1], "--tls-key", second[3]]);
            Assert.Equal(2, run.ExitCode);
            Assert.Contains("--tls-cert", run.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("listening on", run.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task<ToolResult> RunToExitAsync(string[] flags)
    {
        string spool = Directory.CreateTempSubdirectory("edgemta-e2e-tls-").FullName;
        try
        {
            return await ToolRun.RunAsync(EdgeMtaBinary.Require(), ["--listen", "127.0.0.1:0", "--spool", spool, .. flags],
                TimeSpan.FromSeconds(10), output);
        }
        finally
        {
            Directory.Delete(spool, recursive: true);
        }
    }

    [Fact]
    public async Task WithoutACertificateStartTlsIsNotAdvertised()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        SmtpReply ehlo = await c.CommandAsync("EHLO client.example", 250);
        Assert.DoesNotContain("STARTTLS", ehlo.Lines);
        await c.CommandAsync("QUIT", 221);
    }
}
