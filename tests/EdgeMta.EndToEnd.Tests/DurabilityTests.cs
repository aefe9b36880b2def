using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// "Only after the spool write is durable is 250 sent" and "nothing acknowledged is lost" (PROTOCOL.md):
/// the server is killed with SIGKILL (no shutdown code runs) while sessions are busy, restarted on the
/// same spool, and every message a client saw 250 for must come back byte for byte; the message that was
/// still inside DATA must not.
/// </summary>
public sealed class DurabilityTests(ITestOutputHelper output)
{
    private const int Connections = 5, MessagesPerConnection = 10;

    [Fact]
    public async Task EveryAcknowledgedMessageSurvivesSigkillAndARestartOnTheSameSpool()
    {
        string spool;
        var acknowledged = new List<SentMessage>();
        await using (EdgeMtaProcess first = await EdgeMtaProcess.StartAsync(output))
        {
            first.KeepWorkDirectory = true;
            spool = first.SpoolDirectory;

            // Concurrent sessions, so acknowledgements come out of shared (group) commits.
            Task<List<SentMessage>>[] senders = Enumerable.Range(0, Connections).Select(async n =>
            {
                var mine = new List<SentMessage>();
                await using SmtpConnection c = await first.OpenSessionAsync();
                await c.CommandAsync($"EHLO sender{n}.example", 250);
                for (int i = 0; i < MessagesPerConnection; i++)
                {
                    byte[] body = Encoding.ASCII.GetBytes($"Subject: durable {n}/{i}\r\n\r\n{new string((char)('a' + i), 100 * (i + 1))}\r\n");
                    mine.Add(await c.SendMessageAsync($"s{n}@example.com", [$"r{n}.{i}@example.org"], body));
                }
                return mine;
            }).ToArray();
            foreach (List<SentMessage> m in await Task.WhenAll(senders)) acknowledged.AddRange(m);

            // One more transaction is inside DATA when the process dies.
            SmtpConnection inFlight = await first.OpenSessionAsync();
            await inFlight.CommandAsync("EHLO unlucky.example", 250);
            await inFlight.CommandAsync("MAIL FROM:<unlucky@example.com>", 250);
            await inFlight.CommandAsync("RCPT TO:<b@example.org>", 250);
            await inFlight.CommandAsync("DATA", 354);
            await inFlight.SendAsync("Subject: never acknowledged\r\n\r\nhalf");

            first.Signal(EdgeMtaProcess.SIGKILL);
            int exit = await first.WaitForExitAsync(EdgeMtaProcess.StopTimeout);
            Assert.NotEqual(0, exit);
            await inFlight.DisposeAsync();
        }

        string workToDelete = Path.GetDirectoryName(spool)!;
        try
        {
            SentMessage afterRestart;
            await using EdgeMtaProcess second = await EdgeMtaProcess.StartAsync(output, spool: spool);
            await using (SmtpConnection c = await second.OpenSessionAsync())
            {
                await c.CommandAsync("EHLO again.example", 250);
                afterRestart = await c.SendMessageAsync("after@example.com", ["b@example.org"], Mail.Crlf("Subject: after the restart", "", "body"));
                await c.CommandAsync("QUIT", 221);
            }
            Assert.DoesNotContain(acknowledged, m => m.QueueId == afterRestart.QueueId);

            SpoolExport export = await second.StopAndExportAsync();
            Assert.True(export.Count == acknowledged.Count + 1,
                $"The spool should hold the {acknowledged.Count} acknowledged messages and the one after the restart; it holds {export.Count}");
            Mail.AssertExportedExactly(export, [.. acknowledged, afterRestart]);
            ToolResult verify = await second.RunSpoolAsync("verify");
            Assert.True(verify.ExitCode == 0, $"After recovery and a clean stop the spool verifies\n{verify}");
        }
        finally
        {
            try { Directory.Delete(workToDelete, recursive: true); } catch (IOException) { }
        }
    }
}
