// Zero-ahead (Segment.cs): the first flush of a small record must take the next chunk's blocks from
// "unwritten" to written, so that later flushes in that chunk change no extent and write no inode.
// Seen through FIEMAP, which reports each extent of the segment file and whether it is still unwritten.
// Needs a filesystem with unwritten extents (ext4, xfs): the temporary directory is on one here and in CI.
using System.Runtime.InteropServices;

namespace EdgeMta.Spool.Tests;

public partial class ZeroAheadTests
{
    [Fact]
    public async Task TheFirstFlushOfASmallRecordConvertsTheWholeNextChunk()
    {
        using var dir = new TempDir();
        string segment;
        using (var spool = TestSpools.Open(dir.Path, segment: 4 << 20))
        {
            Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, seed: 3, size: 1000)).Result);
            segment = Assert.Single(Directory.GetFiles(dir.Path, "*.seg"));

            // Far past anything written or zeroed: still unwritten, or this filesystem cannot show the difference.
            Assert.True(IsUnwritten(segment, 2 << 20, 4096) == true,
                $"{segment}: FIEMAP shows no unwritten extent in a fallocated file; this test needs ext4 or xfs");
            // The record, its page and the chunk after it went out in the one flush, as written blocks.
            Assert.False(IsUnwritten(segment, 0, Segment.ZeroChunk));
        }
    }

    [Fact]
    public async Task RecordsAfterTheZeroedChunkStillReadBackWhole()
    {
        using var dir = new TempDir();
        var ids = new List<string>();
        using (var spool = TestSpools.Open(dir.Path, segment: 1 << 20))
        {
            // About 1.4 KiB a record: the tail crosses several chunk boundaries, each zeroed ahead once.
            for (int i = 0; i < 200; i++)
            {
                var (result, id) = await TestSpools.Write(spool, seed: i, size: 1300);
                Assert.Equal(CommitResult.Committed, result);
                ids.Add(id);
            }
        }
        var all = TestSpools.ReadAll(dir.Path, out var report);
        Assert.True(report.IsClean);
        Assert.Equal(ids.Count, all.Count);
        for (int i = 0; i < ids.Count; i++) Assert.Equal(TestSpools.Content(i, 1300), all[ids[i]].Data);
    }

    private const uint FiemapExtentUnwritten = 0x800;
    private const nuint FsIocFiemap = 0xC020660B;
    private const int MaxExtents = 32;

    /// <summary>Whether any extent overlapping [offset, offset + length) is unwritten; null when the range
    /// maps to no extent at all.</summary>
    private static unsafe bool? IsUnwritten(string path, long offset, long length)
    {
        // struct fiemap (32 bytes) then fiemap_extent[MaxExtents] (56 bytes each).
        byte* buffer = stackalloc byte[32 + 56 * MaxExtents];
        new Span<byte>(buffer, 32 + 56 * MaxExtents).Clear();
        *(ulong*)buffer = (ulong)offset;          // fm_start
        *(ulong*)(buffer + 8) = (ulong)length;    // fm_length
        *(uint*)(buffer + 24) = MaxExtents;       // fm_extent_count
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        if (Ioctl((int)handle.DangerousGetHandle(), FsIocFiemap, buffer) != 0)
        {
            throw new IOException($"FIEMAP {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        uint mapped = *(uint*)(buffer + 20);      // fm_mapped_extents
        if (mapped == 0) return null;
        for (int i = 0; i < mapped; i++)
        {
            uint flags = *(uint*)(buffer + 32 + 56 * i + 40);   // fe_flags
            if ((flags & FiemapExtentUnwritten) != 0) return true;
        }
        return false;
    }

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(int fd, nuint request, byte* argument);
}
