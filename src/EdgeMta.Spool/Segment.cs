// One writable segment: a file pre-allocated with posix_fallocate (never sparse, so a store into the
// mapping cannot raise SIGBUS on a full disk) and mapped MAP_SHARED for writing.
// Lifetime: the spool holds one reference while the segment is current; every open region and every
// commit waiting for the flusher holds one more. The last release unmaps it, and deletes the file when no
// record was ever committed in it (regions abandoned by growth, or an oversized region given up).
// Tail and region bookkeeping are guarded by the spool's lock; Watermark belongs to the flusher thread.
using System.Runtime.InteropServices;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

internal sealed unsafe class Segment
{
    public readonly long Sequence;
    public readonly string Path;
    public readonly long Length;
    public readonly ulong Salt;
    public readonly byte* Base;
    private readonly int _fd;

    /// <summary>Next free offset (spool lock).</summary>
    public long Tail;
    /// <summary>Everything below is durable, including every slot 0 (flusher thread only).</summary>
    public long Watermark;
    /// <summary>A flush failed: nothing more is committed here (RFC 5321 §6.1: a failed fsync proves nothing later).</summary>
    public volatile bool Retired;
    public int Committed;
    private int _refs = 1;

    private Segment(long sequence, string path, long length, ulong salt, byte* baseAddress, int fd)
    {
        Sequence = sequence; Path = path; Length = length; Salt = salt; Base = baseAddress; _fd = fd;
        Tail = SpoolFormat.SegmentHeaderSize;
    }

    /// <summary>Creates, pre-allocates, maps and makes durable the name of a new segment. Returns 0 or an errno.</summary>
    public static int TryCreate(string directory, long sequence, long length, out Segment? segment)
    {
        segment = null;
        string path = System.IO.Path.Combine(directory, SpoolFormat.SegmentFileName(sequence));
        int fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC | 0x40 /* O_CREAT */ | 0x80 /* O_EXCL */, 0x180 /* 0600 */);
        if (fd < 0) return LibC.LastError;
        int err = LibC.PosixFallocate(fd, 0, length);
        if (err != 0) { Abandon(fd, path); return err; }
        nint p = LibC.Mmap(0, (nuint)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        if (p == LibC.MapFailed) { err = LibC.LastError; Abandon(fd, path); return err; }
        ulong salt = (ulong)Random.Shared.NextInt64() | 1;
        SpoolFormat.WriteSegmentHeader(new Span<byte>((void*)p, SpoolFormat.SegmentHeaderSize), salt, sequence, length, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        // The header and the name must be durable before any record in the file is acknowledged.
        if (LibC.Msync(p, 4096, LibC.MS_SYNC) != 0 || (err = LibC.FsyncDirectory(directory)) != 0)
        {
            if (err == 0) err = LibC.LastError;
            LibC.Munmap(p, (nuint)length);
            Abandon(fd, path);
            return err;
        }
        segment = new Segment(sequence, path, length, salt, (byte*)p, fd);
        return 0;
    }

    private static void Abandon(int fd, string path)
    {
        LibC.Close(fd);
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public Span<byte> Span(long offset, int length) => new(Base + offset, length);

    /// <summary>Writes slot 0 of a region just reserved at the tail (spool lock held).</summary>
    public void WriteReservation(long offset, uint length)
    {
        SpoolFormat.WriteSlot0Body(Span(offset, SpoolFormat.SlotSize), Salt);
        Volatile.Write(ref *(ulong*)(Base + offset), SpoolFormat.ExtentWord(Salt, offset, length));
    }

    /// <summary>Replaces the extent word of a tail region in one aligned 8-byte store (spool lock held).</summary>
    public void ShrinkReservation(long offset, uint length)
        => Volatile.Write(ref *(ulong*)(Base + offset), SpoolFormat.ExtentWord(Salt, offset, length));

    /// <summary>msync(MS_SYNC) of [from, to) rounded out to pages. Returns 0 or an errno.</summary>
    public int Flush(long from, long to)
    {
        const long Page = 4096;
        long lo = from & ~(Page - 1);
        long hi = Math.Min(Length, (to + Page - 1) & ~(Page - 1));
        if (hi <= lo) return 0;
        return LibC.Msync((nint)(Base + lo), (nuint)(hi - lo), LibC.MS_SYNC) == 0 ? 0 : LibC.LastError;
    }

    public void AddRef() => Interlocked.Increment(ref _refs);

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) != 0) return;
        LibC.Munmap((nint)Base, (nuint)Length);
        if (Volatile.Read(ref Committed) == 0 && !Retired)
        {
            try { File.Delete(Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        LibC.Close(_fd);
    }
}
