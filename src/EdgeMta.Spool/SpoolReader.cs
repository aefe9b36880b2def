// Reading committed records, for the operator tools and for whatever takes mail to the next hop.
// Read-only: segments are mapped PROT_READ and nothing is repaired (Spool.Open does that). It may run
// beside a live server: a region being written is still uncommitted (zero commit word) and is skipped.
using System.Text;

namespace EdgeMta.Spool;

/// <summary>One committed message as stored. Its spans point into a mapped segment: valid during the visit only.</summary>
public readonly ref struct SpoolRecord
{
    private readonly ReadOnlySpan<byte> _slot1;
    private readonly ReadOnlySpan<byte> _payload;

    internal SpoolRecord(ReadOnlySpan<byte> segment, long offset, string segmentName)
    {
        _slot1 = segment.Slice((int)offset + SpoolFormat.SlotSize, SpoolFormat.SlotSize);
        _payload = segment.Slice((int)offset + SpoolFormat.RecordHeaderSize, (int)SpoolFormat.PayloadLength(_slot1));
        Offset = offset;
        Segment = segmentName;
    }

    public ReadOnlySpan<byte> QueueId => SpoolFormat.QueueId(_slot1);
    public long ArrivalUnixMs => SpoolFormat.ArrivalMs(_slot1);
    public DateTimeOffset Arrival => DateTimeOffset.FromUnixTimeMilliseconds(ArrivalUnixMs);
    public ReadOnlySpan<byte> EncodedEnvelope => _payload[..(int)SpoolFormat.EnvelopeLength(_slot1)];
    /// <summary>The exact accepted octets.</summary>
    public ReadOnlySpan<byte> Data => _payload[(int)SpoolFormat.EnvelopeLength(_slot1)..];
    /// <summary>The envelope (the scanner has already checked that it parses).</summary>
    public SpoolEnvelope Envelope => SpoolEnvelope.TryParse(EncodedEnvelope, out var e) ? e : default;
    public string Segment { get; }
    public long Offset { get; }
    public string QueueIdString => Encoding.ASCII.GetString(QueueId);
}

public delegate void SpoolRecordVisitor(in SpoolRecord record);

public static class SpoolReader
{
    /// <summary>Checks every record of the spool in DIR without changing it, calls <paramref name="visitor"/> for
    /// each committed one in segment order, and returns the counts and the damage found.</summary>
    public static RecoveryReport Read(string directory, SpoolRecordVisitor? visitor = null)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DirectoryNotFoundException($"no spool at {directory}");
        return SpoolRecovery.Run(Path.GetFullPath(directory), repair: false, visitor);
    }
}
