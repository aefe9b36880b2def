// The Moved record of copy-forward (FORMAT.md "Copy-forward"): its bytes, how the fold follows it (records at the
// place a message moved from still apply; a replay changes nothing; a forged destination is ignored), that a torn or
// forged Moved slot on disk is skipped (the message stays at its old place), and RecordLiveness, which says which
// record of a queue id is the message when the spool holds it twice.
using System.Buffers.Binary;

namespace EdgeMta.Spool.Tests;

public class JournalMovedTests
{
    private const string Id = "01M96ABCDEFGHJKM";
    private const long T = 1_765_000_000_000;

    private static JournalRecord At(JournalRecordType type, long segment, long offset, ushort rcpt = 0, long next = 0)
        => new(type, segment, offset, Id, rcpt, 1, 451, 4, 3, 0, false, T, next);

    [Fact]
    public void TheNewPlaceIsInBytes40To47AndTheOffsetIn56To63()
    {
        const long newSegment = 0x0102_0304_0506_0708, newOffset = 0x1_2345_6700;
        var moved = JournalRecord.Moved(3, 4096, Id, newSegment, newOffset, T);
        Span<byte> slot = stackalloc byte[JournalRecord.Size];
        moved.Write(slot, 0xFEED, 1024);
        Assert.Equal(newSegment, BinaryPrimitives.ReadInt64LittleEndian(slot[40..]));
        Assert.Equal(0, slot[48] | slot[49]);
        Assert.Equal(T, (long)(BinaryPrimitives.ReadUInt64LittleEndian(slot[50..]) & ((1UL << 48) - 1)));
        Assert.Equal(newOffset, BinaryPrimitives.ReadInt64LittleEndian(slot[56..]));
        Assert.True(JournalRecord.TryRead(slot, 0xFEED, 1024, out var back));
        Assert.Equal(JournalRecordType.Moved, back.Type);
        Assert.Equal((3L, 4096L), (back.Segment, back.Offset));
        Assert.Equal((newSegment, newOffset), (back.MovedToSegment, back.MovedToOffset));
    }

    [Fact]
    public void TheFoldFollowsAMoveAndRecordsAtTheOldPlaceStillApply()
    {
        var fold = new JournalFold();
        Assert.True(fold.Apply(At(JournalRecordType.Deferred, 3, 4096, next: 9000)));
        Assert.True(fold.Apply(JournalRecord.Moved(3, 4096, Id, 9, 512, T)));
        // An operator's Hold posted just before the move names the old place and may be written after it.
        Assert.True(fold.Apply(At(JournalRecordType.Hold, 3, 4096, JournalRecord.WholeMessage)));
        Assert.True(fold.Apply(At(JournalRecordType.Deferred, 9, 512, next: 12000)));
        var m = fold.Find(Id)!;
        Assert.Equal((9L, 512L), (m.Segment, m.Offset));
        Assert.True(m.MovedFrom(3, 4096));
        Assert.False(m.MovedFrom(9, 512));
        Assert.True(m.Held);
        Assert.Equal(RecipientState.Deferred, m.Recipient(0).State);
        Assert.Equal(12000, m.Recipient(0).NextAttemptUnixMs);
        // Replayed (a crash between compaction's write and its delete of the old files): nothing changes.
        Assert.True(fold.Apply(JournalRecord.Moved(3, 4096, Id, 9, 512, T)));
        Assert.Equal((9L, 512L), (m.Segment, m.Offset));
        // A record at a place the message never was says nothing about it.
        Assert.False(fold.Apply(At(JournalRecordType.Delivered, 5, 512)));
        Assert.Equal(RecipientState.Deferred, m.Recipient(0).State);
    }

    [Theory]
    [InlineData(0L, 512L)]      // no segment 0
    [InlineData(9L, 0L)]        // the segment header, not a region
    [InlineData(9L, 520L)]      // not on a 64-byte boundary
    [InlineData(3L, 4096L)]     // the place it is already at
    public void AMoveToAPlaceNoRegionCanBeIsIgnored(long segment, long offset)
    {
        var fold = new JournalFold();
        fold.Apply(At(JournalRecordType.Deferred, 3, 4096));
        Assert.False(fold.Apply(JournalRecord.Moved(3, 4096, Id, segment, offset, T)));
        var m = fold.Find(Id)!;
        Assert.Equal((3L, 4096L), (m.Segment, m.Offset));
        Assert.False(m.MovedFrom(3, 4096));
    }

    [Fact]
    public void AMoveFromAFormerPlaceToAnotherIsRefused()
    {
        var fold = new JournalFold();
        fold.Apply(JournalRecord.Moved(3, 4096, Id, 9, 512, T));
        Assert.False(fold.Apply(JournalRecord.Moved(3, 4096, Id, 11, 512, T)));
        Assert.Equal((9L, 512L), (fold.Find(Id)!.Segment, fold.Find(Id)!.Offset));
    }

    [Theory]
    [InlineData(40)]   // the new segment
    [InlineData(60)]   // the new offset
    [InlineData(3)]    // the type word
    public void ATornOrForgedMovedSlotOnDiskIsSkippedAndTheMessageStaysPut(int flip)
    {
        using var dir = new TempDir();
        using (var journal = DeliveryJournal.Open(dir.Path, 16 << 10))
        {
            Assert.Equal(0, journal.Append([At(JournalRecordType.Deferred, 3, 4096, next: 9000), JournalRecord.Moved(3, 4096, Id, 9, 512, T)]));
        }
        string file = Directory.GetFiles(Path.Combine(dir.Path, JournalReader.DirectoryName), "*.jnl").Single();
        byte[] bytes = File.ReadAllBytes(file);
        int moved = FindSlot(bytes, JournalRecordType.Moved);
        bytes[moved + flip] ^= 0x10;
        File.WriteAllBytes(file, bytes);

        var fold = new JournalFold();
        var report = JournalReader.Read(dir.Path, fold);
        Assert.Equal(1, report.Records);
        Assert.Equal(1, report.Damaged);
        var m = fold.Find(Id)!;
        Assert.Equal((3L, 4096L), (m.Segment, m.Offset));
        Assert.False(m.MovedFrom(3, 4096));
    }

    [Fact]
    public void AMovedSlotWrittenAtAnotherPlaceDoesNotCheck()
    {
        Span<byte> slot = stackalloc byte[JournalRecord.Size];
        JournalRecord.Moved(3, 4096, Id, 9, 512, T).Write(slot, 0xFEED, 1024);
        Assert.False(JournalRecord.TryRead(slot, 0xFEED, 1088, out _));
        Assert.False(JournalRecord.TryRead(slot, 0xFEEE, 1024, out _));
    }

    // The slot holding a record of this type (its low 16 bits of the record word), after the file header.
    private static int FindSlot(byte[] file, JournalRecordType type)
    {
        for (int at = SpoolFormat.SegmentHeaderSize; at + JournalRecord.Size <= file.Length; at += JournalRecord.Size)
        {
            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
            if (word != 0 && (ushort)word == (ushort)type) return at;
        }
        throw new InvalidOperationException("no such record");
    }
}

public class RecordLivenessTests
{
    private const string Id = "01M96ABCDEFGHJKM";

    private static RecordLiveness With(params JournalRecord[] records)
    {
        var fold = new JournalFold();
        foreach (var r in records) fold.Apply(r);
        return new RecordLiveness(fold);
    }

    private static JournalRecord Deferred(long segment, long offset)
        => new(JournalRecordType.Deferred, segment, offset, Id, 0, 1, 451, 4, 0, 0, false, 1, 0);

    [Fact]
    public void ACopyWithoutMovedIsDeadWhileTheOriginalIsThere()
    {
        var l = With(Deferred(3, 4096));
        l.Saw(Id, 3, 4096);
        l.Saw(Id, 9, 512);
        Assert.True(l.IsMessage(Id, 3, 4096, out var m));
        Assert.NotNull(m);
        Assert.False(l.IsMessage(Id, 9, 512, out _));
    }

    [Fact]
    public void AfterAMoveTheOldPlaceIsDeadAndTheNewOneIsTheMessage()
    {
        var l = With(Deferred(3, 4096), JournalRecord.Moved(3, 4096, Id, 9, 512, 1));
        l.Saw(Id, 3, 4096);
        l.Saw(Id, 9, 512);
        Assert.False(l.IsMessage(Id, 3, 4096, out _));
        Assert.True(l.IsMessage(Id, 9, 512, out var m));
        Assert.Equal(RecipientState.Deferred, m!.Recipient(0).State);
    }

    [Fact]
    public void WithTheJournalsPlaceGoneTheFirstOtherRecordIsAdoptedWithNoState()
    {
        var l = With(Deferred(3, 4096));
        l.Saw(Id, 9, 512);
        l.Saw(Id, 11, 512);
        // A record naming another place says nothing about this one: sent again at worst, never lost.
        Assert.True(l.IsMessage(Id, 9, 512, out var m));
        Assert.Null(m);
        Assert.False(l.IsMessage(Id, 11, 512, out _));
    }

    [Fact]
    public void AnIdTheJournalDoesNotKnowIsTheFirstRecordOnly()
    {
        var l = With();
        l.Saw(Id, 3, 4096);
        l.Saw(Id, 9, 512);
        Assert.True(l.IsMessage(Id, 3, 4096, out var m));
        Assert.Null(m);
        Assert.False(l.IsMessage(Id, 9, 512, out _));
        Assert.True(l.IsMessage("01M96ABCDEFGHJKN", 9, 1024, out _));
    }
}
