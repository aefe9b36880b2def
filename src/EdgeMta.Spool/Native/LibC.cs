// The few libc calls the spool needs, as AOT-safe [LibraryImport] stubs (Linux, 64-bit).
// Why not FileStream/MemoryMappedFile: posix_fallocate is the only way to get a segment that is never
// sparse (a store into a sparse page on a full disk raises SIGBUS and kills the process), and
// RandomAccess has no pwritev2 (RWF_DSYNC), no O_DIRECT open, no fallocate modes; and the readers map
// segments read-only with mmap.
using System.Runtime.InteropServices;

namespace EdgeMta.Spool.Native;

internal static unsafe partial class LibC
{
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int ENOSPC = 28;
    public const int EDQUOT = 122;
    public const int EWOULDBLOCK = 11;
    public const int EROFS = 30;
    public const int PROT_READ = 1, PROT_WRITE = 2;
    public const int MAP_SHARED = 1;
    public const int EINVAL = 22;
    public const int ETIMEDOUT = 110;
    // x86-64 values (O_DIRECT and O_DIRECTORY differ on arm64: 0x10000 and 0x4000).
    public const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_DIRECT = 0x4000, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    /// <summary>pwritev2 flag: this write is durable (data and the metadata to read it) when the call returns.</summary>
    public const int RWF_DSYNC = 2;
    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
    public const int LOCK_EX = 2, LOCK_NB = 4;
    public static readonly nint MapFailed = -1;

    [LibraryImport("libc", EntryPoint = "posix_fallocate", SetLastError = false)]
    public static partial int PosixFallocate(int fd, long offset, long length);   // returns the error number, not -1

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);


    /// <summary>statx(2) (glibc 2.28): with AT_EMPTY_PATH and an empty path it reads the open file itself,
    /// no path walk. The buffer is struct statx, 256 bytes; stx_nlink is the u32 at offset 16.</summary>
    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    public static partial int Statx(int dirFd, byte* path, int flags, uint mask, byte* buffer);
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_NLINK = 0x4;

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    public static partial nint Pwrite(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pwritev", SetLastError = true)]
    public static partial nint Pwritev(int fd, IoVec* iov, int count, long offset);

    /// <summary>pwritev2(2) (glibc 2.26): pwritev with per-call flags (RWF_DSYNC).</summary>
    [LibraryImport("libc", EntryPoint = "pwritev2", SetLastError = true)]
    public static partial nint Pwritev2(int fd, IoVec* iov, int count, long offset, int flags);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static partial nint Pread(int fd, byte* buffer, nuint count, long offset);

    /// <summary>fallocate(2): mode 0 allocates; PUNCH_HOLE|KEEP_SIZE gives blocks back, keeping the length.</summary>
    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    public const int EINTR = 4;

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int Fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statvfs(string path, out StatVfs buf);

    /// <summary>struct statvfs of glibc/musl on 64-bit Linux: eleven unsigned longs, then spare ints.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatVfs
    {
        public ulong BlockSize, FragmentSize, Blocks, BlocksFree, BlocksAvailable, Files, FilesFree, FilesAvailable, FsId, Flag, NameMax;
        public fixed int Spare[6];
    }

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>fsync a directory so a file created or deleted in it survives a crash (the entry is metadata of the directory).</summary>
    public static int FsyncDirectory(string path)
    {
        int fd = Open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) return LastError;
        int rc = Fsync(fd) == 0 ? 0 : LastError;
        Close(fd);
        return rc;
    }

    /// <summary>Bytes an unprivileged writer may still allocate under <paramref name="path"/>, or -1 when statvfs fails.</summary>
    public static long AvailableBytes(string path)
        => Statvfs(path, out var s) == 0 ? (long)(s.BlocksAvailable * s.FragmentSize) : -1;

    /// <summary>One statvfs: bytes and inodes an unprivileged writer may still take (f_bavail, f_favail) and the
    /// filesystem's inode count (f_files; 0 where it keeps none). Returns 0 or an errno.</summary>
    public static int FreeSpace(string path, out long bytes, out long inodes, out long totalInodes)
    {
        if (Statvfs(path, out var s) != 0)
        {
            bytes = inodes = totalInodes = 0;
            return LastError;
        }
        bytes = (long)(s.BlocksAvailable * s.FragmentSize);
        inodes = (long)Math.Min(s.FilesAvailable, long.MaxValue);
        totalInodes = (long)Math.Min(s.Files, long.MaxValue);
        return 0;
    }
}
