using System.Buffers.Binary;

namespace EdgeMta.Spool.Tests;

public class RecoveryTests
{
    private sealed record Layout(string SegmentPath, byte[] Bytes, List<(string Id, long Offset, long PayloadEnd, byte[] Data)> Records);

    /// <summary>A one-segment spool holding the given message sizes, closed cleanly.</summary>
    private static async Task<Layout> Build(string dir, params int[] sizes)
    {
        using (var spool = TestSpools.Open(dir, segment: 64 << 10, first: 4096))
            for (int i = 0; i < sizes.Length; i++)
                Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 100 + i, sizes[i])).Result);
        var records = new List<(string, long, long, byte[])>();
        string? seg = null;
        SpoolReader.Read(dir, (in SpoolRecord r) =>
        {
            seg = r.Segment;
            long payload = r.EncodedEnvelope.Length + r.Data.Length;
            records.Add((r.QueueIdString, r.Offset, r.Offset + 128 + payload, r.Data.ToArray()));
        });
        string path = Path.Combine(dir, seg!);
        return new Layout(path, File.ReadAllBytes(path), records);
    }

    private static RecoveryReport Recover(string dir)
    {
        using var spool = MessageSpool.Open(TestSpools.Options(dir, segment: 64 << 10), out var report);
        return report;
    }

    private static void Reset(string dir, Layout layout, byte[] bytes)
    {
        string q = Path.Combine(dir, "quarantine");
        if (Directory.Exists(q)) Directory.Delete(q, true);
        File.WriteAllBytes(layout.SegmentPath, bytes);
    }

    [Theory]
    [InlineData(700)]     // a packed record copied from the first buffer
    [InlineData(9000)]    // a streamed record whose region was shrunk at commit
    public async Task LastRecordTornAtEveryByteOffsetIsCutAndTheOthersSurvive(int lastSize)
    {
        using var dir = new TempDir(TempDir.FastParent);   // thousands of recoveries: fsync is free on tmpfs
        var layout = await Build(dir.Path, 1500, lastSize);
        var (firstId, _, _, firstData) = layout.Records[0];
        var (lastId, lastOffset, lastEnd, lastData) = layout.Records[1];
        for (long k = lastOffset; k <= lastEnd; k++)
        {
            var torn = (byte[])layout.Bytes.Clone();
            torn.AsSpan((int)k).Clear();   // nothing from byte k on reached the disk
            Reset(dir.Path, layout, torn);
            var report = Recover(dir.Path);
            Assert.Empty(report.Damaged);
            var all = TestSpools.ReadAll(dir.Path, out var again);
            Assert.Equal(firstData, all[firstId].Data);
            Assert.Equal(k == lastEnd, all.ContainsKey(lastId));
            if (k == lastEnd) Assert.Equal(lastData, all[lastId].Data);
            Assert.True(again.IsClean, $"torn at {k}: a second look still finds damage");
            var second = Recover(dir.Path);
            Assert.True(second.IsClean);
            Assert.Equal(all.Count, second.Messages);
        }
    }

    [Fact]
    public async Task GarbageAfterATornWriteIsCutAsATailNotReportedAsDamage()
    {
        using var dir = new TempDir(TempDir.FastParent);
        var layout = await Build(dir.Path, 1500, 9000);
        var (lastId, lastOffset, lastEnd, _) = layout.Records[1];
        var rnd = new Random(5);
        for (long k = lastOffset; k < lastEnd; k += 37)
        {
            var torn = (byte[])layout.Bytes.Clone();
            rnd.NextBytes(torn.AsSpan((int)k, (int)Math.Min(4096, torn.Length - k)));
            Reset(dir.Path, layout, torn);
            var report = Recover(dir.Path);
            Assert.Empty(report.Damaged);
            Assert.True(report.TornTailBytes > 0);
            var all = TestSpools.ReadAll(dir.Path, out var again);
            Assert.False(all.ContainsKey(lastId));
            Assert.Single(all);
            Assert.True(again.IsClean);
        }
    }

    [Fact]
    public async Task ZeroFilledSpoolTailIsNotDamage()
    {
        using var dir = new TempDir();
        var layout = await Build(dir.Path, 100, 200, 300);
        var report = Recover(dir.Path);   // the unused, zero-filled end of the pre-allocated segment
        Assert.True(report.IsClean);
        Assert.Equal(3, report.Messages);
    }

    public static TheoryData<string, int> Flips => new()
    {
        { "payload", 128 + 200 },
        { "commit header length", 64 + 8 },
        { "commit word", 64 + 1 },
        { "region header extent word", 2 },
        { "region header magic", 9 },
    };

    [Theory]
    [MemberData(nameof(Flips))]
    public async Task BitFlippedInTheMiddleIsQuarantinedAndTheRecordsAfterItStillRead(string where, int at)
    {
        using var dir = new TempDir();
        var layout = await Build(dir.Path, 1000, 2000, 3000);
        var (badId, badOffset, _, _) = layout.Records[1];
        var bytes = (byte[])layout.Bytes.Clone();
        bytes[badOffset + at] ^= 0x10;
        Reset(dir.Path, layout, bytes);

        var report = Recover(dir.Path);
        var damage = Assert.Single(report.Damaged);
        Assert.Equal(badOffset, damage.Offset);
        Assert.True(File.Exists(damage.CopyPath), where);
        Assert.Equal(bytes.AsSpan((int)badOffset, (int)damage.Length).ToArray(), File.ReadAllBytes(damage.CopyPath!));

        var all = TestSpools.ReadAll(dir.Path, out var after);
        Assert.Equal(2, all.Count);
        Assert.False(all.ContainsKey(badId));
        Assert.Equal(layout.Records[0].Data, all[layout.Records[0].Id].Data);
        Assert.Equal(layout.Records[2].Data, all[layout.Records[2].Id].Data);
        Assert.True(after.IsClean);
        Assert.Equal(1, after.PreviouslyQuarantined);

        var second = Recover(dir.Path);   // twice: the same spool, nothing new
        Assert.True(second.IsClean);
        Assert.Equal(2, second.Messages);
        Assert.Equal(1, second.PreviouslyQuarantined);
    }

    [Fact]
    public async Task RecoveryKilledAfterCopyingAsideEndsInTheSameSpool()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        var layout = await Build(a.Path, 1000, 2000, 3000);
        var bytes = (byte[])layout.Bytes.Clone();
        bytes[layout.Records[1].Offset + 2] ^= 1;   // slot 0 lost: the repair writes a fresh region header
        bytes[layout.Records[2].Offset + 500] ^= 1; // and a payload flip in the last record: a torn tail
        Reset(a.Path, layout, bytes);
        TestSpools.CopyDirectory(a.Path, b.Path);

        var full = Recover(a.Path);
        Assert.Single(full.Damaged);
        Assert.True(full.TornTailBytes > 0);
        // b: as if killed after the copies were made and before any region was marked.
        TestSpools.CopyDirectory(Path.Combine(a.Path, "quarantine"), Path.Combine(b.Path, "quarantine"));
        var resumed = Recover(b.Path);
        string name = Path.GetFileName(layout.SegmentPath);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a.Path, name)), File.ReadAllBytes(Path.Combine(b.Path, name)));
        Assert.Equal(full.Messages, resumed.Messages);
        Assert.Equal(1, resumed.Messages);
        foreach (var f in Directory.GetFiles(Path.Combine(a.Path, "quarantine")))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(b.Path, "quarantine", Path.GetFileName(f))));
    }

    // Audit finding: once every segment was gone, a restart numbered its new segment 1 again; a later damaged
    // region of it found "0000000000000001-….bad" taken, skipped its copy, and was lost with no copy kept.
    [Fact]
    public async Task ASequenceNamedInQuarantineIsNeverGivenToANewSegment()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub("quarantine"));
        File.WriteAllBytes(Path.Combine(dir.Sub("quarantine"), "0000000000000007-00000040.bad"), [1, 2, 3]);
        using (MessageSpool spool = TestSpools.Open(dir.Path))
        {
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, 1, 500, rcpts: "b@example.org")).Result);
        }
        long newest = Directory.GetFiles(dir.Path, "*.seg").Select(SpoolRecovery.SequenceOf).DefaultIfEmpty(0).Max();
        Assert.True(newest > 7, $"a new segment numbered {newest}");
    }

    [Fact]
    public async Task SegmentWithABrokenHeaderIsSetAsideWhole()
    {
        using var dir = new TempDir();
        var layout = await Build(dir.Path, 1000);
        var bytes = (byte[])layout.Bytes.Clone();
        bytes[20] ^= 4;
        Reset(dir.Path, layout, bytes);
        var report = Recover(dir.Path);
        var d = Assert.Single(report.Damaged);
        Assert.Equal(0, d.Offset);
        Assert.False(File.Exists(layout.SegmentPath));
        Assert.True(File.Exists(d.CopyPath));
        Assert.True(Recover(dir.Path).IsClean);
    }

    [Fact]
    public void Crc32CMatchesTheCheckValueAndTheTableFallback()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        var data = TestSpools.Content(9, 10_000);
        for (int n = 0; n < 70; n++)
            Assert.Equal(Crc32C.ComputeScalar(data.AsSpan(0, n * 131)), Crc32C.Compute(data.AsSpan(0, n * 131)));
        Assert.Equal(Crc32C.Compute(data), Crc32C.Append(Crc32C.Compute(data.AsSpan(0, 4097)), data.AsSpan(4097)));
    }

    [Fact]
    public void RegionHeaderChecksumBindsSaltAndOffset()
    {
        Span<byte> slot = stackalloc byte[64];
        SpoolFormat.WriteSlot0(slot, salt: 42, offset: 128, length: 4096);
        Assert.Equal(4096u, SpoolFormat.ReadSlot0(slot, 42, 128));
        Assert.Equal(0u, SpoolFormat.ReadSlot0(slot, 43, 128));
        Assert.Equal(0u, SpoolFormat.ReadSlot0(slot, 42, 192));
        BinaryPrimitives.WriteUInt64LittleEndian(slot, 0);
        Assert.True(SpoolFormat.IsSlot0Empty(slot));
    }
}
