using System.Text.Json;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Postfix's smtp-source as a concurrent load (20 sessions, 2,000 messages), and the spool subcommands
/// over what it left: export, list, stats --json, verify. Counts, never times: speed is the benchmarks' job.
/// </summary>
public sealed class LoadAndSpoolTests(ITestOutputHelper output)
{
    private const int Sessions = 20, Messages = 2000;

    private static string SmtpSource => File.Exists("/usr/sbin/smtp-source") ? "/usr/sbin/smtp-source" : "smtp-source";

    [Fact]
    public async Task SmtpSourceSends2000MessagesOver20ConnectionsAndSpoolExportHasExactly2000()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);

        // smtp-source(1): -s parallel sessions, -m messages in all, -l message length, -f/-t the envelope.
        // It exits non-zero (fatal) on any unexpected reply, so exit 0 means 2,000 250s to the end of data.
        ToolResult load = await ToolRun.RunAsync(SmtpSource,
            ["-s", $"{Sessions}", "-m", $"{Messages}", "-l", "1024", "-f", "from@example.com", "-t", "to@example.com", $"127.0.0.1:{server.Port}"],
            TimeSpan.FromSeconds(90), output);
        Assert.True(load.ExitCode == 0, $"smtp-source reported a failure\n{load}");

        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(Messages, export.Count);
        foreach (ExportedMessage m in export.ById.Values)
        {
            Assert.Equal("from@example.com", m.Sender);
            Assert.Equal(["to@example.com"], m.Recipients);
            Assert.True(m.ClientMessage.Length >= 1024, $"{m.Id}: {m.ClientMessage.Length} bytes after Received:, smtp-source sent 1024 of body");
        }

        // The spool subcommands agree with the export (the server is stopped: the spool is at rest).
        ToolResult verify = await server.RunSpoolAsync("verify");
        Assert.True(verify.ExitCode == 0, $"spool verify should pass on a spool written by a clean run\n{verify}");

        ToolResult list = await server.RunSpoolAsync("list");
        Assert.True(list.ExitCode == 0, list.ToString());
        int listed = list.StandardOutput.Split('\n').Count(l => l.Contains("from@example.com", StringComparison.OrdinalIgnoreCase));
        Assert.True(listed == Messages, $"spool list should show one line a message ({Messages}), it showed {listed} with the sender");

        ToolResult stats = await server.RunSpoolAsync("stats", "--json");
        Assert.True(stats.ExitCode == 0, stats.ToString());
        using JsonDocument doc = JsonDocument.Parse(stats.StandardOutput);
        long? count = FindCount(doc.RootElement);
        Assert.True(count == Messages, $"spool stats --json should count {Messages} messages (a number property named like \"messages\"): {stats.StandardOutput}");
    }

    [Fact]
    public async Task SpoolVerifyFailsOnADamagedSpool()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.SendMessageAsync("a@example.com", ["b@example.com"], Mail.Crlf("Subject: to be damaged", "", new string('z', 4000)));
            // A record after it: damage to the last record of a segment is indistinguishable from a write torn
            // by a host crash mid-flush (never acknowledged), which recovery sets aside as a torn tail instead.
            await c.SendMessageAsync("a@example.com", ["b@example.com"], Mail.Crlf("Subject: intact", "", "after the damaged one"));
            await c.CommandAsync("QUIT", 221);
        }
        await server.StopAsync();
        Assert.Equal(0, (await server.RunSpoolAsync("verify")).ExitCode);

        // Flip bytes inside the stored message body (found by its run of 'z'), whatever the file layout.
        int flipped = 0;
        foreach (string f in Directory.EnumerateFiles(server.SpoolDirectory, "*", SearchOption.AllDirectories))
        {
            byte[] bytes = await File.ReadAllBytesAsync(f);
            int at = bytes.AsSpan().IndexOf("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"u8);
            if (at < 0) continue;
            for (int i = at + 1000; i < at + 1016; i++) bytes[i] ^= 0x5A;
            await File.WriteAllBytesAsync(f, bytes);
            flipped++;
        }
        Assert.True(flipped > 0, "The message body was not found in any spool file (is the spool compressed or encrypted?)");
        ToolResult damaged = await server.RunSpoolAsync("verify");
        Assert.True(damaged.ExitCode == 1, $"spool verify should exit 1 on damage\n{damaged}");
    }

    private static long? FindCount(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        foreach (JsonProperty p in e.EnumerateObject())
        {
            string n = p.Name.ToLowerInvariant();
            if (p.Value.ValueKind == JsonValueKind.Number && (n == "messages" || n == "count" || n == "messagecount" || n == "message_count"))
            {
                return p.Value.GetInt64();
            }
        }
        foreach (JsonProperty p in e.EnumerateObject())
        {
            if (FindCount(p.Value) is { } c) return c;
        }
        return null;
    }
}
