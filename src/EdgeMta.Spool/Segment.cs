// One writable segment: a file pre-allocated with posix_fallocate (never sparse: no write into it needs a
// new block, so a full disk cannot fail a message half way) and, for the segments the supply prepares
// ahead, written through with zeros before any record goes in (MessageSpool.Supply.cs).
// Writes are direct (O_DIRECT), block-aligned, from aligned buffers; the write that makes a commit durable
// carries RWF_DSYNC, so the 250 waits for one device round trip of its own, and several such writes are in
// flight at once (measured here, 4 KiB: 1 in flight 6,800/s, 8 in flight 18,600/s; page cache + fdatasync
// 5,200 and 10,600: fdatasync calls on one file serialise; docs/PERF-NOTES.md). Why zeros first: a direct
// write into fallocated ("unwritten") blocks converts them at completion, a journal commit per write
// (measured: 4,400/s against 7,000/s into written blocks, one in flight); 64 MiB of zeros take 90 ms,
// once per segment, on the supply's thread.
// A filesystem that refuses O_DIRECT (tmpfs, many FUSE ones) gets the same writes through the page cache;
// a durable write is then pwrite and fdatasync, which also carries any earlier write of the segment.
// No mapping: a shared mapping beside direct writes would see pages invalidated under it; reads (a region
// moved when it outgrows itself) use pread on the same descriptor.
// Lifetime: the spool holds one reference while the segment is current; every open region and every
// write in flight holds one more. The last release deletes the file when no commit word was ever written
// into it, and otherwise gives back the unused tail (fallocate PUNCH_HOLE; the length stays, the holes read
// as zeros), so a segment retired by an error or left by a restart pins only what it holds.
// Tail is guarded by the spool's lock.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

internal sealed unsafe class Segment
{
    /// <summary>Direct writes start and end on this boundary (the disk's logical sector or the filesystem's
    /// direct-I/O alignment, whichever is larger); every region starts on it. Buffers are aligned to 4096.</summary>
    public const int Block = 512;
    public const int BufferAlign = 4096;

    public readonly long Sequence;
    public readonly string Path;
    public readonly long Length;
    public readonly ulong Salt;
    public readonly bool Direct;
    private readonly int _fd;
    private readonly SpoolIo _io;

    /// <summary>Next free offset (spool lock). The first region starts at one block: a direct write of the first
    /// region cannot include the segment header, so bytes 64..511 stay zero (a hole the scanner steps over).</summary>
    public long Tail = Block;
    /// <summary>A write failed: nothing more is reserved or committed here.</summary>
    public volatile bool Retired;
    /// <summary>Commit words written (or about to be): the file holds, or may hold, a record.</summary>
    public int Committed;
    private int _refs = 1;

    private Segment(SpoolIo io, long sequence, string path, long length, ulong salt, int fd, bool direct)
    {
        _io = io; Sequence = sequence; Path = path; Length = length; Salt = salt; _fd = fd; Direct = direct;
    }

    private static readonly nint ZeroChunk = (nint)NativeMemory.AlignedAlloc(ZeroChunkSize, BufferAlign);
    private const int ZeroChunkSize = 1 << 20;

    static Segment() => NativeMemory.Clear((void*)ZeroChunk, ZeroChunkSize);

    /// <summary>Creates, pre-allocates (and with <paramref name="writeZeros"/> writes through) a new segment,
    /// its header and name durable before it returns. Blocking: never on a socket thread. 0 or an errno.</summary>
    public static int TryCreate(SpoolIo io, string directory, long sequence, long length, bool writeZeros, out Segment? segment)
        => TryCreate(io, System.IO.Path.Combine(directory, SpoolFormat.SegmentFileName(sequence)), directory, sequence, length, writeZeros, SpoolFormat.SegmentMagic, out segment);

    /// <summary>The same for any file with a segment's header layout under <paramref name="magic"/> (a journal file).</summary>
    public static int TryCreate(SpoolIo io, string path, string directory, long sequence, long length, bool writeZeros, ulong magic, out Segment? segment)
    {
        segment = null;
        int err = io.Create(path, out int fd, out bool direct);
        if (err != 0) return err;
        err = io.Allocate(fd, 0, 0, length);
        for (long at = 0; err == 0 && writeZeros && at < length; at += ZeroChunkSize)
        {
            var zeros = new LibC.IoVec { Base = (byte*)ZeroChunk, Length = (nuint)Math.Min(ZeroChunkSize, length - at) };
            err = io.Write(fd, &zeros, 1, at, sync: false);
        }
        ulong salt = (ulong)Random.Shared.NextInt64() | 1;
        if (err == 0)
        {
            // The header goes out as a whole block, its other bytes zero; with the zeros, one fdatasync.
            byte* block = (byte*)NativeMemory.AlignedAlloc(Block, BufferAlign);
            NativeMemory.Clear(block, Block);
            SpoolFormat.WriteSegmentHeader(new Span<byte>(block, SpoolFormat.SegmentHeaderSize), salt, sequence, length, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), magic);
            var header = new LibC.IoVec { Base = block, Length = Block };
            err = io.Write(fd, &header, 1, 0, sync: false);
            NativeMemory.AlignedFree(block);
        }
        if (err == 0) err = io.SyncData(fd);
        if (err == 0) err = io.SyncDirectory(directory);
        if (err != 0)
        {
            io.Close(fd);
            io.Delete(path);
            return err;
        }
        segment = new Segment(io, sequence, path, length, salt, fd, direct);
        return 0;
    }

    /// <summary>Writes the vectors at <paramref name="offset"/> (block-aligned pieces). With <paramref name="durable"/>
    /// everything this segment was given before is on disk when it returns 0. The vectors may be changed.</summary>
    public int Write(LibC.IoVec* iov, int count, long offset, bool durable)
    {
        if (Direct) return _io.Write(_fd, iov, count, offset, durable);
        int err = _io.Write(_fd, iov, count, offset, sync: false);
        return err == 0 && durable ? Sync() : err;
    }

    private readonly Lock _syncGate = new();

    /// <summary>Makes every write this segment was given durable: fdatasync (direct writes: a device cache flush).
    /// Through the page cache, syncs take turns and a failed one retires the segment before the next starts:
    /// Linux reports a writeback error once per file and marks the failed pages clean, so a sync running beside
    /// a failing one could return 0 for pages the failing one lost (FORMAT.md, "Writing").</summary>
    public int Sync()
    {
        if (Direct) return _io.SyncData(_fd);
        lock (_syncGate)
        {
            if (Retired) return LibC.EIO;
            int err = _io.SyncData(_fd);
            if (err != 0) Retired = true;
            return err;
        }
    }

    public int Write(byte* data, int length, long offset, bool durable)
    {
        var v = new LibC.IoVec { Base = data, Length = (nuint)length };
        return Write(&v, 1, offset, durable);
    }

    public int Read(byte* buffer, int length, long offset) => _io.Read(_fd, buffer, length, offset);

    /// <summary>False once the file has no name left (its segment or the whole spool removed by hand): what is
    /// written into it then is durable nowhere a restart looks. One statx on the open file, no path walk.</summary>
    public bool IsLinked()
    {
        byte* buffer = stackalloc byte[256];
        byte empty = 0;
        if (LibC.Statx(_fd, &empty, LibC.AT_EMPTY_PATH, LibC.STATX_NLINK, buffer) != 0) return true; // cannot tell
        return BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(buffer + 16, 4)) > 0;
    }

    public void AddRef() => Interlocked.Increment(ref _refs);

    /// <summary>Every holder let go: the file is closed (or deleted, when it never held a commit).</summary>
    public bool Closed => Volatile.Read(ref _refs) <= 0;

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) != 0) return;
        if (Volatile.Read(ref Committed) == 0)
        {
            // No commit word ever went in: no record can be here, acknowledged or not.
            _io.Close(_fd);
            _io.Delete(Path);
            return;
        }
        // Nothing is in flight any more: the blocks past the last region go back to the filesystem. A failure
        // costs only space, and the zeros the hole reads as are what the scanner expects past the tail.
        long from = (Volatile.Read(ref Tail) + BufferAlign - 1) & ~(long)(BufferAlign - 1);
        if (from < Length) _io.Allocate(_fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, from, Length - from);
        _io.Close(_fd);
    }
}
