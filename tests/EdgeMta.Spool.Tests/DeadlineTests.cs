// A session waits for the spool at most SpoolOptions.CommitTimeout (MessageSpool.Deadlines.cs): a stalled
// disk costs the waiting client a 451, never a frozen server. Time is a fake clock moved by the test (the
// deadline timer is the clock's); the disk is stalled by a file I/O seam that holds every write until the
// test lets go, so the writer thread is really inside a write when the deadline passes.
using EdgeMta.Spool.Native;
using EdgeMta.TestKit;

namespace EdgeMta.Spool.Tests;

public class DeadlineTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Holds every write while stalled, as a filesystem that stops answering does.</summary>
    private sealed unsafe class StallingIo : SpoolIo
    {
        private readonly ManualResetEventSlim _open = new(true);
        public readonly ManualResetEventSlim Entered = new(false);

        public void Stall() { Entered.Reset(); _open.Reset(); }
        public void Release() => _open.Set();

        public override int Write(int fd, LibC.IoVec* iov, int count, long offset, bool sync)
        {
            if (!_open.IsSet)
            {
                Entered.Set();
                Assert.True(_open.Wait(TimeSpan.FromSeconds(30)), "the test never released the stalled write");
            }
            return base.Write(fd, iov, count, offset, sync);
        }
    }

    private static MessageSpool Open(string dir, FakeClock clock, StallingIo io)
        => MessageSpool.Open(TestSpools.Options(dir) with { Clock = clock, CommitTimeout = Timeout, Io = io }, out _);

    [Fact]
    public async Task ACommitStuckInAWritePastTheDeadlineIs451AndTakenBackWhenTheWriteReturns()
    {
        using var dir = new TempDir();
        var clock = new FakeClock();
        var io = new StallingIo();
        string id;
        await using (var spool = Open(dir.Path, clock, io))
        {
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 1, 100)).Result);
            io.Stall();
            var m = spool.Begin("192.0.2.1"u8, "h"u8, "a@b"u8, ""u8);
            m.AddRecipient("c@d"u8, ""u8);
            m.Append(TestSpools.Content(2, 500));
            id = System.Text.Encoding.ASCII.GetString(m.QueueId);
            Task<CommitResult> commit = m.CommitAsync().AsTask();
            Assert.True(io.Entered.Wait(TimeSpan.FromSeconds(30)), "the write never started");

            clock.Advance(Timeout - TimeSpan.FromSeconds(1));
            Assert.False(commit.IsCompleted);
            clock.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(CommitResult.Failed, await commit.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(LibC.ETIMEDOUT, spool.LastStorageError);
            Assert.Equal(SpoolReadiness.Failing, spool.Readiness);   // new clients hear 451 at MAIL meanwhile

            // The disk answers after all: the write lands, and is taken back (the client heard 451 and retries).
            io.Release();
        }
        Assert.DoesNotContain(id, TestSpools.ReadAll(dir.Path, out _).Keys);
    }

    [Fact]
    public async Task AStreamPausedForAStalledWriterFailsAtTheDeadlineAndItsConnectionReadsOn()
    {
        using var dir = new TempDir();
        var clock = new FakeClock();
        var io = new StallingIo();
        await using var spool = Open(dir.Path, clock, io);
        io.Stall();
        var m = spool.Begin("192.0.2.1"u8, "h"u8, "a@b"u8, ""u8);
        m.AddRecipient("c@d"u8, ""u8);
        // Chunks of 4 KiB: half the ring (4 chunks) waiting for the writer pauses the connection.
        byte[] block = TestSpools.Content(3, 4096);
        int resumed = 0;
        bool paused = false;
        for (int i = 0; i < 16 && !paused; i++)
        {
            m.Append(block);
            paused = m.PauseWhileBacklogged(() => Interlocked.Increment(ref resumed));
        }
        Assert.True(paused, "a backlog of unwritten chunks never asked the connection to pause");
        Assert.True(io.Entered.Wait(TimeSpan.FromSeconds(30)), "the writer never reached the disk");
        clock.Advance(Timeout);
        Assert.Equal(1, Volatile.Read(ref resumed));
        m.Append(block);   // the rest of the message is read and dropped
        Assert.Equal(CommitResult.Failed, await m.CommitAsync());
        io.Release();
    }

    [Fact]
    public async Task AWriterThatCatchesUpResumesThePausedConnectionOnce()
    {
        using var dir = new TempDir();
        var clock = new FakeClock();
        var io = new StallingIo();
        string id;
        byte[] block = TestSpools.Content(4, 4096);
        int appended = 0;
        await using (var spool = Open(dir.Path, clock, io))
        {
            io.Stall();
            var m = spool.Begin("192.0.2.1"u8, "h"u8, "a@b"u8, ""u8);
            m.AddRecipient("c@d"u8, ""u8);
            id = System.Text.Encoding.ASCII.GetString(m.QueueId);
            using var resumed = new ManualResetEventSlim(false);
            bool paused = false;
            while (appended < 16 && !paused)
            {
                m.Append(block);
                appended++;
                paused = m.PauseWhileBacklogged(resumed.Set);
            }
            Assert.True(paused);
            io.Release();
            Assert.True(resumed.Wait(TimeSpan.FromSeconds(30)), "the writer caught up but never resumed the connection");
            Assert.Equal(CommitResult.Committed, await m.CommitAsync());
        }
        var all = TestSpools.ReadAll(dir.Path, out var report);
        Assert.True(report.IsClean);
        byte[] expected = Enumerable.Repeat(block, appended).SelectMany(b => b).ToArray();
        Assert.Equal(expected, all[id].Data);
    }
}
