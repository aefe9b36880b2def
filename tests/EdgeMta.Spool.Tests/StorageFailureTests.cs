// Storage failures answer 4xx, never 5xx, and the spool keeps working (RFC 5321 §4.2.5 452, §6.1):
// a full disk gives Full (452 4.3.1) and Readiness Full; space freed, appends resume.
// A failed flush fails its whole batch (451 4.3.0) and retires the segment; the next commit succeeds.
using System.Diagnostics;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool.Tests;

public class StorageFailureTests
{
    private static bool Run(string file, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            if (!p.WaitForExit(30_000)) { p.Kill(); return false; }
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    /// <summary>A 2 MiB tmpfs in the test's own directory, unmounted on dispose; null where mount is refused.</summary>
    private sealed class SmallFilesystem : IDisposable
    {
        public string Path { get; }
        private SmallFilesystem(string path) { Path = path; }
        public static SmallFilesystem? TryMount(string parent)
        {
            string path = System.IO.Path.Combine(parent, "fs");
            Directory.CreateDirectory(path);
            return Run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", path) ? new SmallFilesystem(path) : null;
        }
        public void Dispose() => Run("umount", Path);
    }

    private static SpoolOptions FullOptions(string dir) => new()
    {
        Directory = dir, SegmentSize = 128 << 10, FirstBufferSize = 4096, MaxMessageSize = 1 << 20,
        MinimumFreeBytes = 256 << 10, FreeSpaceCheckIntervalMs = 0,
    };

    [Fact]
    public async Task FullDiskGivesFullNotFailureAndAppendsResumeWhenSpaceIsFreed()
    {
        using var dir = new TempDir();
        using var fs = SmallFilesystem.TryMount(dir.Path);
        string spoolDir = fs is null ? dir.Sub("spool") : System.IO.Path.Combine(fs.Path, "spool");
        string filler = fs is null ? dir.Sub("filler") : System.IO.Path.Combine(fs.Path, "filler");
        File.WriteAllBytes(filler, new byte[1 << 20]);
        bool diskFull = false;   // the fault-injecting fallback, where mount is refused
        var committed = new Dictionary<string, int>();
        var results = new List<CommitResult>();
        await using (var spool = MessageSpool.Open(FullOptions(spoolDir), out _))
        {
            if (fs is null) spool.InjectCreateError = () => diskFull ? LibC.ENOSPC : 0;
            for (int i = 0; i < 200 && !results.Contains(CommitResult.Full); i++)
            {
                if (fs is null && i == 40) diskFull = true;
                // Alternate packed (first buffer) and streamed messages: Full comes from either path.
                var (r, id) = await TestSpools.Write(spool, i, i % 2 == 0 ? 1500 : 30_000);
                results.Add(r);
                if (r == CommitResult.Committed) committed.Add(id, i);
            }
            Assert.Contains(CommitResult.Full, results);
            Assert.DoesNotContain(CommitResult.Failed, results);
            if (fs is not null) Assert.Equal(SpoolReadiness.Full, await TestSpools.Settled(spool, SpoolReadiness.Full));

            File.Delete(filler);
            diskFull = false;
            Assert.Equal(SpoolReadiness.Ready, await TestSpools.Settled(spool, SpoolReadiness.Ready));
            for (int i = 1000; i < 1010; i++)
            {
                var (r, id) = await TestSpools.Write(spool, i, i % 2 == 0 ? 1500 : 30_000);
                Assert.Equal(CommitResult.Committed, r);
                committed.Add(id, i);
            }
        }
        var all = TestSpools.ReadAll(spoolDir, out var report);
        Assert.True(report.IsClean);
        Assert.Equal(committed.Count, all.Count);
        foreach (var (id, seed) in committed)
            Assert.Equal(TestSpools.Content(seed, seed % 2 == 0 ? 1500 : 30_000), all[id].Data);
    }

    [Fact]
    public async Task FailedFlushFailsItsBatchRetiresTheSegmentAndTheSpoolKeepsWorking()
    {
        using var dir = new TempDir();
        var committed = new List<string>();
        await using (var spool = TestSpools.Open(dir.Path))
        {
            var (ok, id0) = await TestSpools.Write(spool, 1, 100);
            Assert.Equal(CommitResult.Committed, ok);
            committed.Add(id0);
            // An open message, streaming (20,000 bytes: past four 4 KiB chunks, the stream threshold), when the write fails. Its region
            // is in the failed segment or, if the writer reached it after the failure, in the next one.
            var open = spool.Begin("192.0.2.1"u8, "h"u8, "a@b"u8, ""u8);
            string openId = System.Text.Encoding.ASCII.GetString(open.QueueId);
            open.AddRecipient("c@d"u8, ""u8);
            open.Append(TestSpools.Content(2, 20_000));

            spool.InjectFlushError = () => 5;   // EIO
            var (failed, _) = await TestSpools.Write(spool, 3, 100);
            Assert.Equal(CommitResult.Failed, failed);
            spool.InjectFlushError = null;

            // Failed in the retired segment (nothing more commits there: RetiredSegmentTests), or committed in
            // the next; either way what it says is what a restart finds.
            if (await open.CommitAsync() == CommitResult.Committed) committed.Add(openId);
            var (again, id1) = await TestSpools.Write(spool, 4, 100);
            Assert.Equal(CommitResult.Committed, again);
            committed.Add(id1);
        }
        var all = TestSpools.ReadAll(dir.Path, out _);
        Assert.Equal(committed.Count, all.Count);   // the failed one was never acknowledged: the client retries it
        foreach (var id in committed) Assert.True(all.ContainsKey(id));
        Assert.Equal(TestSpools.Content(4, 100), all[committed[^1]].Data);
    }

    // Audit finding: with the spool removed by hand while running, 226 more messages got 250 from the segment
    // still open: durable in a file no longer in the spool, and gone at restart.
    [Fact]
    public async Task ACommitToASegmentRemovedFromTheSpoolFailsAndTheNextGoesToANewOne()
    {
        using var dir = new TempDir();
        await using var spool = TestSpools.Open(dir.Path);
        Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 1, 100)).Result);
        // The first segment holds the record; the supply's spare (made ahead) sorts after it.
        string[] segments = Directory.GetFiles(dir.Path, "*.seg");
        Array.Sort(segments, StringComparer.Ordinal);
        File.Delete(segments[0]);
        Assert.Equal(CommitResult.Failed, (await TestSpools.Write(spool, 2, 100)).Result);
        var (again, id) = await TestSpools.Write(spool, 3, 100);
        Assert.Equal(CommitResult.Committed, again);
        Assert.True(TestSpools.ReadAll(dir.Path, out _).ContainsKey(id));
    }

    // Audit finding: on a full disk, recovery that had a damaged record to copy aside failed ("No space left on
    // device"), and the server would not start. Now the region stays in place, uncut, until there is room.
    [Fact]
    public async Task RecoveryOnAFullDiskLeavesDamageInPlaceAndStartsAndSetsItAsideOnceThereIsRoom()
    {
        using var dir = new TempDir();
        using var fs = SmallFilesystem.TryMount(dir.Path);
        Assert.True(fs is not null, "needs a small tmpfs (mount, as root)");
        string spoolDir = System.IO.Path.Combine(fs!.Path, "spool");
        SpoolOptions options = new()
        {
            Directory = spoolDir, SegmentSize = 128 << 10, FirstBufferSize = 4096, MaxMessageSize = 1 << 20, MinimumFreeBytes = 0,
        };
        await using (var spool = MessageSpool.Open(options, out _))
        {
            for (int i = 1; i <= 3; i++) Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, i, 1000)).Result);
        }
        string segment = Assert.Single(Directory.GetFiles(spoolDir, "*.seg"));
        byte[] bytes = File.ReadAllBytes(segment);
        int at = bytes.AsSpan().IndexOf(TestSpools.Content(2, 1000).AsSpan(0, 32));
        Assert.True(at > 0);
        bytes[at + 100] ^= 0x40;   // the middle record's payload: damage, not a torn tail
        File.WriteAllBytes(segment, bytes);

        string filler = System.IO.Path.Combine(fs.Path, "filler");
        using (var f = new FileStream(filler, FileMode.Create))
        {
            try { while (true) f.Write(new byte[64 << 10]); } catch (IOException) { }
        }
        await using (var spool = MessageSpool.Open(options, out var full))
        {
            Assert.Equal(1, full.LeftInPlace);
            Assert.Single(full.Damaged);
            Assert.Equal(bytes, File.ReadAllBytes(segment));   // nothing cut or marked without its copy
        }

        File.Delete(filler);
        await using (var spool = MessageSpool.Open(options, out var roomy))
        {
            Assert.Equal(0, roomy.LeftInPlace);
            var damage = Assert.Single(roomy.Damaged);
            Assert.True(File.Exists(damage.CopyPath));
            Assert.Equal(2, roomy.Messages);
        }
    }
}
