// Recovery, run by MessageSpool.Open before the server listens (and, read-only, by `verify` and `stats`).
// Every record of every segment is checked (SegmentScanner). Nothing is silently dropped:
//  - a damaged region (a header or payload that does not check, with valid regions after it) is copied to
//    DIR/quarantine/<segment>-<offset>.bad, the copy is fsynced, and only then is the region marked
//    Quarantined in place (one 8-byte commit word, or a fresh 128-byte region header where slot 0 was lost);
//  - a torn tail (non-zero bytes after the last valid region, no valid region after them) is copied aside
//    the same way and then zeroed: cut off;
//  - a segment whose header does not check is moved whole into quarantine/ (all zero: deleted);
//  - a segment with no live record left (drained, or only abandoned regions) is deleted.
// Idempotent and restartable: every step is either a fresh copy under a fixed name (skipped if present)
// or a store that turns a region into one the next run skips, so a second run, or a run after a kill half
// way, ends in the same spool and reports nothing new.
using System.Buffers.Binary;
using EdgeMta.Spool.Native;
using Microsoft.Win32.SafeHandles;

namespace EdgeMta.Spool;

public sealed class QuarantinedRegion
{
    public required string Segment { get; init; }
    public required long Offset { get; init; }
    public required long Length { get; init; }
    public required string Reason { get; init; }
    /// <summary>Where the bytes were copied; null when the scan was read-only.</summary>
    public string? CopyPath { get; init; }
}

public sealed class RecoveryReport
{
    public int Segments { get; internal set; }
    public long Messages { get; internal set; }
    /// <summary>Message data octets (envelopes excluded).</summary>
    public long Bytes { get; internal set; }
    public long TornTailBytes { get; internal set; }
    public int DeletedSegments { get; internal set; }
    /// <summary>Regions quarantined by an earlier run (already set aside).</summary>
    public long PreviouslyQuarantined { get; internal set; }
    /// <summary>Damage found by this run (repaired when the run could write).</summary>
    public List<QuarantinedRegion> Damaged { get; } = new();
    /// <summary>Damaged regions and torn tails left in place, unrepaired, because the disk had no room for
    /// their copy: the server still starts (and refuses mail while the disk is full); a later start with room
    /// sets them aside.</summary>
    public int LeftInPlace { get; internal set; }
    internal long LastSequence { get; set; }
    public bool IsClean => Damaged.Count == 0 && TornTailBytes == 0;
}

internal static class SpoolRecovery
{
    public static string[] SegmentFiles(string dir)
    {
        var files = System.IO.Directory.GetFiles(dir, "*.seg");
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    public static long SequenceOf(string path)
        => long.TryParse(Path.GetFileNameWithoutExtension(path), System.Globalization.NumberStyles.HexNumber, null, out long s) ? s : -1;

    public static RecoveryReport Run(string dir, bool repair, SpoolRecordVisitor? visitor = null)
    {
        var report = new RecoveryReport();
        string quarantine = Path.Combine(dir, "quarantine");
        // Quarantined copies are named after their segment: a sequence seen there is never given again, or a
        // later damaged region of a new segment with the same number would find its copy's name taken.
        if (System.IO.Directory.Exists(quarantine))
        {
            foreach (string copy in System.IO.Directory.EnumerateFiles(quarantine))
            {
                string name = Path.GetFileName(copy);
                if (name.Length >= 16 && long.TryParse(name.AsSpan(0, 16), System.Globalization.NumberStyles.HexNumber, null, out long seen))
                {
                    report.LastSequence = Math.Max(report.LastSequence, seen);
                }
            }
        }
        bool dirChanged = false;
        foreach (string path in SegmentFiles(dir))
        {
            long seq = SequenceOf(path);
            report.LastSequence = Math.Max(report.LastSequence, seq);
            try
            {
                if (RecoverSegment(path, quarantine, repair, report, visitor)) dirChanged = true;
            }
            catch (FileNotFoundException) when (!repair)
            {
                // Read-only, beside a live server: it deletes a segment once nothing in it is live. Gone is empty.
            }
        }
        if (dirChanged && repair) LibC.FsyncDirectory(dir);
        return report;
    }

    /// <summary>Returns true when the segment file was deleted or moved.</summary>
    private static bool RecoverSegment(string path, string quarantine, bool repair, RecoveryReport report, SpoolRecordVisitor? visitor)
    {
        string name = Path.GetFileName(path);
        var marks = new List<(long Offset, long Length, bool HasSlot0, bool Zero)>();
        long live = 0;
        bool leftInPlace = false;
        ulong salt;
        using (var file = new MappedFile(path))
        {
            var span = file.Span;
            if (!SpoolFormat.TryReadSegmentHeader(span, out salt, out _, out long declared) || declared != span.Length)
            {
                if (span.IndexOfAnyExcept((byte)0) < 0)
                {
                    if (repair) { File.Delete(path); report.DeletedSegments++; }
                    return repair;
                }
                string copy = Path.Combine(quarantine, name);
                report.Damaged.Add(new QuarantinedRegion { Segment = name, Offset = 0, Length = span.Length, Reason = "segment header does not check", CopyPath = repair ? copy : null });
                if (!repair) return false;
                System.IO.Directory.CreateDirectory(quarantine);
                File.Move(path, copy, overwrite: true);
                LibC.FsyncDirectory(quarantine);
                return true;
            }
            report.Segments++;
            var scanner = new SegmentScanner(span, salt);
            while (scanner.Next(out var r))
            {
                switch (r.Kind)
                {
                    case RegionKind.Record:
                        live++;
                        report.Messages++;
                        var slot1 = span.Slice((int)r.Offset + SpoolFormat.SlotSize, SpoolFormat.SlotSize);
                        report.Bytes += SpoolFormat.PayloadLength(slot1) - SpoolFormat.EnvelopeLength(slot1);
                        if (visitor is not null) visitor(new SpoolRecord(span, r.Offset, name));
                        break;
                    case RegionKind.Quarantined:
                        report.PreviouslyQuarantined++;
                        break;
                    case RegionKind.Damaged:
                    case RegionKind.TornTail:
                        string copy = Path.Combine(quarantine, $"{Path.GetFileNameWithoutExtension(name)}-{r.Offset:x8}.bad");
                        if (r.Kind == RegionKind.TornTail) report.TornTailBytes += r.Length;
                        else report.Damaged.Add(new QuarantinedRegion { Segment = name, Offset = r.Offset, Length = r.Length, Reason = r.Reason!, CopyPath = repair ? copy : null });
                        if (repair)
                        {
                            if (CopyAside(span.Slice((int)r.Offset, (int)r.Length), quarantine, copy))
                            {
                                marks.Add((r.Offset, r.Length, r.HasSlot0, r.Kind == RegionKind.TornTail));
                            }
                            else
                            {
                                report.LeftInPlace++;   // no room for the copy: nothing is cut without one
                                leftInPlace = true;
                            }
                        }
                        break;
                }
            }
        }
        if (!repair) return false;
        if (marks.Count > 0) Mark(path, salt, marks);
        if (live == 0 && !leftInPlace)
        {
            File.Delete(path);
            report.DeletedSegments++;
            report.Segments--;
            return true;
        }
        return false;
    }

    /// <summary>Copies a region aside, durably. False when the disk has no room for it (the partial copy is
    /// removed); any other failure throws.</summary>
    private static bool CopyAside(ReadOnlySpan<byte> bytes, string quarantine, string copy)
    {
        if (File.Exists(copy)) return true;   // an earlier, interrupted run made it from the original bytes
        string temp = copy + ".tmp";
        try
        {
            System.IO.Directory.CreateDirectory(quarantine);
            using (var h = File.OpenHandle(temp, FileMode.Create, FileAccess.Write))
            {
                RandomAccess.Write(h, bytes, 0);
                if (LibC.Fdatasync((int)h.DangerousGetHandle()) != 0)
                {
                    int errno = LibC.LastError;
                    throw new IOException($"fdatasync {temp}: errno {errno}", errno);
                }
            }
        }
        catch (IOException e) when (e.HResult is LibC.ENOSPC or LibC.EDQUOT)
        {
            try { File.Delete(temp); } catch (IOException) { }
            return false;
        }
        File.Move(temp, copy, overwrite: true);
        LibC.FsyncDirectory(quarantine);
        return true;
    }

    /// <summary>Makes each set-aside region one every reader skips, then makes that durable.</summary>
    private static void Mark(string path, ulong salt, List<(long Offset, long Length, bool HasSlot0, bool Zero)> marks)
    {
        using SafeFileHandle h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        Span<byte> header = stackalloc byte[SpoolFormat.RecordHeaderSize];
        foreach (var (offset, length, hasSlot0, zero) in marks)
        {
            if (zero)
            {
                var zeros = new byte[Math.Min(length, 1 << 20)];
                for (long done = 0; done < length; done += zeros.Length)
                    RandomAccess.Write(h, zeros.AsSpan(0, (int)Math.Min(zeros.Length, length - done)), offset + done);
                continue;
            }
            if (hasSlot0)
            {
                RandomAccess.Read(h, header, offset);
                var slot1 = header[SpoolFormat.SlotSize..];
                BinaryPrimitives.WriteUInt64LittleEndian(slot1, SpoolFormat.CommitWord(slot1, RecordState.Quarantined, salt, offset));
                RandomAccess.Write(h, slot1[..8], offset + SpoolFormat.SlotSize);
            }
            else
            {
                // Slot 1 first: the region becomes visible only when slot 0 checks, and then it is already Quarantined.
                header.Clear();
                var slot1 = header[SpoolFormat.SlotSize..];
                BinaryPrimitives.WriteUInt64LittleEndian(slot1, SpoolFormat.CommitWord(slot1, RecordState.Quarantined, salt, offset));
                RandomAccess.Write(h, slot1, offset + SpoolFormat.SlotSize);
                SpoolFormat.WriteSlot0(header[..SpoolFormat.SlotSize], salt, offset, (uint)length);
                RandomAccess.Write(h, header[..SpoolFormat.SlotSize], offset);
            }
        }
        if (LibC.Fdatasync((int)h.DangerousGetHandle()) != 0) throw new IOException($"fdatasync {path}: errno {LibC.LastError}");
    }
}
