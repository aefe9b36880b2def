// The writer's side of a message (FORMAT.md, "Writing"): called only on a spool writer thread, one job of
// a message at a time (the session queues a new job only when none is queued or running).
// Small message: MessageSpool.Writers.cs reserves its exactly sized, block-aligned region beside the other
// small commits of the batch and calls FillSmallRecord; one durable write carries the whole run.
// Streamed message: RunStreamJob writes full chunks as they come (direct, not synchronous), moving the
// region to one twice as big when it outgrows it; at commit, the last partial chunk, then the first block
// again with slot 1 and its commit word, durably. The rewrite of the first block is the commit point.
// How it fails: any write error fails the message (Failed, or Full for ENOSPC/EDQUOT) and retires the
// segment; a commit the deadline already answered 451 is taken back (commit word zeroed) if its write
// succeeded after all, so a restart does not find it (a duplicate at worst, if that fails too).
using System.Runtime.InteropServices;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed unsafe partial class SpoolMessage
{
    private Segment? _segment;
    private long _offset;
    private long _regionLength;
    private byte* _head;   // the region's first block, kept for the commit's rewrite of it

    /// <summary>A whole commit: nothing of the record is on the disk yet (it never reached the stream threshold), so
    /// it goes out in one write with the others of the batch. Read by the writer after it took the job.</summary>
    internal bool IsSmallCommit
    {
        get
        {
            lock (_sync)
            {
                return _phase == Phase.Committing && _segment is null && _written == 0
                    && SmallRegionLength <= _spool.SegmentUsable && SmallChunkCount <= MessageSpool.MaxRunVectors;
            }
        }
    }

    /// <summary>The region a whole commit needs: header and payload, rounded up to a block.</summary>
    internal long SmallRegionLength => AlignBlock(Header + _length);

    /// <summary>Chunks a whole commit's region spans (its vectors in the run's write).</summary>
    internal int SmallChunkCount => (int)((SmallRegionLength + _chunk - 1) / _chunk);

    internal static long AlignBlock(long n) => (n + Segment.Block - 1) & ~(long)(Segment.Block - 1);

    /// <summary>Writes slot 0, slot 1 with its commit word, and the zero padding into the chunks, for a region
    /// reserved at <paramref name="offset"/>; adds one vector per chunk; returns the first chunk.</summary>
    internal byte* FillSmallRecord(Segment segment, long offset, long length, LibC.IoVec* iov)
    {
        _segment = segment;
        _offset = offset;
        _regionLength = length;
        long used = Header + _length;
        int chunks = SmallChunkCount;
        byte* last = (byte*)_ring[(chunks - 1) % _ring.Length];
        long lastStart = (long)(chunks - 1) * _chunk;
        NativeMemory.Clear(last + (used - lastStart), (nuint)(length - used));
        for (int k = 0; k < chunks; k++)
        {
            long n = Math.Min(_chunk, length - (long)k * _chunk);
            iov[k] = new LibC.IoVec { Base = (byte*)_ring[k % _ring.Length], Length = (nuint)n };
        }
        byte* first = (byte*)_ring[0];
        FillHeaders(first, (uint)length);
        return first;
    }

    private void FillHeaders(byte* block, uint regionLength)
    {
        var slots = new Span<byte>(block, Header);
        SpoolFormat.WriteSlot0(slots[..SpoolFormat.SlotSize], _segment!.Salt, _offset, regionLength);
        Span<byte> slot1 = slots[SpoolFormat.SlotSize..];
        slot1[..8].Clear();
        SpoolFormat.WriteSlot1Fields(slot1, (uint)_length, (uint)_envelopeLength, _crc, _arrivalMs, _id);
        ulong word = SpoolFormat.CommitWord(slot1, RecordState.Committed, _segment.Salt, _offset);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(slot1, word);
        Interlocked.Increment(ref _segment.Committed);
        _headersFilled = true;
    }

    private bool _headersFilled;   // a commit word went into a buffer bound for the disk

    /// <summary>Ends a commit the writer carried: the result, then the writer lets go of the message. A commit the
    /// deadline answered first is taken back when it was written after all.</summary>
    internal void FinishCommit(CommitResult result, byte* firstBlock, bool whole = false)
    {
        var segment = _segment;
        bool answered = Complete(result);
        if (answered && result == CommitResult.Committed && segment is not null && _spool.Observer is { } observer)
        {
            // A whole commit's first chunk holds slot 0, slot 1 and the payload as written (FillSmallRecord): the
            // consumer gets them from memory while the message is still ours (it is recycled only after EndJob).
            if (whole && firstBlock != null && Header + _length <= _chunk)
            {
                observer.OnCommitted(segment.Sequence, _offset, _id, new ReadOnlySpan<byte>(firstBlock + Header, (int)_length),
                    (int)_envelopeLength, _arrivalMs);
            }
            else
            {
                observer.OnCommitted(segment.Sequence, _offset, _id);
            }
        }
        if (segment is not null && firstBlock != null && _headersFilled && (result != CommitResult.Committed || !answered))
        {
            // The client heard 4xx (a failed write or sync, or the deadline) and will send again: the bytes may be
            // on the disk all the same, so zero the commit word, lest a restart deliver this too. Best effort:
            // on a failing disk it fails as well, and the record is a duplicate at worst, never a loss.
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(firstBlock + SpoolFormat.SlotSize, 8), 0);
            segment.Write(firstBlock, Segment.Block, _offset, durable: true);
        }
        _headersFilled = false;
        _segment = null;
        segment?.Release();
        EndJob(force: true);
    }

    /// <summary>The writer is done with this message for now. False when more work arrived meanwhile (the
    /// writer then carries on with it instead of queueing the message again).</summary>
    private bool EndJob(bool force)
    {
        lock (_sync)
        {
            if (!force && (_full > _written || (_commitRequested && _phase == Phase.Committing))
                && _phase is Phase.Streaming or Phase.Committing)
            {
                return false;
            }
            _jobQueued = false;
            Release();
            return true;
        }
    }

    /// <summary>Writes what a streamed message has ready, and its commit once asked for, on a writer thread.
    /// True: the commit's bytes are written (not yet synced); the writer syncs the segment once for every such
    /// commit of its batch and then calls <see cref="FinishStreamCommit"/>.</summary>
    internal bool RunStreamJob()
    {
        while (true)
        {
            long from, to;
            bool commit;
            lock (_sync)
            {
                if (_phase is not (Phase.Streaming or Phase.Committing))
                {
                    // Aborted or failed: the region keeps a zero commit word and is skipped by every reader.
                    _segment?.Release();
                    _segment = null;
                    _jobQueued = false;
                    Release();
                    return false;
                }
                from = _written;
                to = _full;
                commit = _commitRequested && from == to;
            }
            if (from < to)
            {
                int err = WriteChunks(from, to);
                if (err != 0)
                {
                    if (FailStream(err)) return false;
                    continue;
                }
                Action? resume = null;
                lock (_sync)
                {
                    _written = to;
                    if (_resume is not null && !BackloggedLocked) { resume = _resume; _resume = null; }
                }
                if (resume is not null)
                {
                    _spool.StopWaiting(this);
                    resume();
                }
                continue;
            }
            if (commit) return WriteStreamCommit();
            if (EndJob(force: false)) return false;
        }
    }

    /// <summary>The segment a written streamed commit waits to have synced.</summary>
    internal Segment PendingSegment => _segment!;

    // A chunk could not be written. Streaming: the message fails (its end is answered 4xx) and the connection,
    // if paused, reads on. Committing: the commit ends now with the failure. True when the job is over.
    private bool FailStream(int err)
    {
        var result = err is LibC.ENOSPC or LibC.EDQUOT ? CommitResult.Full : CommitResult.Failed;
        Action? resume;
        lock (_sync)
        {
            if (_phase == Phase.Committing)
            {
                resume = null;
            }
            else
            {
                _phase = result == CommitResult.Full ? Phase.Full : Phase.Failed;
                resume = _resume;
                _resume = null;
            }
        }
        if (_phase == Phase.Committing)
        {
            FinishCommit(result, _head);
            return true;
        }
        if (resume is not null)
        {
            _spool.StopWaiting(this);
            resume();
        }
        return false;
    }

    /// <summary>The writers have stopped (the spool is closing): a queued commit fails (451), a stream stops.</summary>
    internal void Refuse()
    {
        bool committing;
        Action? resume;
        lock (_sync)
        {
            committing = _phase == Phase.Committing;
            if (_phase == Phase.Streaming) _phase = Phase.Failed;
            resume = _resume;
            _resume = null;
        }
        if (committing)
        {
            FinishCommit(CommitResult.Failed, _head);
            return;
        }
        _segment?.Release();
        _segment = null;
        resume?.Invoke();
        EndJob(force: true);
    }

    private void ReleaseRegion()
    {
        _segment?.Release();
        _segment = null;
        _headersFilled = false;
    }

    /// <summary>Frees the native buffers of a message the pool does not keep.</summary>
    internal void FreeBuffers()
    {
        for (int i = 0; i < _ring.Length; i++)
        {
            _spool.Buffers.Return((byte*)_ring[i]);
            _ring[i] = 0;
        }
        if (_head != null) NativeMemory.AlignedFree(_head);
        _head = null;
    }

    // Region bytes [from, to), whole chunks, into the region (reserved or grown as needed).
    private int WriteChunks(long from, long to)
    {
        int err = EnsureRegion(to);
        if (err != 0) return err;
        const int MaxVectors = 64;
        LibC.IoVec* iov = stackalloc LibC.IoVec[MaxVectors];
        for (long k = from / _chunk; k < to / _chunk;)
        {
            int count = 0;
            long at = k * _chunk;
            lock (_sync)   // the session may grow the ring meanwhile
            {
                for (; k < to / _chunk && count < MaxVectors; k++)
                {
                    iov[count++] = new LibC.IoVec { Base = (byte*)_ring[k % _ring.Length], Length = (nuint)_chunk };
                }
            }
            err = _segment!.Write(iov, count, _offset + at, durable: false);
            if (err != 0)
            {
                _spool.NoteWriteFailure(_segment, err);
                return err;
            }
        }
        return 0;
    }

    // The last partial chunk, then the first block with slot 1 and the commit word (the commit point), both
    // without sync: the writer syncs the segment once for all the streamed commits of its batch. True when
    // written; on an error the commit is finished here (4xx).
    private bool WriteStreamCommit()
    {
        long end = Header + _length;
        long padded = AlignBlock(end);
        int err = EnsureRegion(padded);
        long from = _written;
        if (err == 0 && padded > from)
        {
            byte* last;
            lock (_sync) last = (byte*)_ring[from / _chunk % _ring.Length];
            NativeMemory.Clear(last + (end - from), (nuint)(padded - end));
            err = _segment!.Write(last, (int)(padded - from), _offset + from, durable: false);
        }
        if (err == 0)
        {
            // Give back the region's unused end if nothing was reserved after it; published only once the new
            // length is durable (FinishStreamCommit), so a walk never skips a later record.
            _shrinkTo = _spool.MayShrink(_segment!, _offset, _regionLength) ? padded : _regionLength;
            FillHeaders(_head, (uint)_shrinkTo);
            err = _segment!.Write(_head, Segment.Block, _offset, durable: false);
        }
        if (err == 0) return true;
        _spool.NoteWriteFailure(_segment!, err);
        FinishCommit(MessageSpool.ResultOf(err), _head);
        return false;
    }

    private long _shrinkTo;

    /// <summary>The segment's sync returned <paramref name="err"/>: the streamed commit ends.</summary>
    internal void FinishStreamCommit(int err)
    {
        if (err == 0 && _shrinkTo < _regionLength) _spool.ShrinkAfterCommit(_segment!, _offset, _regionLength, _shrinkTo);
        FinishCommit(MessageSpool.ResultOf(err), _head);
    }

    // Reserves the stream's region when it starts, and moves it to one twice as big when it outgrows it.
    private int EnsureRegion(long need)
    {
        if (_segment is not null && need <= _regionLength) return 0;
        long cap = AlignBlock(Header + _spool.MaxPayload);
        // A stream starts at the threshold (four chunks); its first region holds twice that, so a message of up to
        // 256 KiB is never moved, and each move doubles it.
        long grow = _segment is null ? Header + 2 * _spool.StreamThreshold : 2 * _regionLength;
        long size = Math.Max(AlignBlock(need), Math.Min(AlignBlock(grow), cap));
        int err = _spool.Reserve(size, out var segment, out long offset);
        if (err != 0) return err;
        if (_head == null) _head = (byte*)NativeMemory.AlignedAlloc(Segment.Block, Segment.BufferAlign);
        if (_segment is null)
        {
            _segment = segment;
            _offset = offset;
            _regionLength = size;
            // Slot 0 goes out with the first chunk; slot 1 stays zero until the commit rewrites this block. Read
            // under _sync, as every writer-side read of the ring: the session may be growing it (GrowRing moves each
            // chunk to a new array and zeroes the old slot), and an unlocked read once found 0 there.
            byte* first;
            lock (_sync) first = (byte*)_ring[0];
            NativeMemory.Clear(first, Header);
            SpoolFormat.WriteSlot0(new Span<byte>(first, SpoolFormat.SlotSize), segment!.Salt, offset, (uint)size);
            Buffer.MemoryCopy(first, _head, Segment.Block, Segment.Block);
            return 0;
        }
        err = CopyRegion(segment!, offset, size);
        if (err != 0)
        {
            segment!.Release();
            return err;
        }
        _segment.Release();   // the old region keeps a zero commit word: never a record
        _segment = segment;
        _offset = offset;
        _regionLength = size;
        return 0;
    }

    // What the old region holds, [0, _written), read back and written at the new place; its first block from
    // the kept copy, with slot 0 for the new place.
    private int CopyRegion(Segment to, long offset, long size)
    {
        NativeMemory.Clear(_head, Header);
        SpoolFormat.WriteSlot0(new Span<byte>(_head, SpoolFormat.SlotSize), to.Salt, offset, (uint)size);
        int err = to.Write(_head, Segment.Block, offset, durable: false);
        byte* buffer = _spool.Buffers.Rent();
        try
        {
            for (long at = Segment.Block; err == 0 && at < _written; at += _chunk)
            {
                int n = (int)Math.Min(_chunk, _written - at);
                err = _segment!.Read(buffer, n, _offset + at);
                if (err == 0) err = to.Write(buffer, n, offset + at, durable: false);
            }
        }
        finally
        {
            _spool.Buffers.Return(buffer);
        }
        if (err != 0) _spool.NoteWriteFailure(to, err);
        return err;
    }
}
