// A commit that rides in the batch after a failed flush of its segment must fail too (451), never be
// acknowledged. Linux reports a writeback error once per open file and marks the failed pages clean, so
// the next msync of the same range finds nothing dirty and returns 0: a 250 for bytes that never reached
// the disk. The commit below passes the retired check (the first flush has not failed yet), is queued
// while that flush runs, and so lands in the next batch, after the segment is retired.
using System.Text;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool.Tests;

public class RetiredSegmentTests
{
    private static SpoolMessage Begin(MessageSpool spool, int seed)
    {
        var m = spool.Begin("192.0.2.1"u8, "client.example"u8, Encoding.UTF8.GetBytes($"s{seed}@example.org"), ""u8);
        m.AddRecipient("b@example.net"u8, ""u8);
        m.Append(TestSpools.Content(seed, 2000));
        return m;
    }

    [Fact]
    public async Task ACommitQueuedBehindAFailedFlushOfItsSegmentFailsInsteadOfPassingOnACleanMsync()
    {
        using var dir = new TempDir();
        using var inFlush = new ManualResetEventSlim(false);
        using var release = new ManualResetEventSlim(false);
        int calls = 0;
        string second;
        Task<CommitResult> first, next;
        await using (var spool = TestSpools.Open(dir.Path))
        {
            // The first flush fails, but only once the second commit is queued behind it; later flushes
            // find no fault (as the kernel's msync finds no dirty page after a reported writeback error).
            spool.InjectFlushError = () =>
            {
                if (Interlocked.Increment(ref calls) != 1) return 0;
                inFlush.Set();
                Assert.True(release.Wait(TimeSpan.FromSeconds(30)), "the test never released the first flush");
                return LibC.EIO;
            };
            first = Begin(spool, 1).CommitAsync().AsTask();
            Assert.True(inFlush.Wait(TimeSpan.FromSeconds(30)), "the first flush never started");
            SpoolMessage queued = Begin(spool, 2);
            second = Encoding.ASCII.GetString(queued.QueueId);
            next = queued.CommitAsync().AsTask();
            Assert.False(next.IsCompleted); // queued for the next batch, behind the flush under way
            release.Set();

            Assert.Equal(CommitResult.Failed, await first.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(CommitResult.Failed, await next.WaitAsync(TimeSpan.FromSeconds(30)));

            // The spool goes on in a fresh segment.
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, seed: 3, size: 1500)).Result);
        }
        // Nothing that was refused passes for committed after a restart.
        Assert.DoesNotContain(second, TestSpools.ReadAll(dir.Path, out _).Keys);
    }
}
