// One writable segment: a file pre-allocated with posix_fallocate (never sparse: no write into it needs a
// new block, so a full disk cannot fail a message half way), mapped MAP_SHARED and read-only.
// Writes go in with pwrite, into the page cache the mapping shows; flushes are msync(MS_SYNC) of the
// mapped range. Why not stores through a writable mapping (the first design): every page written through
// it faults once to become writable and, at each msync, is write-protected again with a TLB shootdown to
// the other CPU. Measured on this machine (README, "Performance work"): 64 KiB messages, 10 per flush, 240 MB/s and 150 µs
// CPU each through the mapping against 730 MB/s and 20 µs with pwrite; in the server, 1 KiB messages
// spent 15% of their CPU in those faults and shootdowns.
// Zero-ahead: posix_fallocate leaves the blocks "unwritten", and the first writeback of each one converts
// it, which dirties the inode; in ext4 every msync then writes the inode too, a second synchronous disk
// round trip (measured: an inode write in nearly every flush of 1 KiB messages, 15% of the flusher's CPU
// in its device notify alone). So the small-record path writes zeros through the page cache for the next
// ZeroChunk bytes past the tail whenever the tail passes what was zeroed, and the next msync takes that
// chunk along: one conversion per chunk instead of one per flush. Zeros over unwritten blocks change no
// byte a reader sees, and fallocated blocks need no new allocation, so this adds no failure mode.
// Lifetime: the spool holds one reference while the segment is current; every open region and every
// commit waiting for the flusher holds one more. The last release unmaps it, and deletes the file when no
// record was ever committed in it (regions abandoned by growth, or an oversized region given up).
// Tail and region bookkeeping are guarded by the spool's lock; Watermark belongs to the flusher thread.
using System.Buffers.Binary;
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
    /// <summary>Zeros are in the page cache up to here (spool lock; the flusher reads it to flush them out).</summary>
    public long ZeroedTo;
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
        nint p = LibC.Mmap(0, (nuint)length, LibC.PROT_READ, LibC.MAP_SHARED, fd, 0);
        if (p == LibC.MapFailed) { err = LibC.LastError; Abandon(fd, path); return err; }
        ulong salt = (ulong)Random.Shared.NextInt64() | 1;
        Span<byte> header = stackalloc byte[SpoolFormat.SegmentHeaderSize];
        SpoolFormat.WriteSegmentHeader(header, salt, sequence, length, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        // The header and the name must be durable before any record in the file is acknowledged.
        err = WriteAt(fd, header, 0);
        if (err == 0 && LibC.Msync(p, 4096, LibC.MS_SYNC) != 0) err = LibC.LastError;
        if (err == 0) err = LibC.FsyncDirectory(directory);
        if (err != 0)
        {
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

    /// <summary>What the file holds at [offset, offset + length), through the read-only mapping.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length) => new(Base + offset, length);

    /// <summary>pwrite of all of <paramref name="data"/> at <paramref name="offset"/>. Returns 0 or an errno.</summary>
    public int Write(long offset, ReadOnlySpan<byte> data) => WriteAt(_fd, data, offset);

    /// <summary>One pwritev of two pieces laid end to end at <paramref name="offset"/>. Returns 0 or an errno.</summary>
    public int Write(long offset, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        fixed (byte* a = first)
        fixed (byte* b = second)
        {
            LibC.IoVec* iov = stackalloc LibC.IoVec[2];
            iov[0] = new LibC.IoVec { Base = a, Length = (nuint)first.Length };
            iov[1] = new LibC.IoVec { Base = b, Length = (nuint)second.Length };
            long total = first.Length + second.Length;
            nint n;
            do n = LibC.Pwritev(_fd, iov, 2, offset); while (n < 0 && LibC.LastError == LibC.EINTR);
            if (n < 0) return LibC.LastError;
            if (n == total) return 0;
            // Short (a signal, or a full disk part way): write the rest piece by piece.
            long done = n;
            if (done < first.Length)
            {
                int e = WriteAt(_fd, first[(int)done..], offset + done);
                if (e != 0) return e;
                done = first.Length;
            }
            return WriteAt(_fd, second[(int)(done - first.Length)..], offset + done);
        }
    }

    private static int WriteAt(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            long done = 0;
            while (done < data.Length)
            {
                nint n = LibC.Pwrite(fd, p + done, (nuint)(data.Length - done), offset + done);
                if (n < 0)
                {
                    int e = LibC.LastError;
                    if (e == LibC.EINTR) continue;
                    return e;
                }
                if (n == 0) return 5; // EIO: no progress
                done += n;
            }
            return 0;
        }
    }

    /// <summary>Writes slot 0 of a region just reserved at the tail (spool lock held), the extent word
    /// included: one 64-byte write within one sector.</summary>
    public int WriteReservation(long offset, uint length)
    {
        Span<byte> slot0 = stackalloc byte[SpoolFormat.SlotSize];
        SpoolFormat.WriteSlot0(slot0, Salt, offset, length);
        return Write(offset, slot0);
    }

    /// <summary>Replaces the extent word of a tail region (spool lock held): one aligned 8-byte write.</summary>
    public int ShrinkReservation(long offset, uint length)
    {
        Span<byte> word = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(word, SpoolFormat.ExtentWord(Salt, offset, length));
        return Write(offset, word);
    }

    /// <summary>Stores a commit word (slot 1's first 8 bytes) of the region at <paramref name="offset"/>.</summary>
    public int WriteCommitWord(long offset, ulong word)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, word);
        return Write(offset + SpoolFormat.SlotSize + SpoolFormat.CommitWordOffset, bytes);
    }

    public const int ZeroChunk = 64 << 10;
    private static readonly byte[] Zeros = new byte[ZeroChunk];

    /// <summary>Writes zeros from <paramref name="end"/> (the tail just written) to one chunk past the next
    /// chunk boundary, spool lock held: under two chunks, so one pwritev of the zero buffer twice. A failed
    /// write leaves bytes that were zero anyway, so it is not an error.</summary>
    public void ZeroAhead(long end)
    {
        if (end <= ZeroedTo) return;
        long to = Math.Min(Length, ((end + ZeroChunk - 1) & ~(long)(ZeroChunk - 1)) + ZeroChunk);
        int n = (int)(to - end);
        int first = Math.Min(n, ZeroChunk);
        if (Write(end, Zeros.AsSpan(0, first), Zeros.AsSpan(0, n - first)) == 0) Volatile.Write(ref ZeroedTo, to);
    }

    /// <summary>False once the file has no name left (its segment or the whole spool removed by hand): what is
    /// flushed into it then is durable nowhere a restart looks. One statx on the open file, no path walk.</summary>
    public bool IsLinked()
    {
        byte* buffer = stackalloc byte[256];
        byte empty = 0;
        if (LibC.Statx(_fd, &empty, LibC.AT_EMPTY_PATH, LibC.STATX_NLINK, buffer) != 0) return true; // cannot tell
        return BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(buffer + 16, 4)) > 0;
    }

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
