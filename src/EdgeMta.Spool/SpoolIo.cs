// The spool's file I/O while it serves, as one seam: every call a segment makes on its file goes through
// here, so that a test can stand between the spool and the disk. The power-loss simulation records each
// write with whether it was synchronous, and each sync, and then builds the files a host that lost power
// at any moment could have left (tests/EdgeMta.Spool.Tests/PowerLoss*.cs); a fault test can fail or stall a
// call. Recovery and the offline commands do not come this way: they run before or without the writer.
// What it does not do: retry, log, or decide. It returns 0 or an errno, as the system call did.
// Cost: one virtual call per system call, beside a system call of 2 to 100 µs.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

internal unsafe class SpoolIo
{
    public static readonly SpoolIo System = new();

    /// <summary>Creates the file (O_EXCL) and opens it for writing: direct (O_DIRECT) if the filesystem takes it,
    /// else through the page cache (many FUSE filesystems, and tmpfs before Linux 6.6, refuse O_DIRECT with EINVAL).</summary>
    public virtual int Create(string path, out int fd, out bool direct)
    {
        const int Flags = LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_CREAT | LibC.O_EXCL;
        direct = true;
        fd = LibC.Open(path, Flags | LibC.O_DIRECT, 0x180 /* 0600 */);
        if (fd >= 0 && DirectAlignment(fd) <= Segment.Block) return 0;
        int err = fd >= 0 ? LibC.EINVAL : LibC.LastError;
        if (fd >= 0) LibC.Close(fd);   // a 4 KiB-sector disk: the 512-byte regions go through the page cache
        if (err != LibC.EINVAL) return err;
        // The O_EXCL create may have happened before O_DIRECT was refused: open what is there without it.
        direct = false;
        fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_CREAT, 0x180);
        return fd >= 0 ? 0 : LibC.LastError;
    }

    /// <summary>The file offset alignment direct I/O needs (statx STATX_DIOALIGN, Linux 6.1: stx_dio_offset_align,
    /// the u32 at 156); 512 where the kernel does not say, the logical sector of nearly every disk.</summary>
    private static int DirectAlignment(int fd)
    {
        const uint StatxDioAlign = 0x2000;
        byte* buffer = stackalloc byte[256];
        byte empty = 0;
        if (LibC.Statx(fd, &empty, LibC.AT_EMPTY_PATH, StatxDioAlign, buffer) != 0) return 512;
        if ((*(uint*)buffer & StatxDioAlign) == 0) return 512;
        uint align = *(uint*)(buffer + 156);
        return align == 0 ? 512 : (int)align;
    }

    /// <summary>fallocate(2) with <paramref name="mode"/> (0 allocates, never sparse).</summary>
    public virtual int Allocate(int fd, int mode, long offset, long length)
    {
        if (mode == 0) return LibC.PosixFallocate(fd, offset, length);
        return LibC.Fallocate(fd, mode, offset, length) == 0 ? 0 : LibC.LastError;
    }

    /// <summary>Writes every byte of the vectors at <paramref name="offset"/>; with <paramref name="sync"/> the data
    /// is durable when it returns 0 (RWF_DSYNC: on a disk without FUA, a write then a cache flush).</summary>
    public virtual int Write(int fd, LibC.IoVec* iov, int count, long offset, bool sync)
    {
        int flags = sync ? LibC.RWF_DSYNC : 0;
        while (count > 0)
        {
            nint n = LibC.Pwritev2(fd, iov, count, offset, flags);
            if (n < 0)
            {
                int e = LibC.LastError;
                if (e == LibC.EINTR) continue;
                return e;
            }
            if (n == 0) return LibC.EIO;   // no progress
            offset += n;
            // Short (a signal, or a full disk part way): skip what went, and go on with the rest.
            while (count > 0 && (nuint)n >= iov->Length)
            {
                n -= (nint)iov->Length;
                iov++;
                count--;
            }
            if (count > 0 && n > 0)
            {
                iov->Base += n;
                iov->Length -= (nuint)n;
            }
        }
        return 0;
    }

    public virtual int Read(int fd, byte* buffer, int length, long offset)
    {
        int done = 0;
        while (done < length)
        {
            nint n = LibC.Pread(fd, buffer + done, (nuint)(length - done), offset + done);
            if (n < 0)
            {
                int e = LibC.LastError;
                if (e == LibC.EINTR) continue;
                return e;
            }
            if (n == 0) return LibC.EIO;
            done += (int)n;
        }
        return 0;
    }

    public virtual int SyncData(int fd) => LibC.Fdatasync(fd) == 0 ? 0 : LibC.LastError;

    public virtual int SyncDirectory(string path) => LibC.FsyncDirectory(path);

    public virtual void Close(int fd) => LibC.Close(fd);

    public virtual void Delete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
