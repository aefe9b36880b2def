using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// SIGHUP re-reads the recipient directory and the TLS certificate and key for new sessions (docs/PROTOCOL.md
/// "Operations"); sessions in flight keep theirs; a bad file keeps the old ones with one log line; a storm
/// coalesces; a handshake under way is not disturbed.
/// </summary>
public sealed class ReloadTests(ITestOutputHelper output)
{
    private const int SIGHUP = 1;
    private const string Before = "kept@foo.test\nremoved@foo.test\n";
    private const string After = "kept@foo.test\nadded@foo.test\n";

    [Fact]
    public async Task AReloadedDirectoryServesNewSessionsWhileAnOpenSessionKeepsTheOld()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, recipients: Before);
        await using SmtpConnection early = await OpenTransactionAsync(server);

        await File.WriteAllTextAsync(RecipientsFile(server), After);
        server.Signal(SIGHUP);
        await server.WaitForLinesAsync("reloaded recipients=2");

        await using (SmtpConnection late = await OpenTransactionAsync(server))
        {
            await late.CommandAsync("RCPT TO:<added@foo.test>", 250);
            await late.CommandAsync("RCPT TO:<removed@foo.test>", 550);
            await late.CommandAsync("QUIT", 221);
        }
        // The session opened before the reload still answers from the directory it started with.
        await early.CommandAsync("RCPT TO:<removed@foo.test>", 250);
        await early.CommandAsync("RCPT TO:<added@foo.test>", 550);
        await early.CommandAsync("QUIT", 221);
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory]
    [InlineData("unparsable", "reason=recipients%20line%202")]
    [InlineData("missing", "reason=no%20such%20file%20/")]
    public async Task ABadRecipientsFileKeepsTheOldDirectoryAndSaysWhy(string damage, string reason)
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, recipients: Before);
        string file = RecipientsFile(server);
        if (damage == "missing") File.Delete(file);
        else await File.WriteAllTextAsync(file, "added@foo.test\nnot an address\n");
        server.Signal(SIGHUP);

        string[] failed = await server.WaitForLinesAsync("reload-failed file=recipients");
        Assert.Single(failed);
        Assert.Contains(reason, failed[0]);
        Assert.Empty(server.LinesWith("reloaded"));
        await using (SmtpConnection c = await OpenTransactionAsync(server))
        {
            await c.CommandAsync("RCPT TO:<removed@foo.test>", 250);
            await c.CommandAsync("RCPT TO:<added@foo.test>", 550);
        }
        Assert.Equal(0, await server.StopAsync());
    }

    // 100 SIGHUPs over about a second, 10 ms apart so the kernel delivers each (a tight loop of kill(2) merges
    // them into one pending signal), against a directory of 100,000 entries whose parse takes longer than
    // that gap: without coalescing every delivered signal would be a reload of its own.
    [Fact]
    public async Task AHundredHangupsInASecondCoalesceAndTheLastFileWins()
    {
        const int Signals = 100, Entries = 100_000;
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, recipients: Before);
        var big = new System.Text.StringBuilder(After);
        for (int i = 0; i < Entries - 2; i++) big.Append("user").Append(i).Append("@foo.test\n");
        await File.WriteAllTextAsync(RecipientsFile(server), big.ToString());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < Signals; i++)
        {
            server.Signal(SIGHUP);
            await Task.Delay(10); // pacing the storm, not waiting for a result
        }
        TimeSpan storm = clock.Elapsed;

        await server.WaitForLinesAsync($"reloaded recipients={Entries}");
        // Every request made before a reload began is served by it or a later one: the last reads the big file.
        await using (SmtpConnection c = await OpenTransactionAsync(server))
        {
            await c.CommandAsync("RCPT TO:<added@foo.test>", 250);
            await c.CommandAsync("RCPT TO:<removed@foo.test>", 550);
        }
        int reloads = server.LinesWith("reloaded").Length;
        output.WriteLine($"{Signals} SIGHUPs in {storm.TotalMilliseconds:F0} ms: {reloads} reloads");
        Assert.InRange(reloads, 1, Signals / 4);
        Assert.False(server.HasExited);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact]
    public async Task AReplacedCertificateIsPresentedByTheNextHandshakeAndEarlierTlsSessionsCarryOn()
    {
        string tlsDirectory = Directory.CreateTempSubdirectory("edgemta-e2e-reload-tls-").FullName;
        try
        {
            string[] flags = TestCertificate.Write(tlsDirectory);
            string first = Fingerprint(flags[1]);
            await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, flags);
            await using SmtpConnection early = await StartTlsAsync(server);
            Assert.Equal(first, Fingerprint(early.RemoteCertificate!));

            TestCertificate.Write(tlsDirectory); // a new key and certificate under the same names
            string second = Fingerprint(flags[1]);
            Assert.NotEqual(first, second);
            server.Signal(SIGHUP);
            await server.WaitForLinesAsync($"tls-sha256={second}");

            await using (SmtpConnection late = await StartTlsAsync(server))
            {
                Assert.Equal(second, Fingerprint(late.RemoteCertificate!));
                await late.CommandAsync("QUIT", 221);
            }
            await early.CommandAsync("EHLO client.example", 250);
            await early.CommandAsync("QUIT", 221);
            Assert.Equal(0, await server.StopAsync());
        }
        finally
        {
            Directory.Delete(tlsDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task AKeyThatDoesNotMatchTheCertificateKeepsTheOldOneAndSaysWhy()
    {
        string tlsDirectory = Directory.CreateTempSubdirectory("edgemta-e2e-reload-tls-").FullName;
        string otherDirectory = Directory.CreateTempSubdirectory("edgemta-e2e-reload-tls-").FullName;
        try
        {
            string[] flags = TestCertificate.Write(tlsDirectory);
            string first = Fingerprint(flags[1]);
            await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, flags);
            string[] other = TestCertificate.Write(otherDirectory);
            File.Copy(other[1], flags[1], overwrite: true); // the certificate changes, its key does not
            server.Signal(SIGHUP);

            await server.WaitForLinesAsync("reload-failed file=tls");
            await using (SmtpConnection c = await StartTlsAsync(server))
            {
                Assert.Equal(first, Fingerprint(c.RemoteCertificate!));
            }
            Assert.Equal(0, await server.StopAsync());
        }
        finally
        {
            Directory.Delete(tlsDirectory, recursive: true);
            Directory.Delete(otherDirectory, recursive: true);
        }
    }

    // The server starts its side of the handshake right after its 220 to STARTTLS; a reload between that and
    // the client's hello must neither break the handshake nor change the certificate it presents.
    [Fact]
    public async Task AHangupDuringAHandshakeLeavesItWholeWithTheCertificateItBeganWith()
    {
        string tlsDirectory = Directory.CreateTempSubdirectory("edgemta-e2e-reload-tls-").FullName;
        try
        {
            string[] flags = TestCertificate.Write(tlsDirectory);
            string first = Fingerprint(flags[1]);
            await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, flags);
            await using SmtpConnection c = await server.OpenSessionAsync();
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("STARTTLS", 220);

            TestCertificate.Write(tlsDirectory);
            string second = Fingerprint(flags[1]);
            server.Signal(SIGHUP);
            await server.WaitForLinesAsync($"tls-sha256={second}");

            await c.StartTlsAsync();
            Assert.Equal(first, Fingerprint(c.RemoteCertificate!));
            await c.CommandAsync("EHLO client.example", 250);

            // And handshakes racing a storm of reloads all complete.
            var racing = Enumerable.Range(0, 8).Select(async _ =>
            {
                await using SmtpConnection r = await StartTlsAsync(server);
                await r.CommandAsync("QUIT", 221);
            }).ToArray();
            for (int i = 0; i < 50; i++) server.Signal(SIGHUP);
            await Task.WhenAll(racing);
            Assert.Equal(0, await server.StopAsync());
        }
        finally
        {
            Directory.Delete(tlsDirectory, recursive: true);
        }
    }

    private static string RecipientsFile(EdgeMtaProcess server) => Path.Combine(server.WorkDirectory, "recipients");

    private static async Task<SmtpConnection> OpenTransactionAsync(EdgeMtaProcess server)
    {
        SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<sender@example.org>", 250);
        return c;
    }

    private static async Task<SmtpConnection> StartTlsAsync(EdgeMtaProcess server)
    {
        SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("STARTTLS", 220);
        await c.StartTlsAsync();
        await c.CommandAsync("EHLO client.example", 250);
        return c;
    }

    private static string Fingerprint(string certificateFile)
    {
        using X509Certificate2 certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile));
        return certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    private static string Fingerprint(X509Certificate certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);
}
