// Crash tests with a real process: the CrashWriter appends under load and is killed with SIGKILL at a
// random moment, a few rounds on the same spool. After each kill: every message it reported committed
// reads back byte for byte, nothing uncommitted (aborted, or cut short) is visible, and recovery run
// twice gives the same spool.
using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace EdgeMta.Spool.Tests;

public class CrashTests(ITestOutputHelper output)
{
    private static string WriterDll()
    {
        string dll = Path.Combine(AppContext.BaseDirectory.Replace("EdgeMta.Spool.Tests", "EdgeMta.Spool.CrashWriter"), "EdgeMta.Spool.CrashWriter.dll");
        Assert.True(File.Exists(dll), $"crash writer not built at {dll}");
        return dll;
    }

    [Fact]
    public async Task MessagesReportedCommittedSurviveSigkillAndNothingElseIsVisible()
    {
        using var dir = new TempDir();
        string spoolDir = dir.Sub("spool");
        var committed = new Dictionary<string, long>();   // over all rounds
        var rnd = new Random(20261122);
        const int Rounds = 4;
        for (int round = 0; round < Rounds; round++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { WriterDll(), spoolDir, "24", (round * 100_000_000L).ToString(), (1 << 20).ToString() }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var ready = new TaskCompletionSource();
            var lines = new List<string>();
            var reader = Task.Run(async () =>
            {
                string? line;
                while ((line = await p.StandardOutput.ReadLineAsync()) is not null)
                {
                    if (line.StartsWith("ready", StringComparison.Ordinal)) ready.TrySetResult();
                    else lock (lines) lines.Add(line);
                }
            });
            var stderr = p.StandardError.ReadToEndAsync();
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await Task.Delay(rnd.Next(400, 2500));
            p.Kill();   // SIGKILL on Linux
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await reader.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(string.IsNullOrEmpty(await stderr), await stderr);
            lock (lines)
            {
                foreach (var l in lines)
                {
                    var f = l.Split(' ');
                    Assert.True(f[0] == "C", $"round {round}: the writer reported {l}");
                    committed.Add(f[1], long.Parse(f[2]));
                }
            }
            Assert.NotEmpty(committed);

            // Recovery (as the server's start would run it), then everything reported must read back.
            RecoveryReport first;
            using (Spool.Open(new SpoolOptions { Directory = spoolDir, SegmentSize = 1 << 20 }, out first)) { }
            Assert.Empty(first.Damaged);
            var seen = new Dictionary<string, (long Seed, bool Ok)>();
            var report = SpoolReader.Read(spoolDir, (in SpoolRecord r) =>
            {
                string sender = Encoding.ASCII.GetString(r.Envelope.ReversePath);
                long seed = long.Parse(sender.AsSpan(1, sender.IndexOf('@') - 1));
                bool ok = !r.Envelope.HeloName.SequenceEqual("abort"u8) && r.Data.SequenceEqual(CrashContent.Data(seed));
                seen.Add(r.QueueIdString, (seed, ok));
            });
            Assert.True(report.IsClean);
            foreach (var (id, seed) in committed)
            {
                Assert.True(seen.TryGetValue(id, out var s), $"round {round}: committed {id} (seed {seed}) is lost");
                Assert.Equal(seed, s.Seed);
            }
            // Nothing uncommitted or aborted: every visible record is a whole, non-aborted message. Records
            // made durable just before the kill but never reported are allowed (the client retries: a duplicate).
            Assert.All(seen, kv => Assert.True(kv.Value.Ok, $"record {kv.Key} is not a whole committed message"));

            // Recovery again: the same spool, nothing new found.
            RecoveryReport second;
            using (Spool.Open(new SpoolOptions { Directory = spoolDir, SegmentSize = 1 << 20 }, out second)) { }
            Assert.True(second.IsClean);
            Assert.Equal(first.Messages, second.Messages);
            Assert.Equal(seen.Count, second.Messages);
            output.WriteLine($"round {round}: {committed.Count} reported committed so far, {seen.Count} in the spool, torn tail bytes cut {first.TornTailBytes}");
        }
    }
}
