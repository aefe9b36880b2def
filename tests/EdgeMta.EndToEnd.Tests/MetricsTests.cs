using System.Net.Sockets;
using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// `--metrics-listen` on the real binary: the scrape after real mail, checked value by value and as a whole
/// by Prometheus' own parser (promtool), the flag's validation, and bad clients on the metrics port while
/// an SMTP session carries on. The deadlines themselves (slowloris, a client that never reads) are tested
/// on a fake clock in EdgeMta.Metrics.Tests; here only what the binary adds.
/// </summary>
public sealed class MetricsTests(ITestOutputHelper output)
{
    private static readonly string[] MetricsFlags = ["--metrics-listen", "127.0.0.1:0"];

    [Fact]
    public async Task AScrapeAfterTwoMessagesCountsThemAndPassesPromtool()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, MetricsFlags);
        int port = await MetricsScrape.PortAsync(server);
        string[] lines = server.Log.Split('\n').Where(l => l.StartsWith("out| ", StringComparison.Ordinal)).ToArray();
        Assert.StartsWith("out| listening on 127.0.0.1:", lines[0]);
        Assert.StartsWith("out| metrics on 127.0.0.1:", lines[1]); // right after the listening lines

        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.SendMessageAsync("a@client.example", ["b@example.org"], Mail.Crlf("Subject: one", "", "first"));
            await c.SendMessageAsync("a@client.example", ["b@example.org", "c@example.org"], Mail.Crlf("Subject: two", "", "second"));
            await c.CommandAsync("VRFY someone", 252);
            await c.CommandAsync("XYZZY", 500);
            await c.CommandAsync("QUIT", 221);
        }

        string body = await MetricsScrape.ScrapeAsync(port);
        output.WriteLine(body);
        await MetricsScrape.AssertPromtoolAcceptsAsync(body, output);
        Dictionary<string, double> s = MetricsScrape.Samples(body);
        Assert.Equal(2, s["edgemta_messages_accepted_total"]);
        Assert.Equal(2, s["edgemta_message_size_bytes_count"]);
        Assert.Equal(2, s["edgemta_message_size_bytes_bucket{le=\"1000\"}"]); // each is some 300 bytes with our Received:
        Assert.Equal(s["edgemta_messages_accepted_bytes_total"], s["edgemta_message_size_bytes_sum"]);
        Assert.InRange(s["edgemta_messages_accepted_bytes_total"], 2 * 20, 2 * 1000);
        // EHLO, 2 MAIL, 3 RCPT, 2 queued: 8 times 250; one 220, two 354, one 252, one 500, one 221.
        Assert.Equal(8, s["edgemta_replies_total{code=\"250\"}"]);
        Assert.Equal(1, s["edgemta_replies_total{code=\"220\"}"]);
        Assert.Equal(2, s["edgemta_replies_total{code=\"354\"}"]);
        Assert.Equal(1, s["edgemta_replies_total{code=\"252\"}"]);
        Assert.Equal(1, s["edgemta_replies_total{code=\"500\"}"]);
        Assert.Equal(1, s["edgemta_replies_total{code=\"221\"}"]);
        Assert.Equal(1, s["edgemta_commands_total{command=\"EHLO\"}"]);
        Assert.Equal(2, s["edgemta_commands_total{command=\"MAIL\"}"]);
        Assert.Equal(3, s["edgemta_commands_total{command=\"RCPT\"}"]);
        Assert.Equal(2, s["edgemta_commands_total{command=\"DATA\"}"]);
        Assert.Equal(1, s["edgemta_commands_total{command=\"VRFY\"}"]);
        Assert.Equal(1, s["edgemta_commands_total{command=\"QUIT\"}"]);
        Assert.Equal(1, s["edgemta_commands_total{command=\"unknown\"}"]);
        Assert.Equal(0, s["edgemta_commands_total{command=\"BDAT\"}"]);
        Assert.Equal(1, s["edgemta_connections_total{result=\"accepted\"}"]);
        Assert.Equal(0, s["edgemta_connections_total{result=\"rejected_limit\"}"]);
        Assert.Equal(0, s["edgemta_tls_handshakes_total{result=\"failed\"}"]);
        // --sync always: each 250 followed a flush; two sequential messages, two batches at least one each.
        Assert.InRange(s["edgemta_spool_flush_seconds_count"], 1, 2);
        Assert.True(s["edgemta_spool_flush_seconds_sum"] > 0);
        Assert.True(s["edgemta_spool_segments"] >= 1 && s["edgemta_spool_bytes"] > 0 && s["edgemta_spool_disk_free_bytes"] > 0, body);
        ToolResult version = await ToolRun.RunAsync(EdgeMtaBinary.Require(), ["--version"], TimeSpan.FromSeconds(30), output);
        Assert.Equal(1, s[$"edgemta_build_info{{version=\"{version.StandardOutput.Trim()}\"}}"]);
        Assert.DoesNotContain("127.0.0.1", body); // never a client address
    }

    [Fact]
    public async Task TlsHandshakesAreCountedOkAndFailed()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, [.. TestCertificate.Flags, .. MetricsFlags]);
        int port = await MetricsScrape.PortAsync(server);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("STARTTLS", 220);
            await c.StartTlsAsync();
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("QUIT", 221);
        }
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("STARTTLS", 220);
            await c.SendAsync("this is no ClientHello\r\n");
            Assert.True(await c.IsClosedAsync(MetricsScrape.Timeout), "a failed handshake closes the connection");
        }
        // The failure is counted as the transport closes the connection: scrape until it shows (bounded).
        var deadline = DateTime.UtcNow + MetricsScrape.Timeout;
        Dictionary<string, double> s;
        while ((s = MetricsScrape.Samples(await MetricsScrape.ScrapeAsync(port)))["edgemta_tls_handshakes_total{result=\"failed\"}"] == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the failed handshake was never counted");
            await Task.Delay(20);
        }
        Assert.Equal(1, s["edgemta_tls_handshakes_total{result=\"ok\"}"]);
        Assert.Equal(1, s["edgemta_tls_handshakes_total{result=\"failed\"}"]);
        Assert.Equal(2, s["edgemta_commands_total{command=\"STARTTLS\"}"]);
        Assert.Equal(3, s["edgemta_commands_total{command=\"EHLO\"}"]);
        Assert.Equal(4, s["edgemta_replies_total{code=\"220\"}"]); // two greetings, two "ready to start TLS"
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("127.0.0.1")]
    [InlineData("[::1]")]
    [InlineData("127.0.0.1:99999")]
    public async Task ABadMetricsAddressIsOneLineAndExitTwo(string value)
    {
        ToolResult r = await ToolRun.RunAsync(EdgeMtaBinary.Require(), ["--listen", "127.0.0.1:0", "--metrics-listen", value], TimeSpan.FromSeconds(30), output);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"edgemta: --metrics-listen: '{value}' is not ADDR:PORT (e.g. 127.0.0.1:2525 or [::1]:2525)", r.StandardError.Trim());
        Assert.Equal("", r.StandardOutput);
    }

    [Fact]
    public async Task AMetricsAddressInUseIsAFailureToStart()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        taken.Listen();
        string address = taken.LocalEndPoint!.ToString()!;
        ToolResult r = await ToolRun.RunAsync(EdgeMtaBinary.Require(), ["--listen", "127.0.0.1:0", "--metrics-listen", address], TimeSpan.FromSeconds(30), output);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(r.StandardError.Split('\n'), l => l.StartsWith($"edgemta: cannot start: --metrics-listen {address}: ", StringComparison.Ordinal));
        Assert.DoesNotContain("listening on", r.StandardOutput);
    }

    [Fact]
    public async Task BadClientsOnTheMetricsPortLeaveSmtpServing()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, MetricsFlags);
        int port = await MetricsScrape.PortAsync(server);
        await using SmtpConnection smtp = await server.OpenSessionAsync();
        await smtp.CommandAsync("EHLO client.example", 250);

        HttpExchange post = await MetricsScrape.ExchangeAsync(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal(405, post.Status);
        Assert.Equal("GET", post.Fields["Allow"]);
        Assert.Equal(404, (await MetricsScrape.ExchangeAsync(port, "GET /debug HTTP/1.1\r\n\r\n")).Status);
        HttpExchange huge = await MetricsScrape.ExchangeAsync(port, "GET /" + new string('a', 1 << 20) + " HTTP/1.1\r\n\r\n");
        Assert.True(huge.Status == 431 || (huge.StatusLine.Length == 0 && huge.Reset), $"1 MB request line: `{huge.StatusLine}`, reset {huge.Reset}");

        // Four slow clients take every slot of the metrics port, a fifth is closed at once, and one more asks
        // for metrics and never reads; SMTP carries a whole transaction meanwhile.
        var slow = new List<Socket>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                slow.Add(s);
                await s.ConnectAsync("127.0.0.1", port);
                await s.SendAsync("GET /metrics HTTP/1.1\r\nHo"u8.ToArray(), SocketFlags.None);
            }
            HttpExchange fifth = await MetricsScrape.ExchangeAsync(port, "GET /metrics HTTP/1.1\r\n\r\n");
            Assert.Equal("", fifth.StatusLine + fifth.Body);

            await smtp.SendMessageAsync("a@client.example", ["b@example.org"], Mail.Crlf("Subject: meanwhile", "", "still served"));
            await smtp.CommandAsync("NOOP", 250);
        }
        finally
        {
            foreach (Socket s in slow) s.Dispose();
        }
        using (var neverReads = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            neverReads.ReceiveBufferSize = 4096;
            await neverReads.ConnectAsync("127.0.0.1", port);
            await neverReads.SendAsync("GET /metrics HTTP/1.1\r\n\r\n"u8.ToArray(), SocketFlags.None);
            await smtp.CommandAsync("NOOP", 250);
        }
        await smtp.CommandAsync("QUIT", 221);

        // The slots came back once the slow clients left: a scrape works and saw the message.
        var deadline = DateTime.UtcNow + MetricsScrape.Timeout;
        HttpExchange scrape;
        while ((scrape = await MetricsScrape.ExchangeAsync(port, "GET /metrics HTTP/1.1\r\n\r\n")).Status != 200)
        {
            Assert.True(DateTime.UtcNow < deadline, "the metrics port did not serve again after the slow clients left");
            await Task.Delay(50);
        }
        Assert.Equal(1, MetricsScrape.Samples(scrape.Body)["edgemta_messages_accepted_total"]);
        Assert.False(server.HasExited);
    }
}
