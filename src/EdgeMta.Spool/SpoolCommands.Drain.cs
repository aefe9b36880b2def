// `spool drain --spool DIR --out DIR`: hands every message to the next hop (here, a directory) and then
// marks it consumed, so the spool does not grow forever.
// Order, per segment, so a crash at any point loses nothing and at worst exports a message twice:
//   1. export each committed record (<id>.eml, <id>.json), fdatasync each file, fsync the out directory;
//   2. mark those records Consumed in place (one 8-byte commit word each), fdatasync the segment;
//   3. delete the segment when nothing in it is live or damaged any more, fsync the spool directory.
// Drain takes the spool's directory lock: it never runs beside a server writing the same spool.
// The delivery journal decides what goes out (FORMAT.md "Delivery journal"): a message whose every recipient is
// final is not exported; it is marked Consumed too unless a bounce is still owed for it, in which case it stays
// for the server to compose that bounce at its next start (and its segment stays). A partly delivered message
// is exported with only its pending recipients in <id>.json.
using System.Buffers.Binary;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public static partial class SpoolCommands
{
    public static int Drain(string spool, string outDir, TextWriter output)
    {
        if (!Directory.Exists(spool)) { output.WriteLine($"error: no spool at {spool}"); return Error; }
        string dir = Path.GetFullPath(spool);
        int lockFd;
        try { lockFd = MessageSpool.TakeDirectoryLock(dir); }
        catch (IOException e) { output.WriteLine($"error: {e.Message}"); return Error; }
        try
        {
            Directory.CreateDirectory(outDir);
            RecordLiveness liveness = ReadLiveness(dir);
            var counts = new DrainCounts();
            int deleted = 0;
            foreach (string path in SpoolRecovery.SegmentFiles(dir))
            {
                bool empty = DrainSegment(path, outDir, liveness, counts);
                if (empty)
                {
                    File.Delete(path);
                    LibC.FsyncDirectory(dir);
                    deleted++;
                }
            }
            output.WriteLine($"drained {counts.Drained} messages to {outDir}; deleted {deleted} segments");
            if (counts.Copies > 0) output.WriteLine($"{counts.Copies} copies left by a copy-forward were released, not exported");
            if (counts.Finished > 0) output.WriteLine($"{counts.Finished} messages already delivered (or failed or deleted) were released, not exported");
            if (counts.BounceOwed > 0) output.WriteLine($"{counts.BounceOwed} failed messages left in place: the server sends their bounces when it next starts");
            if (counts.Damaged > 0) output.WriteLine($"{counts.Damaged} damaged records left in place (see verify)");
            return counts.Damaged > 0 ? Damage : Ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            output.WriteLine($"error: {e.Message}");
            return Error;
        }
        finally
        {
            LibC.Close(lockFd);
        }
    }

    private sealed class DrainCounts
    {
        public long Drained, Finished, BounceOwed, Damaged, Copies;
    }

    // True when nothing live or damaged is left in the segment (it may be deleted).
    private static bool DrainSegment(string path, string outDir, RecordLiveness liveness, DrainCounts counts)
    {
        var offsets = new List<long>();
        long damaged = 0, kept = 0;
        ulong salt;
        using (var file = new MappedFile(path))
        {
            var span = file.Span;
            if (!SpoolFormat.TryReadSegmentHeader(span, out salt, out _, out _)) { counts.Damaged++; return false; }
            var scanner = new SegmentScanner(span, salt);
            string name = Path.GetFileName(path);
            while (scanner.Next(out var r))
            {
                if (r.Kind == RegionKind.Record)
                {
                    var record = new SpoolRecord(span, r.Offset, name);
                    var e = record.Envelope;
                    int recipients = e.RecipientCount;
                    if (!IsMessage(liveness, record, out var m))
                    {
                        // The other record of this queue id is the message (FORMAT.md "Copy-forward"): this one goes.
                        counts.Copies++;
                        offsets.Add(r.Offset);
                        continue;
                    }
                    if (m is not null && ProgressOf(m, recipients) == DeliveryProgress.Done)
                    {
                        if (!Releasable(m, recipients, e.ReversePath.IsEmpty)) { counts.BounceOwed++; kept++; continue; }
                        counts.Finished++;
                    }
                    else
                    {
                        ExportOne(record, m, outDir, durable: true);
                        counts.Drained++;
                    }
                    offsets.Add(r.Offset);
                }
                else if (r.Kind == RegionKind.Damaged) damaged++;
            }
        }
        counts.Damaged += damaged;
        if (offsets.Count > 0)
        {
            if (LibC.FsyncDirectory(outDir) != 0) throw new IOException($"fsync {outDir}: errno {LibC.LastError}");
            using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            Span<byte> slot1 = stackalloc byte[SpoolFormat.SlotSize];
            foreach (long offset in offsets)
            {
                RandomAccess.Read(h, slot1, offset + SpoolFormat.SlotSize);
                BinaryPrimitives.WriteUInt64LittleEndian(slot1, SpoolFormat.CommitWord(slot1, RecordState.Consumed, salt, offset));
                RandomAccess.Write(h, slot1[..8], offset + SpoolFormat.SlotSize);
            }
            if (LibC.Fdatasync((int)h.DangerousGetHandle()) != 0) throw new IOException($"fdatasync {path}: errno {LibC.LastError}");
        }
        return damaged == 0 && kept == 0;
    }
}
