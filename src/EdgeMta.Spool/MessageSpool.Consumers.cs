// What the spool offers its consumer, the delivery agent (FORMAT.md "Consumers", "Delivery journal"): reading a
// record by its place while the server runs, and deleting a segment once the agent knows that nothing in it is
// live any more (every recipient of every record final in the durable journal).
// What it does not do: decide that a segment is empty. The spool does not read the journal; the agent does, and
// asks. The spool refuses only what would be unsafe on its own side: the segment being written (current or
// spare) or one a message still holds a reference to (a commit in flight may still land in it).
// How it fails: a read that does not check (wrong queue id, a commit word that is not Committed, a short read)
// is false, never an exception: the agent treats that record as gone bad and keeps its state.
using System.Buffers;
using System.Collections.Concurrent;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool
{
    // Segments this process wrote into, by sequence, until deleted: TryDeleteSegment asks them whether a message
    // still holds them. Segments from before a restart are never written again, so they are not here.
    private readonly ConcurrentDictionary<long, Segment> _opened = new();
    private readonly ConcurrentDictionary<long, int> _readFds = new();

    /// <summary>The first segment sequence this process creates; lower ones are what recovery found.</summary>
    public long FirstNewSegment { get; }

    /// <summary>Deletes segment <paramref name="sequence"/> (its file, then the directory entry made durable);
    /// false when it is still being written or held. The caller guarantees no live record is in it.</summary>
    public bool TryDeleteSegment(long sequence)
    {
        lock (_gate)
        {
            if (_current?.Sequence == sequence || _spare?.Sequence == sequence) return false;
            if (_opened.TryGetValue(sequence, out var s) && !s.Closed) return false;
            // One this process made but never wrote to (a spare being prepared by the supply): not the agent's.
            if (sequence >= FirstNewSegment && s is null) return false;
            _opened.TryRemove(sequence, out _);
        }
        if (_readFds.TryRemove(sequence, out int fd)) LibC.Close(fd);
        string path = Path.Combine(_directory, SpoolFormat.SegmentFileName(sequence));
        if (!File.Exists(path)) return true;
        Io.Delete(path);
        Io.SyncDirectory(_directory);
        return true;
    }

    /// <summary>Reads the record at <paramref name="offset"/> of segment <paramref name="sequence"/> into a buffer
    /// rented from <paramref name="pool"/> (the caller returns it): the encoded envelope first, then the message
    /// octets. Checks the queue id and that the record is Committed. Blocking (pread): never on a socket thread.</summary>
    public unsafe bool TryReadRecord(long sequence, long offset, ReadOnlySpan<byte> queueId, ArrayPool<byte> pool,
        out byte[]? buffer, out int envelopeLength, out int dataLength, out long arrivalUnixMs)
    {
        buffer = null; envelopeLength = 0; dataLength = 0; arrivalUnixMs = 0;
        int fd = ReadFd(sequence);
        if (fd < 0) return false;
        byte* head = stackalloc byte[SpoolFormat.SlotSize];
        if (LibC.Pread(fd, head, SpoolFormat.SlotSize, offset + SpoolFormat.SlotSize) != SpoolFormat.SlotSize) return false;
        var slot1 = new ReadOnlySpan<byte>(head, SpoolFormat.SlotSize);
        if (!SpoolFormat.QueueId(slot1).SequenceEqual(queueId)) return false;
        byte* header = stackalloc byte[SpoolFormat.SegmentHeaderSize];
        if (LibC.Pread(fd, header, SpoolFormat.SegmentHeaderSize, 0) != SpoolFormat.SegmentHeaderSize) return false;
        if (!SpoolFormat.TryReadSegmentHeader(new ReadOnlySpan<byte>(header, SpoolFormat.SegmentHeaderSize), out ulong salt, out _, out _)) return false;
        if (!SpoolFormat.TryReadState(slot1, salt, offset, out var state) || state != RecordState.Committed) return false;
        uint payload = SpoolFormat.PayloadLength(slot1);
        uint envelope = SpoolFormat.EnvelopeLength(slot1);
        if (envelope > payload || payload > MaxPayload) return false;
        byte[] rented = pool.Rent((int)payload);
        fixed (byte* p = rented)
        {
            long done = 0;
            while (done < payload)
            {
                nint n = LibC.Pread(fd, p + done, (nuint)(payload - done), offset + SpoolFormat.RecordHeaderSize + done);
                if (n <= 0) { pool.Return(rented); return false; }
                done += n;
            }
        }
        if (Crc32C.Compute(rented.AsSpan(0, (int)payload)) != SpoolFormat.PayloadCrc(slot1)) { pool.Return(rented); return false; }
        buffer = rented;
        envelopeLength = (int)envelope;
        dataLength = (int)(payload - envelope);
        arrivalUnixMs = SpoolFormat.ArrivalMs(slot1);
        return true;
    }

    private int ReadFd(long sequence)
    {
        if (_readFds.TryGetValue(sequence, out int fd)) return fd;
        fd = LibC.Open(Path.Combine(_directory, SpoolFormat.SegmentFileName(sequence)), LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        if (fd < 0) return -1;
        if (!_readFds.TryAdd(sequence, fd)) { LibC.Close(fd); return _readFds[sequence]; }
        return fd;
    }

    private void CloseReadFds()
    {
        foreach (var pair in _readFds)
        {
            if (_readFds.TryRemove(pair.Key, out int fd)) LibC.Close(fd);
        }
    }
}
