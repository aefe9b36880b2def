// A commit reserved in a segment before a failed write retired it, and written after, fails too (451); it is
// never acknowledged. Through the page cache (the fallback where O_DIRECT is refused) this is the case that
// matters: Linux reports a writeback error once per file and marks the failed pages clean, so a later sync of
// the same file can return 0 with nothing on disk. Direct writes report their own errors, but the rule is the
// same in both modes: nothing more commits in a retired segment (FORMAT.md, "Writing").
// Two writer threads: the first write is held in the injection hook until the second commit is in the hook
// too; the first then fails, and the second, released only once the first has retired the segment, must fail.
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

    /// <summary>Opens segments without O_DIRECT, as a filesystem that refuses it makes the spool do.</summary>
    private sealed class BufferedIo : SpoolIo
    {
        public override int Create(string path, out int fd, out bool direct)
        {
            direct = false;
            fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_CREAT | LibC.O_EXCL, 0x180);
            return fd >= 0 ? 0 : LibC.LastError;
        }
    }

    [Theory]
    [InlineData(false)]   // direct writes
    [InlineData(true)]    // the page-cache fallback
    public async Task ACommitWrittenAfterAFailedWriteRetiredItsSegmentFailsInsteadOfBeingAcknowledged(bool buffered)
    {
        using var dir = new TempDir();
        using var firstInHook = new ManualResetEventSlim(false);
        using var secondInHook = new ManualResetEventSlim(false);
        int calls = 0;
        string second;
        Task<CommitResult> first = Task.FromResult(CommitResult.Committed), next;
        await using (var spool = MessageSpool.Open(TestSpools.Options(dir.Path) with { Writers = 2, Io = buffered ? new BufferedIo() : null }, out _))
        {
            spool.InjectFlushError = () =>
            {
                int call = Interlocked.Increment(ref calls);
                if (call == 1)
                {
                    firstInHook.Set();
                    Assert.True(secondInHook.Wait(TimeSpan.FromSeconds(30)), "the second commit never reached a writer");
                    return LibC.EROFS;
                }
                if (call == 2)
                {
                    secondInHook.Set();
                    // Released once the first write has failed and retired the segment they share.
                    Assert.True(SpinWait.SpinUntil(() => first.IsCompleted, TimeSpan.FromSeconds(30)), "the first write never ended");
                }
                return 0;
            };
            first = Begin(spool, 1).CommitAsync().AsTask();
            Assert.True(firstInHook.Wait(TimeSpan.FromSeconds(30)), "the first write never started");
            SpoolMessage queued = Begin(spool, 2);
            second = Encoding.ASCII.GetString(queued.QueueId);
            next = queued.CommitAsync().AsTask();

            Assert.Equal(CommitResult.Failed, await first.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(CommitResult.Failed, await next.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(2, calls);
            // The errno that retired the segment stays the one the log names, not the EIO made up after it.
            Assert.Equal(LibC.EROFS, spool.LastStorageError);

            // The spool goes on in a fresh segment.
            spool.InjectFlushError = null;
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, seed: 3, size: 1500)).Result);
        }
        // Nothing that was refused passes for committed after a restart.
        Assert.DoesNotContain(second, TestSpools.ReadAll(dir.Path, out _).Keys);
    }
}
