// The delivery journal's record and fold (JournalRecord.cs, JournalFold.cs), offline against crafted
// journals: every record round-trips; a torn, bit-flipped, moved or re-salted slot never checks; the fold
// gives the same state whatever is replayed twice, never undoes a final state, and lets Delete win.
namespace EdgeMta.Spool.Tests;

public class JournalTests
{
    private const ulong Salt = 0x1234_5678_9ABC_DEF1;

    private static JournalRecord Rec(JournalRecordType type, ushort rcpt = 0, ushort attempt = 1, long next = 0, string id = "01M96ABCDEFGHJKM", ushort code = 0)
        => new(type, 7, 4096, id, rcpt, attempt, code, 4, 2, 1, false, 1_765_000_000_000, next);

    [Fact]
    public void EveryTypeRoundTripsAtItsPlace()
    {
        Span<byte> slot = stackalloc byte[JournalRecord.Size];
        foreach (JournalRecordType type in Enum.GetValues<JournalRecordType>())
        {
            var r = Rec(type, rcpt: 3, attempt: 9, next: 1_765_000_360_000, code: 451) with { PossiblyDelivered = true };
            r.Write(slot, Salt, 640);
            Assert.True(JournalRecord.TryRead(slot, Salt, 640, out var back));
            Assert.Equal(r, back);
        }
    }

    [Fact]
    public void ATornFlippedMovedOrForeignSlotNeverChecks()
    {
        byte[] slot = new byte[JournalRecord.Size];
        // Every 8-byte run of it non-zero, so that a tear anywhere loses something.
        Rec(JournalRecordType.Deferred, rcpt: 2, attempt: 3, next: 1_765_000_360_000, code: 451).Write(slot, Salt, 640);
        Assert.False(JournalRecord.TryRead(slot, Salt, 704, out _));        // the same bytes at another place
        Assert.False(JournalRecord.TryRead(slot, Salt ^ 1, 640, out _));    // another journal file
        Assert.False(JournalRecord.TryRead(new byte[JournalRecord.Size], Salt, 640, out _));   // zeros: nothing there
        for (int bit = 0; bit < JournalRecord.Size * 8; bit++)
        {
            byte[] flipped = (byte[])slot.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.False(JournalRecord.TryRead(flipped, Salt, 640, out _), $"bit {bit} flipped still checks");
        }
        for (int cut = 8; cut < JournalRecord.Size; cut += 8)
        {
            byte[] torn = (byte[])slot.Clone();
            Array.Clear(torn, cut, JournalRecord.Size - cut);   // the record word there, the rest never written
            Assert.False(JournalRecord.TryRead(torn, Salt, 640, out _), $"torn at {cut} still checks");
        }
    }

    [Fact]
    public void AFinalStateIsNeverUndoneAndDeliveredWinsOverFailed()
    {
        var fold = new JournalFold();
        fold.Apply(Rec(JournalRecordType.Deferred, rcpt: 0, attempt: 1, next: 100));
        fold.Apply(Rec(JournalRecordType.Delivered, rcpt: 0, attempt: 2, code: 250));
        fold.Apply(Rec(JournalRecordType.Deferred, rcpt: 0, attempt: 3, next: 900));   // a stale one replayed
        fold.Apply(Rec(JournalRecordType.Failed, rcpt: 1, attempt: 1, code: 550));
        fold.Apply(Rec(JournalRecordType.Delivered, rcpt: 1, attempt: 2, code: 250));
        fold.Apply(Rec(JournalRecordType.Failed, rcpt: 1, attempt: 3, code: 550));
        var m = fold.Find("01M96ABCDEFGHJKM")!;
        Assert.Equal(RecipientState.Delivered, m.Recipient(0).State);
        Assert.Equal(RecipientState.Delivered, m.Recipient(1).State);
        Assert.True(m.AllFinal(2));
        Assert.False(m.AllFinal(3));   // a third recipient the journal never named is still pending
    }

    [Fact]
    public void AWholeMessageDeferralStandsForEveryRecipientNotYetFinal()
    {
        var fold = new JournalFold();
        fold.Apply(Rec(JournalRecordType.Delivered, rcpt: 0, code: 250));
        fold.Apply(Rec(JournalRecordType.Deferred, rcpt: JournalRecord.WholeMessage, attempt: 2, next: 5000, code: 421) with { PossiblyDelivered = true });
        var m = fold.Find("01M96ABCDEFGHJKM")!;
        Assert.Equal(RecipientState.Delivered, m.Recipient(0).State);
        var other = m.Recipient(1);
        Assert.Equal(RecipientState.Deferred, other.State);
        Assert.Equal(5000, other.NextAttemptUnixMs);
        Assert.Equal(2, other.Attempts);
        Assert.True(other.PossiblyDelivered);
    }

    [Fact]
    public void DeleteWinsHoldAndReleaseTakeTurnsAndReplayChangesNothing()
    {
        var records = new[]
        {
            Rec(JournalRecordType.Hold, JournalRecord.WholeMessage),
            Rec(JournalRecordType.Deferred, rcpt: 0, attempt: 1, next: 100, code: 451),
            Rec(JournalRecordType.Release, JournalRecord.WholeMessage),
            Rec(JournalRecordType.Hold, JournalRecord.WholeMessage),
            Rec(JournalRecordType.Delete, rcpt: 1),
            Rec(JournalRecordType.Delivered, rcpt: 1, code: 250),
        };
        var once = new JournalFold();
        foreach (var r in records) once.Apply(r);
        var twice = new JournalFold();
        foreach (var r in records) twice.Apply(r);
        foreach (var r in records) twice.Apply(r);   // recovery after a crash replays everything again
        foreach (var fold in new[] { once, twice })
        {
            var m = fold.Find("01M96ABCDEFGHJKM")!;
            Assert.True(m.Held);
            Assert.Equal(RecipientState.Deferred, m.Recipient(0).State);
            Assert.Equal(RecipientState.Deleted, m.Recipient(1).State);
        }
        twice.Apply(Rec(JournalRecordType.Delete, JournalRecord.WholeMessage));
        Assert.Equal(RecipientState.Deleted, twice.Find("01M96ABCDEFGHJKM")!.Recipient(0).State);
        Assert.True(twice.Find("01M96ABCDEFGHJKM")!.AllFinal(5));
    }

    [Fact]
    public void ARecordNamingAKnownIdAtAnotherPlaceIsRefused()
    {
        var fold = new JournalFold();
        Assert.True(fold.Apply(Rec(JournalRecordType.Deferred, next: 100)));
        Assert.False(fold.Apply(Rec(JournalRecordType.Delivered, code: 250) with { Offset = 8192 }));
        Assert.Equal(RecipientState.Deferred, fold.Find("01M96ABCDEFGHJKM")!.Recipient(0).State);
    }
}

public class JournalReaderTests
{
    private const ulong Salt = 0x0BAD_F00D_1234_5679;

    private static JournalRecord Rec(JournalRecordType type, string id, ushort rcpt = 0, long next = 0)
        => new(type, 3, 512, id, rcpt, 1, 250, 2, 0, 0, false, 1_765_000_000_000, next);

    private static byte[] JournalFile(long sequence, int slots, Action<byte[]> fill)
    {
        byte[] file = new byte[SpoolFormat.SegmentHeaderSize + slots * JournalRecord.Size];
        SpoolFormat.WriteSegmentHeader(file, Salt, sequence, file.Length, 1_765_000_000_000, JournalReader.Magic);
        fill(file);
        return file;
    }

    private static int At(int slot) => SpoolFormat.SegmentHeaderSize + slot * JournalRecord.Size;

    [Fact]
    public void RecordsFoldInFileAndOffsetOrderAndDamageIsCountedAndSkipped()
    {
        using var dir = new TempDir();
        string journal = Path.Combine(dir.Path, JournalReader.DirectoryName);
        Directory.CreateDirectory(journal);
        File.WriteAllBytes(Path.Combine(journal, "0000000000000001.jnl"), JournalFile(1, 8, f =>
        {
            Rec(JournalRecordType.Hold, "A000000000000001", JournalRecord.WholeMessage).Write(f.AsSpan(At(0)), Salt, At(0));
            // slot 1 stays zero: a neighbour's write that never reached the disk
            Rec(JournalRecordType.Deferred, "A000000000000001", next: 9000).Write(f.AsSpan(At(2)), Salt, At(2));
            Rec(JournalRecordType.Delivered, "B000000000000002").Write(f.AsSpan(At(3)), Salt, At(3));
            f[At(3) + 20] ^= 0x40;   // damaged: B's record does not count
            Rec(JournalRecordType.Delivered, "C000000000000003").Write(f.AsSpan(At(4)), Salt, At(5));   // written at another place
        }));
        File.WriteAllBytes(Path.Combine(journal, "0000000000000002.jnl"), JournalFile(2, 4, f =>
        {
            Rec(JournalRecordType.Release, "A000000000000001", JournalRecord.WholeMessage).Write(f.AsSpan(At(0)), Salt, At(0));
        }));
        byte[] bad = JournalFile(3, 2, _ => { });
        bad[5] ^= 1;
        File.WriteAllBytes(Path.Combine(journal, "0000000000000003.jnl"), bad);

        var fold = new JournalFold();
        var report = JournalReader.Read(dir.Path, fold);
        Assert.Equal(2, report.Files);
        Assert.Equal(3, report.Records);
        Assert.Equal(2, report.Damaged);
        Assert.Single(report.BadFiles);
        var a = fold.Find("A000000000000001")!;
        Assert.False(a.Held);   // held in file 1, released in file 2: the order of the files counts
        Assert.Equal(RecipientState.Deferred, a.Recipient(0).State);
        Assert.Equal(9000, a.Recipient(0).NextAttemptUnixMs);
        Assert.Null(fold.Find("B000000000000002"));
        Assert.Null(fold.Find("C000000000000003"));
    }

    [Fact]
    public void NoJournalIsAnEmptyFold()
    {
        using var dir = new TempDir();
        var fold = new JournalFold();
        Assert.Equal(0, JournalReader.Read(dir.Path, fold).Files);
        Assert.Equal(0, fold.Count);
    }
}

public class DeliveryJournalTests
{
    private static JournalRecord Rec(JournalRecordType type, int n, ushort rcpt = 0)
        => new(type, 1, 512, $"Q{n:D15}", rcpt, 1, 250, 2, 0, 0, false, 1_765_000_000_000 + n, 0);

    [Fact]
    public async Task RecordsAppendedFromManyThreadsAcrossFilesAllReadBack()
    {
        using var dir = new TempDir();
        // 8 KiB files: 120 slots each after the first block, so 8 x 60 records roll over several files.
        using (var journal = DeliveryJournal.Open(dir.Path, fileSize: 8 << 10))
        {
            var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
            {
                for (int i = 0; i < 60; i++)
                {
                    int n = t * 1000 + i;
                    Assert.Equal(0, journal.Append([Rec(JournalRecordType.Deferred, n), Rec(JournalRecordType.Delivered, n)]));
                }
            })).ToArray();
            await Task.WhenAll(tasks);
        }
        var fold = new JournalFold();
        var report = JournalReader.Read(dir.Path, fold);
        Assert.True(report.Files > 1, "the files rolled over");
        Assert.Equal(0, report.Damaged);
        Assert.Equal(8 * 60 * 2, report.Records);
        for (int t = 0; t < 8; t++)
        {
            for (int i = 0; i < 60; i++)
            {
                Assert.Equal(RecipientState.Delivered, fold.Find($"Q{t * 1000 + i:D15}")!.Recipient(0).State);
            }
        }
    }

    [Fact]
    public void AJournalNoRecordWentIntoLeavesNoFileAndAReopenStartsANewOne()
    {
        using var dir = new TempDir();
        DeliveryJournal.Open(dir.Path).Dispose();
        Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, JournalReader.DirectoryName)));
        using (var journal = DeliveryJournal.Open(dir.Path)) Assert.Equal(0, journal.Append([Rec(JournalRecordType.Hold, 1, JournalRecord.WholeMessage)]));
        using (var journal = DeliveryJournal.Open(dir.Path)) Assert.Equal(0, journal.Append([Rec(JournalRecordType.Release, 1, JournalRecord.WholeMessage)]));
        var fold = new JournalFold();
        Assert.Equal(2, JournalReader.Read(dir.Path, fold).Files);
        Assert.False(fold.Find("Q000000000000001")!.Held);
        // The unused end of each file was given back.
        foreach (string f in Directory.GetFiles(Path.Combine(dir.Path, JournalReader.DirectoryName)))
        {
            Assert.Equal(4L << 20, new FileInfo(f).Length);
        }
    }
}
