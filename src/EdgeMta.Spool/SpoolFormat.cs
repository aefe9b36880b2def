// The on-disk layout of a segment (FORMAT.md is the prose version; keep both in step).
// A segment is a pre-allocated file of 64-byte aligned regions after a 64-byte segment header. A region
// starts with a reservation header (slot 0: its length, written once when the region is reserved) and a
// commit header (slot 1: all zero until the record is committed). Both slots are 64 bytes and 64-byte
// aligned, so each lies inside one 512-byte sector and reaches the disk whole or not at all.
// The two words that change after a region is written (slot 0's extent word when a tail region is
// shrunk, slot 1's commit word when a record is committed, consumed or quarantined) are rewritten alone,
// 8 aligned bytes each, and only before the flush that makes the record acknowledged.
// Every header checksum binds the header to its segment salt (random per segment) and its offset: a
// message body that carries header-shaped bytes cannot pass for a record during a resynchronising scan.
using System.Buffers.Binary;

namespace EdgeMta.Spool;

internal enum RecordState : uint
{
    Uncommitted = 0,
    Committed = 1,
    Consumed = 2,
    Quarantined = 3,
}

internal static class SpoolFormat
{
    public const int Align = 64;
    public const int SegmentHeaderSize = 64;
    public const int SlotSize = 64;
    public const int RecordHeaderSize = 2 * SlotSize;   // slot 0 + slot 1; the payload follows
    public const uint Version = 1;
    public const int QueueIdSize = 16;

    // "EMSPOOL1" and "EMRG" read as little-endian integers.
    public const ulong SegmentMagic = 0x314C4F4F50534D45UL;
    public const uint RegionMagic = 0x47524D45u;

    public static long AlignUp(long n) => (n + (Align - 1)) & ~(long)(Align - 1);

    // ---- segment header: magic u64, version u32, header size u32, salt u64, sequence u64, length u64,
    //      created unix ms i64, reserved, crc32c of bytes 0..59 at 60.
    public static void WriteSegmentHeader(Span<byte> h, ulong salt, long sequence, long length, long createdMs)
        => WriteSegmentHeader(h, salt, sequence, length, createdMs, SegmentMagic);

    /// <summary>The same header with another magic: a delivery journal file's is `EMJRNL01` (FORMAT.md).</summary>
    public static void WriteSegmentHeader(Span<byte> h, ulong salt, long sequence, long length, long createdMs, ulong magic)
    {
        h[..SegmentHeaderSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(h, magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], SegmentHeaderSize);
        BinaryPrimitives.WriteUInt64LittleEndian(h[16..], salt);
        BinaryPrimitives.WriteInt64LittleEndian(h[24..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], length);
        BinaryPrimitives.WriteInt64LittleEndian(h[40..], createdMs);
        BinaryPrimitives.WriteUInt32LittleEndian(h[60..], Crc32C.Compute(h[..60]));
    }

    public static bool TryReadSegmentHeader(ReadOnlySpan<byte> h, out ulong salt, out long sequence, out long length)
        => TryReadSegmentHeader(h, SegmentMagic, out salt, out sequence, out length);

    public static bool TryReadSegmentHeader(ReadOnlySpan<byte> h, ulong magic, out ulong salt, out long sequence, out long length)
    {
        salt = 0; sequence = 0; length = 0;
        if (h.Length < SegmentHeaderSize) return false;
        if (BinaryPrimitives.ReadUInt64LittleEndian(h) != magic) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(h[8..]) != Version) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(h[60..]) != Crc32C.Compute(h[..60])) return false;
        salt = BinaryPrimitives.ReadUInt64LittleEndian(h[16..]);
        sequence = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
        length = BinaryPrimitives.ReadInt64LittleEndian(h[32..]);
        return true;
    }

    // ---- slot 0 (reservation header): extent word u64 at 0 (low 32 bits: region length; high 32 bits:
    //      crc32c(magic, version, length, salt, offset)), magic u32 at 8, version u32 at 12, salt u64 at 16.
    //      The extent word is stored last and sits first, so a write-back that reads the slot in ascending
    //      order while it is being written sees either a zero word (no region: the walk ends) or all of it.
    public const int ExtentWordOffset = 0;

    public static void WriteSlot0Body(Span<byte> s, ulong salt)
    {
        s[8..SlotSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], RegionMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], Version);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], salt);
    }

    public static ulong ExtentWord(ulong salt, long offset, uint length)
    {
        Span<byte> f = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(f, RegionMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(f[4..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(f[8..], length);
        return length | ((ulong)Crc32C.Bound(f, salt, offset) << 32);
    }

    /// <summary>Whole slot 0, extent word included, as the writer and recovery write it (one 64-byte pwrite).</summary>
    public static void WriteSlot0(Span<byte> s, ulong salt, long offset, uint length)
    {
        WriteSlot0Body(s, salt);
        BinaryPrimitives.WriteUInt64LittleEndian(s, ExtentWord(salt, offset, length));
    }

    public static bool IsSlot0Empty(ReadOnlySpan<byte> s) => BinaryPrimitives.ReadUInt64LittleEndian(s) == 0;

    /// <summary>The region length if slot 0 is a valid reservation header for this place, else 0.</summary>
    public static uint ReadSlot0(ReadOnlySpan<byte> s, ulong salt, long offset)
    {
        ulong word = BinaryPrimitives.ReadUInt64LittleEndian(s);
        uint length = (uint)word;
        if (length < RecordHeaderSize || length % Align != 0) return 0;
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[8..]) != RegionMagic) return 0;
        if (BinaryPrimitives.ReadUInt64LittleEndian(s[16..]) != salt) return 0;
        return word == ExtentWord(salt, offset, length) ? length : 0;
    }

    // ---- slot 1 (commit header): commit word u64 at 0 (low 32 bits: state; high 32 bits: crc32c of
    //      bytes 8..63 and the state, bound to salt and offset), payload length u32 at 8, envelope length
    //      u32 at 12, payload crc32c u32 at 16, reserved u32, arrival unix ms i64 at 24, queue id 16 bytes
    //      ASCII zero-padded at 32, reserved to 64. The commit word is the commit point (FORMAT.md, "Writing").
    public const int CommitWordOffset = 0;

    public static void WriteSlot1Fields(Span<byte> s, uint payloadLength, uint envelopeLength, uint payloadCrc, long arrivalMs, ReadOnlySpan<byte> queueId)
    {
        s[8..SlotSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], payloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], envelopeLength);
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], payloadCrc);
        BinaryPrimitives.WriteInt64LittleEndian(s[24..], arrivalMs);
        queueId[..Math.Min(queueId.Length, QueueIdSize)].CopyTo(s[32..]);
    }

    public static ulong CommitWord(ReadOnlySpan<byte> slot1, RecordState state, ulong salt, long offset)
    {
        Span<byte> f = stackalloc byte[SlotSize - 8 + 4];
        slot1[8..SlotSize].CopyTo(f);
        BinaryPrimitives.WriteUInt32LittleEndian(f[(SlotSize - 8)..], (uint)state);
        return (uint)state | ((ulong)Crc32C.Bound(f, salt, offset) << 32);
    }

    /// <summary>Reads the commit word: Uncommitted when zero; false when it is non-zero but does not check.</summary>
    public static bool TryReadState(ReadOnlySpan<byte> slot1, ulong salt, long offset, out RecordState state)
    {
        ulong word = BinaryPrimitives.ReadUInt64LittleEndian(slot1);
        state = (RecordState)(uint)word;
        if (word == 0) return true;
        if (state is not (RecordState.Committed or RecordState.Consumed or RecordState.Quarantined)) return false;
        return word == CommitWord(slot1, state, salt, offset);
    }

    public static uint PayloadLength(ReadOnlySpan<byte> slot1) => BinaryPrimitives.ReadUInt32LittleEndian(slot1[8..]);
    public static uint EnvelopeLength(ReadOnlySpan<byte> slot1) => BinaryPrimitives.ReadUInt32LittleEndian(slot1[12..]);
    public static uint PayloadCrc(ReadOnlySpan<byte> slot1) => BinaryPrimitives.ReadUInt32LittleEndian(slot1[16..]);
    public static long ArrivalMs(ReadOnlySpan<byte> slot1) => BinaryPrimitives.ReadInt64LittleEndian(slot1[24..]);

    public static ReadOnlySpan<byte> QueueId(ReadOnlySpan<byte> slot1)
    {
        var id = slot1.Slice(32, QueueIdSize);
        int n = id.IndexOf((byte)0);
        return n < 0 ? id : id[..n];
    }

    public static string SegmentFileName(long sequence) => sequence.ToString("x16") + ".seg";
}
