// The content check against the real rspamd (docs/SCREENING.md "Content check by rspamd"): edgemta and swaks run in
// rspamd's network namespace (RspamdServer.Launcher), edgemta checks each message with --rspamd before the spool.
// A message whose Subject hits the fixture's local rule is rejected with 550 5.7.1 and rspamd's own message, and is
// not stored; an ordinary one is stored with rspamd's X-Spam-Score right after our Received: line (read back with
// `edgemta spool export`), and each verdict is one `rspamd` log line.
using System.Text;
using System.Text.RegularExpressions;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

public sealed class RspamdTests(RspamdServer rspamd, ITestOutputHelper output) : IClassFixture<RspamdServer>
{
    private Task<EdgeMtaProcess> StartEdgeMta() =>
        EdgeMtaProcess.StartAsync(output, ["--rspamd", rspamd.Url, "--rspamd-fail", "tempfail", "--hostname", "mx.example.org"],
            launcher: rspamd.Launcher);

    private Task<ToolResult> Send(EdgeMtaProcess server, string subject) =>
        ToolRun.RunAsync(rspamd.Launcher[0], [rspamd.Launcher[1], "/usr/bin/swaks", "--server", $"127.0.0.1:{server.Port}", "--timeout", "30",
            "--hide-informational", "--helo", "client.example.org", "--from", "alice@example.org", "--to", "bob@example.com",
            "--header", $"Subject: {subject}"], TimeSpan.FromSeconds(60), output);

    private async Task<SpoolExport> Export(EdgeMtaProcess server)
    {
        string to = Path.Combine(server.WorkDirectory, "export-" + Guid.NewGuid().ToString("N"));
        ToolResult r = await ToolRun.RunAsync(EdgeMtaBinary.Require(), ["spool", "export", "--spool", server.SpoolDirectory, "--out", to],
            TimeSpan.FromSeconds(30), output);
        Assert.True(r.ExitCode == 0, r.ToString());
        return SpoolExport.Read(to);
    }

    [Fact]
    public async Task AMessageRspamdRejectsGets550WithItsMessageAndIsNotStored()
    {
        await using EdgeMtaProcess server = await StartEdgeMta();
        ToolResult r = await Send(server, $"please {RspamdServer.RejectSubject} now");
        Assert.Contains($"<** 550 5.7.1 {RspamdServer.RejectMessage}", r.StandardOutput);
        string[] lines = await server.WaitForLinesAsync(" rspamd id=");
        Assert.Matches(@" rspamd id=\S+ client=127\.0\.0\.1 action=reject score=-?\d+\.\d\d required=15\.00 ms=\d+", lines[0]);
        Assert.Equal(0, (await Export(server)).Count);
    }

    [Fact]
    public async Task AMessageRspamdAcceptsIsStoredWithItsScoreRightAfterOurReceivedLine()
    {
        await using EdgeMtaProcess server = await StartEdgeMta();
        ToolResult r = await Send(server, "lunch on friday");
        Assert.Matches(@"<-  250 2\.0\.0 OK queued as \S+", r.StandardOutput);
        string[] lines = await server.WaitForLinesAsync(" rspamd id=");
        Assert.Matches(@" action=(no-action|add-header) score=-?\d+\.\d\d required=15\.00", lines[0]);

        ExportedMessage stored = Assert.Single((await Export(server)).ById.Values);
        string afterReceived = Encoding.UTF8.GetString(stored.ClientMessage);
        Assert.Matches(new Regex(@"^(X-Spam: Yes\r\n)?X-Spam-Score: -?\d+\.\d\d / 15\.00\r\n"), afterReceived);
        Assert.Contains("\r\nSubject: lunch on friday\r\n", afterReceived);
    }
}
