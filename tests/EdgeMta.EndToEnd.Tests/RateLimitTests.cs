using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The per-client rate limits of docs/SCREENING.md on the real binary: with small limits, the N+1th connection,
/// MAIL and RCPT from one client within its 60 s window get the contract's replies, each with its
/// `rate-limited` log line and its count in /metrics. `--trusted-network 192.0.2.0/24` takes the exemption
/// away from loopback so that the test's own client is counted; without it loopback is exempt, as before.
/// The window's end is tested on a fake clock (EdgeMta.Policy.Tests, EdgeMta.Server.Tests); each test here
/// runs well inside one window.
/// </summary>
public sealed class RateLimitTests(ITestOutputHelper output)
{
    private static readonly string[] CountLoopback = ["--trusted-network", "192.0.2.0/24", "--metrics-listen", "127.0.0.1:0"];

    [Fact]
    public async Task TheConnectionOverTheRateGets421AndIsClosed()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, [.. CountLoopback, "--client-connection-rate", "3"]);
        for (int i = 0; i < 3; i++)
        {
            await using SmtpConnection ok = await server.OpenSessionAsync();
            await ok.CommandAsync("QUIT", 221);
        }
        await using (SmtpConnection fourth = await server.ConnectAsync())
        {
            SmtpReply reply = await fourth.ExpectAsync(421, "4.7.0");
            Assert.Equal("4.7.0 Error: too many connections from 127.0.0.1", reply.Text);
            Assert.True(await fourth.IsClosedAsync(TimeSpan.FromSeconds(10)), fourth.Transcript);
        }
        string[] lines = await server.WaitForLinesAsync("rate-limited");
        Assert.Single(lines);
        Assert.EndsWith("rate-limited client=127.0.0.1 kind=connection limit=3", lines[0]);
        await AssertCountedAsync(server, "connection");
    }

    [Fact]
    public async Task TheMailOverTheRateGets450AndTheSessionGoesOn()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, [.. CountLoopback, "--client-message-rate", "2"]);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        for (int i = 0; i < 2; i++)
        {
            await c.CommandAsync("MAIL FROM:<a@client.example>", 250);
            await c.CommandAsync("RSET", 250);
        }
        SmtpReply refused = await c.CommandAsync("MAIL FROM:<a@client.example>", 450, "4.7.1");
        Assert.Equal("4.7.1 Error: too much mail from 127.0.0.1", refused.Text);
        await c.CommandAsync("RCPT TO:<b@example.org>", 503); // the refused MAIL began nothing
        await c.CommandAsync("NOOP", 250);
        string[] lines = await server.WaitForLinesAsync("rate-limited");
        Assert.EndsWith("rate-limited client=127.0.0.1 kind=mail limit=2", Assert.Single(lines));
        await AssertCountedAsync(server, "mail");
    }

    [Fact]
    public async Task TheRecipientOverTheRateGets450AndTheMessageGoesToTheOthers()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, [.. CountLoopback, "--client-recipient-rate", "3"]);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<a@client.example>", 250);
        for (int i = 0; i < 3; i++)
        {
            await c.CommandAsync($"RCPT TO:<r{i}@example.org>", 250);
        }
        SmtpReply refused = await c.CommandAsync("RCPT TO:<r3@example.org>", 450, "4.7.1");
        Assert.Equal("4.7.1 Error: too many recipients from 127.0.0.1", refused.Text);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync(Mail.Crlf("Subject: three of four", "", "body", "."));
        await c.ExpectAsync(250);
        string[] accepted = await server.WaitForLinesAsync("message-accepted");
        Assert.Contains("rcpts=3", Assert.Single(accepted));
        Assert.EndsWith("rate-limited client=127.0.0.1 kind=rcpt limit=3", Assert.Single(server.LinesWith("rate-limited")));
        await AssertCountedAsync(server, "rcpt");
    }

    [Fact]
    public async Task LoopbackIsExemptByDefault()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--client-connection-rate", "1"]);
        for (int i = 0; i < 3; i++)
        {
            await using SmtpConnection ok = await server.OpenSessionAsync();
            await ok.CommandAsync("QUIT", 221);
        }
        Assert.Empty(server.LinesWith("rate-limited"));
    }

    private async Task AssertCountedAsync(EdgeMtaProcess server, string kind)
    {
        string body = await MetricsScrape.ScrapeAsync(await MetricsScrape.PortAsync(server));
        output.WriteLine(body);
        Dictionary<string, double> s = MetricsScrape.Samples(body);
        foreach (string k in (string[])["connection", "mail", "rcpt"])
        {
            Assert.Equal(k == kind ? 1 : 0, s[$"edgemta_rate_limited_total{{kind=\"{k}\"}}"]);
        }
    }
}
