// What the spool offers copy-forward (FORMAT.md "Copy-forward"): whether a segment is still written to, its
// header's creation time and length, a commit of an existing record's exact payload under its own queue id and
// arrival time, and the retraction of a dead copy (its commit word set to Consumed, durably).
// What it does not do: decide what to copy or when (the delivery agent does, from its index and the journal), or
// move anything itself: a copy is an ordinary commit, reported to the observer like any other.
// How it fails: the Try methods return false (with nothing changed) for a segment or record that is not there, does
// not check, or whose write or sync fails; nothing throws for what is on the disk.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool
{
    /// <summary>Starts a copy of a record: the same queue id and arrival time, and <paramref name="encodedEnvelope"/>
    /// (the record's envelope bytes as stored) before the data the caller appends. Commit it as any message.</summary>
    public SpoolMessage BeginCopy(ReadOnlySpan<byte> queueId, long arrivalUnixMs, ReadOnlySpan<byte> encodedEnvelope)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (queueId.Length != SpoolFormat.QueueIdSize) throw new ArgumentException("a queue id is 16 bytes", nameof(queueId));
        SpoolMessage m = Rent();
        queueId.CopyTo(m.IdBuffer);
        m.StartCopy(arrivalUnixMs, encodedEnvelope);
        return m;
    }

    /// <summary>True when nothing will be written into segment <paramref name="sequence"/> any more: not the current
    /// or the spare segment, and either found at start or let go by this process.</summary>
    public bool IsSealed(long sequence)
    {
        lock (_gate)
        {
            if (_current?.Sequence == sequence || _spare?.Sequence == sequence) return false;
            if (sequence < FirstNewSegment) return true;
            return _opened.TryGetValue(sequence, out var s) && s.Closed;
        }
    }

    /// <summary>The segment header's creation time (Unix ms) and the segment's length; false when it does not read
    /// or check.</summary>
    public unsafe bool TryReadSegmentInfo(long sequence, out long createdUnixMs, out long length)
    {
        createdUnixMs = 0; length = 0;
        int fd = ReadFd(sequence);
        if (fd < 0) return false;
        byte* header = stackalloc byte[SpoolFormat.SegmentHeaderSize];
        if (LibC.Pread(fd, header, SpoolFormat.SegmentHeaderSize, 0) != SpoolFormat.SegmentHeaderSize) return false;
        var h = new ReadOnlySpan<byte>(header, SpoolFormat.SegmentHeaderSize);
        if (!SpoolFormat.TryReadSegmentHeader(h, out _, out _, out length)) return false;
        createdUnixMs = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(h[40..]);
        return true;
    }

    /// <summary>Marks the committed record of <paramref name="queueId"/> at this place Consumed (one 8-byte rewrite of
    /// its commit word, then fdatasync): a dead copy never comes back as a message. False when the record is not
    /// there as Committed with that id, or the write or sync failed. Blocking: the agent's thread only.</summary>
    public unsafe bool TryRetractRecord(long sequence, long offset, ReadOnlySpan<byte> queueId)
    {
        string path = Path.Combine(_directory, SpoolFormat.SegmentFileName(sequence));
        int fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
        if (fd < 0) return false;
        try
        {
            byte* header = stackalloc byte[SpoolFormat.SegmentHeaderSize];
            byte* slot = stackalloc byte[SpoolFormat.SlotSize];
            if (LibC.Pread(fd, header, SpoolFormat.SegmentHeaderSize, 0) != SpoolFormat.SegmentHeaderSize) return false;
            if (!SpoolFormat.TryReadSegmentHeader(new ReadOnlySpan<byte>(header, SpoolFormat.SegmentHeaderSize), out ulong salt, out _, out _)) return false;
            if (LibC.Pread(fd, slot, SpoolFormat.SlotSize, offset + SpoolFormat.SlotSize) != SpoolFormat.SlotSize) return false;
            var slot1 = new Span<byte>(slot, SpoolFormat.SlotSize);
            if (!SpoolFormat.QueueId(slot1).SequenceEqual(queueId)) return false;
            if (!SpoolFormat.TryReadState(slot1, salt, offset, out var state) || state != RecordState.Committed) return false;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(slot1, SpoolFormat.CommitWord(slot1, RecordState.Consumed, salt, offset));
            if (LibC.Pwrite(fd, slot, 8, offset + SpoolFormat.SlotSize) != 8) return false;
            return LibC.Fdatasync(fd) == 0;
        }
        finally
        {
            LibC.Close(fd);
        }
    }
}
