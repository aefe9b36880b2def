// Journal retention's own rule (JournalRetention.cs; FORMAT.md "Delivery journal", retention), against a real
// journal directory with 4 KiB files (56 records each): a closed file goes once the oldest segment still in the spool
// is above every segment its records name, a Moved record's new place counts, the file being written never goes,
// files go oldest first and each one once, and a file from before this journal was opened is never touched.
namespace EdgeMta.Spool.Tests;

public sealed class JournalRetentionTests : IDisposable
{
    private const int PerFile = (4096 - 512) / JournalRecord.Size;   // records after the header block
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgemta-jret-" + Guid.NewGuid().ToString("N")[..12]);

    public JournalRetentionTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string[] Files() => [.. Directory.GetFiles(Path.Combine(_dir, JournalReader.DirectoryName), "*.jnl").Order(StringComparer.Ordinal)];

    private static JournalRecord[] Naming(long segment, int count)
    {
        var records = new JournalRecord[count];
        for (int i = 0; i < count; i++) records[i] = new(JournalRecordType.Delivered, segment, 4096 + 512L * i, $"01M96ABCDEFG{i:D4}", 0, 1, 250, 2, 0, 0, false, 1_765_000_000_000, 0);
        return records;
    }

    [Fact]
    public void A_closed_file_goes_only_once_every_segment_it_names_is_below_the_oldest_in_the_spool()
    {
        using var journal = DeliveryJournal.Open(_dir, 4096);
        Assert.Equal(0, journal.Append(Naming(3, PerFile)));   // file 1: segment 3
        Assert.Equal(0, journal.Append(Naming(5, PerFile)));   // file 2: segment 5
        // File 3: segment 4, and a Moved from 4 to 9: it names 9.
        Assert.Equal(0, journal.Append([.. Naming(4, PerFile - 1), JournalRecord.Moved(4, 4096, "01M96ABCDEFG9999", 9, 8192, 1_765_000_000_000)]));
        Assert.Equal(0, journal.Append(Naming(6, 1)));         // file 4, being written
        Assert.Equal(3, journal.FilesClosed);
        string[] files = Files();
        Assert.Equal(4, files.Length);

        Assert.Equal(0, journal.DeleteUnneeded(3));            // segment 3 is still in the spool
        Assert.Equal(3, journal.LowestRetainedMaxSegment);
        var gone = new List<(long, long)>();
        Assert.Equal(1, journal.DeleteUnneeded(4, (seq, max) => gone.Add((seq, max))));
        Assert.Equal([(1L, 3L)], gone);
        Assert.False(File.Exists(files[0]));
        Assert.Equal(1, journal.DeleteUnneeded(6, (seq, max) => gone.Add((seq, max))));   // file 2 (5); file 3 names 9
        Assert.True(File.Exists(files[2]));
        Assert.Equal(0, journal.DeleteUnneeded(9));
        // Nothing left in the spool: every closed file goes, never the one being written.
        Assert.Equal(1, journal.DeleteUnneeded(long.MaxValue, (seq, max) => gone.Add((seq, max))));
        Assert.Equal([(1L, 3L), (2L, 5L), (3L, 9L)], gone);
        Assert.Equal([files[3]], Files());
        Assert.Equal(3, journal.FilesDeleted);
        Assert.Equal(0, journal.Append(Naming(6, 1)));
    }

    [Fact]
    public void A_file_from_before_the_journal_was_opened_is_never_deleted()
    {
        using (var before = DeliveryJournal.Open(_dir, 4096)) Assert.Equal(0, before.Append(Naming(1, 3)));
        string old = Assert.Single(Files());
        using var journal = DeliveryJournal.Open(_dir, 4096);
        Assert.Equal(0, journal.Append(Naming(2, PerFile + 1)));
        Assert.Equal(1, journal.DeleteUnneeded(long.MaxValue));
        Assert.True(File.Exists(old), "its records were never seen by this journal");
        Assert.Equal(2, Files().Length);
    }
}
