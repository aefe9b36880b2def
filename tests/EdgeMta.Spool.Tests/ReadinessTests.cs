// The MAIL gate (MessageSpool.Readiness.cs): Failing for SpoolOptions.FailingWindowMs after a real storage error,
// with its errno kept for the log; Full when free bytes or free inodes are under the floor; Ready otherwise.
// Time is a fake clock moved by the test; faults come from the spool's injection seams, and inode exhaustion
// from a small tmpfs with few inodes.
using System.Diagnostics;
using EdgeMta.Spool.Native;
using EdgeMta.TestKit;

namespace EdgeMta.Spool.Tests;

public class ReadinessTests
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(5000);

    private static MessageSpool Open(string dir, FakeClock clock)
        => MessageSpool.Open(TestSpools.Options(dir) with
        {
            Clock = clock,
            FailingWindowMs = (int)Window.TotalMilliseconds,
            FreeSpaceCheckIntervalMs = 0,
        }, out _);

    [Fact]
    public async Task AFailedFlushMakesTheGateSayFailingUntilTheWindowHasPassed()
    {
        using var dir = new TempDir();
        var clock = new FakeClock();
        await using var spool = Open(dir.Path, clock);
        Assert.Equal(SpoolReadiness.Ready, spool.Readiness);
        Assert.Equal(0, spool.LastStorageError);

        spool.InjectFlushError = () => LibC.EROFS;
        Assert.Equal(CommitResult.Failed, (await TestSpools.Write(spool, 1, 100)).Result);
        spool.InjectFlushError = null;
        Assert.Equal(SpoolReadiness.Failing, spool.Readiness);
        Assert.Equal(LibC.EROFS, spool.LastStorageError);

        clock.Advance(Window - TimeSpan.FromMilliseconds(1));
        Assert.Equal(SpoolReadiness.Failing, spool.Readiness);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(SpoolReadiness.Ready, spool.Readiness);
        Assert.Equal(LibC.EROFS, spool.LastStorageError);   // kept for the log after the window
        Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 2, 100)).Result);
    }

    [Fact]
    public async Task AFailedSegmentCreationMakesTheGateSayFailingAndAFreshErrorRestartsTheWindow()
    {
        using var dir = new TempDir();
        var clock = new FakeClock();
        await using var spool = Open(dir.Path, clock);
        spool.InjectCreateError = () => LibC.EIO;
        spool.NeedFreshSegmentForTests();
        Assert.Equal(CommitResult.Failed, (await TestSpools.Write(spool, 1, 100)).Result);
        Assert.Equal(SpoolReadiness.Failing, spool.Readiness);
        Assert.Equal(LibC.EIO, spool.LastStorageError);

        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(CommitResult.Failed, (await TestSpools.Write(spool, 2, 100)).Result);   // the fault persists
        clock.Advance(TimeSpan.FromSeconds(3));   // 6 s after the first error, 3 s after the second
        Assert.Equal(SpoolReadiness.Failing, spool.Readiness);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(SpoolReadiness.Ready, spool.Readiness);
    }

    [Fact]
    public async Task NoSpaceIsNotAFailureTheFreeSpaceCheckDecides()
    {
        using var dir = new TempDir();
        var clock = new FakeClock();
        await using var spool = Open(dir.Path, clock);
        spool.InjectCreateError = () => LibC.ENOSPC;
        spool.NeedFreshSegmentForTests();
        Assert.Equal(CommitResult.Full, (await TestSpools.Write(spool, 1, 100)).Result);
        // statvfs of this directory finds room: space freed reopens the gate at once, with no window to wait out.
        Assert.Equal(SpoolReadiness.Ready, spool.Readiness);
        Assert.Equal(0, spool.LastStorageError);
    }

    [Theory]
    [InlineData(1L << 30, 1000, 100_000, true)]
    [InlineData(1L << 30, MessageSpool.InodeFloor, 100_000, true)]
    [InlineData(1L << 30, MessageSpool.InodeFloor - 1, 100_000, false)]   // bytes to spare, no inode for a segment
    [InlineData(1L << 30, 0, 100_000, false)]
    [InlineData(1L << 30, 0, 0, true)]   // f_files 0: the filesystem keeps no inode count (btrfs)
    [InlineData((1L << 20) - 1, 1000, 100_000, false)]   // under the byte floor
    [InlineData(1L << 20, 1000, 100_000, true)]
    public void RoomNeedsBytesAboveTheFloorAndInodesAboveTheInodeFloor(long bytes, long inodes, long totalInodes, bool room)
        => Assert.Equal(room, MessageSpool.HasRoom(bytes, 1L << 20, inodes, totalInodes));

    [Fact]
    public async Task AFilesystemOutOfInodesIsFullThoughBytesAreFree()
    {
        using var dir = new TempDir();
        string fs = dir.Sub("fs");
        Directory.CreateDirectory(fs);
        Assert.True(Run("mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=64", "tmpfs", fs), "needs a small tmpfs (mount, as root)");
        try
        {
            string spoolDir = Path.Combine(fs, "spool");
            var clock = new FakeClock();
            await using var spool = Open(spoolDir, clock);
            Assert.Equal(SpoolReadiness.Ready, spool.Readiness);
            // Empty files take inodes and no blocks: at most 64 of them, so the loop is bounded.
            for (int i = 0; i < 64; i++)
            {
                try { File.Create(Path.Combine(fs, $"f{i}")).Dispose(); }
                catch (IOException) { break; }
            }
            Assert.True(LibC.AvailableBytes(spoolDir) > 4 << 20, "bytes are still free");
            Assert.Equal(SpoolReadiness.Full, await TestSpools.Settled(spool, SpoolReadiness.Full));
        }
        finally
        {
            Run("umount", fs);
        }
    }

    private static bool Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        if (!p.WaitForExit(30_000)) { p.Kill(); return false; }
        return p.ExitCode == 0;
    }
}
