// Segment churn under errors (FORMAT.md, "Writing"): a failed segment creation is retried after a backoff,
// not once per refused message (one fresh 64 MiB segment per refusal once made 8,155 segments in 5 s), and
// a segment retired by an error gives back its unused blocks once nothing in it is in flight (a flapping
// fault once left 3.9 GB on disk for 0.86 GB of mail).
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool.Tests;

public class SegmentSupplyTests
{
    [Fact]
    public async Task RefusedMessagesDoNotEachTryToCreateASegment()
    {
        using var dir = new TempDir();
        await using var spool = TestSpools.Open(dir.Path);
        int attempts = 0;
        spool.InjectCreateError = () => { Interlocked.Increment(ref attempts); return LibC.EIO; };
        spool.NeedFreshSegmentForTests();
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(CommitResult.Failed, (await TestSpools.Write(spool, i, 100)).Result);
        }
        // 50 refusals within the first backoff steps (1, 2, 4 s): a handful of attempts, not 50.
        Assert.InRange(Volatile.Read(ref attempts), 1, 10);
        Assert.Equal(SpoolReadiness.Failing, spool.Readiness);

        spool.InjectCreateError = null;
        // The supply tries again within its backoff (at most 5 s): then commits succeed.
        CommitResult result = CommitResult.Failed;
        for (int i = 0; i < 100 && result != CommitResult.Committed; i++)
        {
            result = (await TestSpools.Write(spool, 100 + i, 100)).Result;
            if (result != CommitResult.Committed) await Task.Delay(100);
        }
        Assert.Equal(CommitResult.Committed, result);
    }

    [Fact]
    public async Task ARetiredSegmentGivesBackItsUnusedBlocksOnceNothingIsInFlight()
    {
        using var dir = new TempDir();
        const long SegmentSize = 8 << 20;
        string first;
        await using (var spool = MessageSpool.Open(TestSpools.Options(dir.Path, segment: SegmentSize), out _))
        {
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 1, 1000)).Result);
            string[] segments = Directory.GetFiles(dir.Path, "*.seg");
            Array.Sort(segments, StringComparer.Ordinal);
            first = segments[0];
            Assert.True(AllocatedBytes(first) >= SegmentSize, "a fresh segment is allocated whole");

            spool.InjectFlushError = () => LibC.EIO;   // retires the segment
            Assert.Equal(CommitResult.Failed, (await TestSpools.Write(spool, 2, 1000)).Result);
            spool.InjectFlushError = null;
            // The next commit moves to the spare: the retired segment's last reference goes.
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 3, 1000)).Result);
            Assert.True(File.Exists(first), "the retired segment holds a committed record: it stays");
            Assert.InRange(AllocatedBytes(first), 1, 64 << 10);
        }
        Assert.Equal(2, TestSpools.ReadAll(dir.Path, out _).Count);
    }

    /// <summary>Blocks the file holds on disk (stat %b, 512-byte units), not its length.</summary>
    private static long AllocatedBytes(string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string text = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(10_000), "stat did not finish");
        return long.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
    }
}
