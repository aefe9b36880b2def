// What the power-loss simulation (PowerLossTests.cs) found, each pinned down as a deterministic test.
// A pooled SpoolMessage aborted while streaming, after its writer job had ended, goes back to the pool with
// its region's segment still set (SpoolMessage.Abort and Recycle leave _segment and _head as they were; only
// a running writer job clears them). The next message that rents it then finds "its" region already
// reserved (SpoolMessage.Writer.cs, EnsureRegion: _segment is not null), writes into the aborted message's
// region, and commits with the aborted message's first block (_head, copied only when a region is first
// reserved): the 250 is given for a record whose payload checksum fails, which recovery quarantines.
// Found at seed 20261206: acknowledged 01M96CTR8500734Z lost at every cut after its acknowledgement,
// "data differs from region byte 254, 1 of 42 data sectors wrong" (the first block's 384 payload octets).
using System.Text;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool.Tests;

public class PowerLossFindingTests
{
    /// <summary>Signals each write of message bytes (not a new segment's zeros or header): a chunk has gone out.</summary>
    private sealed unsafe class ChunkWatch : SpoolIo
    {
        public readonly SemaphoreSlim Written = new(0);

        public override int Write(int fd, LibC.IoVec* iov, int count, long offset, bool sync)
        {
            int err = base.Write(fd, iov, count, offset, sync);
            if (!sync && offset > 0 && count > 0 && iov[0].Length < (1 << 20)) Written.Release();
            return err;
        }
    }

    // Fails every run. The fix, checked here: SpoolMessage.Recycle releases and clears _segment (two lines);
    // with it this test and PowerLossTests' aborted-message variant pass (5 runs of 201 cuts, 0 lost).
    [Fact]
    public async Task AStreamAbortedAfterItsChunksWereWrittenLeavesTheNextMessageIntact()
    {
        using var dir = new TempDir();
        var watch = new ChunkWatch();
        string committedId;
        byte[] data = TestSpools.Content(7, 20_000);
        // One writer: batches run one after another, so a commit queued after the chunk write completes only once
        // the stream's job has ended.
        using (var spool = MessageSpool.Open(TestSpools.Options(dir.Path) with { Io = watch, Writers = 1 }, out _))
        {
            var aborted = spool.Begin("192.0.2.1"u8, "a.example"u8, "a@example.org"u8, ""u8);
            aborted.AddRecipient("b@example.net"u8, ""u8);
            aborted.Append(TestSpools.Content(6, 20_000));   // four 4 KiB chunks full (the stream threshold): the writer reserves a region and writes them
            Assert.True(await watch.Written.WaitAsync(TimeSpan.FromSeconds(10)), "the stream's chunks were never written");
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 5, 100)).Result);   // the stream's job is over
            aborted.Abort();

            var next = spool.Begin("192.0.2.1"u8, "c.example"u8, "c@example.org"u8, ""u8);
            next.AddRecipient("d@example.net"u8, ""u8);
            next.Append(data);
            committedId = Encoding.ASCII.GetString(next.QueueId);
            Assert.Equal(CommitResult.Committed, await next.CommitAsync());
        }
        var all = TestSpools.ReadAll(dir.Path, out var report);
        Assert.True(report.IsClean, $"damage: {string.Join("; ", report.Damaged.Select(d => $"{d.Segment}@{d.Offset}+{d.Length} {d.Reason}"))}");
        Assert.True(all.TryGetValue(committedId, out var back), $"committed {committedId} is lost");
        Assert.Equal(data, back.Data);
    }
}
