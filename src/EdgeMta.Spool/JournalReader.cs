// Reads the delivery journal (FORMAT.md, "Delivery journal", "Recovery") into a JournalFold: the files of
// DIR/journal/ in sequence order, each slot after the 64-byte header in offset order. Every record is one slot,
// so there is nothing to resynchronise on: a zero slot is nothing (never written, or a neighbour's write still
// in flight when the host stopped), a slot that does not check is counted as damaged and skipped. Skipping is
// safe because a lost record only means a retry (a duplicate at worst): the journal justifies a release only
// with records already durable, and the spool's record stays until then.
// What it does not do: repair or delete anything (the writer starts a fresh journal file at each start), or
// check a record's place against the spool (the caller does, with the spool's own scan).
// How it fails: a file whose header does not check is skipped whole and reported; an unreadable directory
// throws IOException (the spool could not be read either).
namespace EdgeMta.Spool;

public sealed class JournalReadReport
{
    public int Files { get; internal set; }
    public long Records { get; internal set; }
    /// <summary>Slots that held bytes but did not check (torn or damaged): skipped.</summary>
    public long Damaged { get; internal set; }
    /// <summary>Records naming a queue id already seen at another place: skipped (JournalFold.Apply).</summary>
    public long Refused { get; internal set; }
    /// <summary>Files whose header did not check: skipped whole.</summary>
    public List<string> BadFiles { get; } = new();
}

public static class JournalReader
{
    /// <summary>`EMJRNL01`, little-endian.</summary>
    public const ulong Magic = 0x31304C4E524A4D45UL;

    public const string DirectoryName = "journal";

    public static JournalReadReport Read(string spoolDirectory, JournalFold fold)
    {
        var report = new JournalReadReport();
        string dir = Path.Combine(spoolDirectory, DirectoryName);
        if (!System.IO.Directory.Exists(dir)) return report;
        string[] files = System.IO.Directory.GetFiles(dir, "*.jnl");
        Array.Sort(files, StringComparer.Ordinal);   // 16 hex digits: name order is sequence order
        foreach (string path in files)
        {
            using var file = new MappedFile(path);
            ReadOnlySpan<byte> span = file.Span;
            if (!SpoolFormat.TryReadSegmentHeader(span, Magic, out ulong salt, out _, out long declared) || declared != span.Length)
            {
                report.BadFiles.Add(path);
                continue;
            }
            report.Files++;
            for (int at = SpoolFormat.SegmentHeaderSize; at + JournalRecord.Size <= span.Length; at += JournalRecord.Size)
            {
                ReadOnlySpan<byte> slot = span.Slice(at, JournalRecord.Size);
                if (JournalRecord.TryRead(slot, salt, at, out var record))
                {
                    report.Records++;
                    if (!fold.Apply(record)) report.Refused++;
                }
                else if (slot.IndexOfAnyExcept((byte)0) >= 0)
                {
                    report.Damaged++;
                }
            }
        }
        return report;
    }
}
