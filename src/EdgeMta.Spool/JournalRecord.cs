// One delivery-journal record (FORMAT.md, "Delivery journal"): a 64-byte slot that reaches the disk whole or
// not at all. Bytes 0..7 are the record word: the type in the low 16 bits, 16 zero bits, and in the high 32
// bits CRC32C of bytes 8..63 and the type, bound to the journal file's salt and the slot's offset, as the
// spool's commit word is: a torn, stale or forged slot never checks, and one copied to another place does not
// either.
// What it does not do: decide anything. The fold (JournalFold.cs) says what the records mean together.
// How it fails: TryRead says false for a slot that does not check; it never throws on bytes from a disk.
using System.Buffers.Binary;

namespace EdgeMta.Spool;

public enum JournalRecordType : ushort
{
    Delivered = 1,
    Failed = 2,
    Deferred = 3,
    BounceQueued = 4,
    Hold = 5,
    Release = 6,
    Delete = 7,
    Expired = 8,
    Text = 9,
    /// <summary>The message's record was copied forward (FORMAT.md "Copy-forward"): the new place is in the fields
    /// other types use for recipient..status (new segment) and the next attempt time (new offset).</summary>
    Moved = 10,
}

/// <summary>A decoded journal record. Recipient 0xFFFF means the whole message.</summary>
public readonly record struct JournalRecord(
    JournalRecordType Type,
    long Segment,
    long Offset,
    string QueueId,
    ushort Recipient,
    ushort Attempt,
    ushort ReplyCode,
    byte StatusClass,
    byte StatusSubject,
    byte StatusDetail,
    bool PossiblyDelivered,
    long EventUnixMs,
    long NextOrReference)
{
    public const int Size = 64;
    public const ushort WholeMessage = 0xFFFF;
    private const long MaxTime = (1L << 48) - 1;

    /// <summary>A Moved record (FORMAT.md "Copy-forward"): bytes 40..47 are the new segment sequence, little-endian,
    /// spread over the fields the other types use there; bytes 56..63 the new region offset.</summary>
    public static JournalRecord Moved(long oldSegment, long oldOffset, string queueId, long newSegment, long newOffset, long eventUnixMs)
    {
        ulong s = (ulong)newSegment;
        return new JournalRecord(JournalRecordType.Moved, oldSegment, oldOffset, queueId, (ushort)s, (ushort)(s >> 16), (ushort)(s >> 32),
            (byte)(s >> 48), (byte)(s >> 56), 0, false, eventUnixMs, newOffset);
    }

    /// <summary>For a Moved record: the new segment sequence (bytes 40..47).</summary>
    public long MovedToSegment => (long)((ulong)Recipient | (ulong)Attempt << 16 | (ulong)ReplyCode << 32 | (ulong)StatusClass << 48 | (ulong)StatusSubject << 56);

    /// <summary>For a Moved record: the new region offset (bytes 56..63).</summary>
    public long MovedToOffset => NextOrReference;

    /// <summary>Writes the slot for this record at <paramref name="offset"/> of a journal file salted <paramref name="salt"/>.</summary>
    public void Write(Span<byte> slot, ulong salt, long offset)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slot.Length, Size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(QueueId.Length, SpoolFormat.QueueIdSize);
        ArgumentOutOfRangeException.ThrowIfNegative(EventUnixMs);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(EventUnixMs, MaxTime);
        slot = slot[..Size];
        slot.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(slot[8..], Segment);
        BinaryPrimitives.WriteInt64LittleEndian(slot[16..], Offset);
        for (int i = 0; i < QueueId.Length; i++) slot[24 + i] = (byte)QueueId[i];
        BinaryPrimitives.WriteUInt16LittleEndian(slot[40..], Recipient);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[42..], Attempt);
        BinaryPrimitives.WriteUInt16LittleEndian(slot[44..], ReplyCode);
        slot[46] = StatusClass;
        slot[47] = StatusSubject;
        slot[48] = StatusDetail;
        slot[49] = (byte)(PossiblyDelivered ? 1 : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[50..], (ulong)EventUnixMs & MaxTime);   // 6 bytes, then the 8 below
        BinaryPrimitives.WriteInt64LittleEndian(slot[56..], NextOrReference);
        BinaryPrimitives.WriteUInt64LittleEndian(slot, Word(slot, (ushort)Type, salt, offset));
    }

    /// <summary>Reads the slot at <paramref name="offset"/>; false when its record word does not check (zero, torn,
    /// stale, forged, or moved).</summary>
    public static bool TryRead(ReadOnlySpan<byte> slot, ulong salt, long offset, out JournalRecord record)
    {
        record = default;
        if (slot.Length < Size) return false;
        ulong word = BinaryPrimitives.ReadUInt64LittleEndian(slot);
        ushort type = (ushort)word;
        if (word == 0 || type is 0 or > (ushort)JournalRecordType.Moved || (word >> 16 & 0xFFFF) != 0) return false;
        if (word != Word(slot, type, salt, offset)) return false;
        int idLength = slot.Slice(24, SpoolFormat.QueueIdSize).IndexOf((byte)0);
        if (idLength < 0) idLength = SpoolFormat.QueueIdSize;
        record = new JournalRecord(
            (JournalRecordType)type,
            BinaryPrimitives.ReadInt64LittleEndian(slot[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(slot[16..]),
            System.Text.Encoding.ASCII.GetString(slot.Slice(24, idLength)),
            BinaryPrimitives.ReadUInt16LittleEndian(slot[40..]),
            BinaryPrimitives.ReadUInt16LittleEndian(slot[42..]),
            BinaryPrimitives.ReadUInt16LittleEndian(slot[44..]),
            slot[46], slot[47], slot[48],
            (slot[49] & 1) != 0,
            (long)(BinaryPrimitives.ReadUInt64LittleEndian(slot[50..]) & MaxTime),
            BinaryPrimitives.ReadInt64LittleEndian(slot[56..]));
        return true;
    }

    private static ulong Word(ReadOnlySpan<byte> slot, ushort type, ulong salt, long offset)
    {
        Span<byte> fields = stackalloc byte[Size - 8 + 2];
        slot[8..Size].CopyTo(fields);
        BinaryPrimitives.WriteUInt16LittleEndian(fields[(Size - 8)..], type);
        return (ulong)Crc32C.Bound(fields, salt, offset) << 32 | type;
    }
}
