// `spool drain --spool DIR --out DIR`: hands every message to the next hop (here, a directory) and then
// marks it consumed, so the spool does not grow forever.
// Order, per segment, so a crash at any point loses nothing and at worst exports a message twice:
//   1. export each committed record (<id>.eml, <id>.json), fdatasync each file, fsync the out directory;
//   2. mark those records Consumed in place (one 8-byte commit word each), fdatasync the segment;
//   3. delete the segment when nothing in it is live or damaged any more, fsync the spool directory.
// Drain takes the spool's directory lock: it never runs beside a server writing the same spool.
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
        try { lockFd = Spool.TakeDirectoryLock(dir); }
        catch (IOException e) { output.WriteLine($"error: {e.Message}"); return Error; }
        try
        {
            Directory.CreateDirectory(outDir);
            long drained = 0, damaged = 0;
            int deleted = 0;
            foreach (string path in SpoolRecovery.SegmentFiles(dir))
            {
                var (n, bad, empty) = DrainSegment(path, outDir);
                drained += n;
                damaged += bad;
                if (empty)
                {
                    File.Delete(path);
                    LibC.FsyncDirectory(dir);
                    deleted++;
                }
            }
            output.WriteLine($"drained {drained} messages to {outDir}; deleted {deleted} segments");
            if (damaged > 0) output.WriteLine($"{damaged} damaged records left in place (see verify)");
            return damaged > 0 ? Damage : Ok;
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

    private static (long Drained, long Damaged, bool Empty) DrainSegment(string path, string outDir)
    {
        var offsets = new List<long>();
        long damaged = 0;
        ulong salt;
        using (var file = new MappedFile(path))
        {
            var span = file.Span;
            if (!SpoolFormat.TryReadSegmentHeader(span, out salt, out _, out _)) return (0, 1, false);
            var scanner = new SegmentScanner(span, salt);
            string name = Path.GetFileName(path);
            while (scanner.Next(out var r))
            {
                if (r.Kind == RegionKind.Record)
                {
                    ExportOne(new SpoolRecord(span, r.Offset, name), outDir, durable: true);
                    offsets.Add(r.Offset);
                }
                else if (r.Kind == RegionKind.Damaged) damaged++;
            }
        }
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
        return (offsets.Count, damaged, damaged == 0);
    }
}
