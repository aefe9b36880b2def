// One message being received: envelope, then DATA octets as they arrive, then commit or abort.
// Where the bytes go: the first FirstBufferSize octets (envelope included) gather in a pooled buffer, so a
// typical message goes into the segment in one pwritev at commit (slot 0, slot 1, payload), exactly sized
// and packed beside the others (dense pages: fewer pages per flush). A message that outgrows the buffer
// reserves a region at a segment tail and streams into it, the buffer then collecting each write so the
// file sees a few large pwrites; one that outgrows its region moves to one twice as big (or to a segment of
// its own). Nothing is held whole in memory.
// What a reader sees: nothing until the commit word of slot 1 is written, alone and last; an abandoned or
// moved region keeps a zero commit word, which every reader skips (FORMAT.md).
// Lifetime: pooled. The message returns to the pool when Abort() is called or when the result of
// CommitAsync() has been taken (await). Copy QueueId before awaiting the commit if it is needed after.
// Threads: the commit's continuation runs on the flusher thread, inline, as soon as the flush is done.
using System.Buffers.Binary;
using System.Threading.Tasks.Sources;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed class SpoolMessage : IValueTaskSource<CommitResult>
{
    private enum Phase : byte { Idle, Buffering, Streaming, Flushing, Full, Failed }

    private readonly MessageSpool _spool;
    private readonly byte[] _first;
    private readonly byte[] _id = new byte[SpoolFormat.QueueIdSize];
    private Phase _phase;
    private bool _envelopeOpen;
    private long _length;
    private uint _crc;
    private long _envelopeLength;
    private long _arrivalMs;
    private Segment? _segment;
    private long _offset;
    private long _regionLength;
    private long _written;   // Streaming: payload bytes already in the file; the rest waits in _first
    private ManualResetValueTaskSourceCore<CommitResult> _core;

    internal SpoolMessage(MessageSpool spool, int firstBufferSize)
    {
        _spool = spool;
        _first = GC.AllocateUninitializedArray<byte>(Math.Max(256, firstBufferSize), pinned: true);
        // The continuation runs inline on the flusher thread when the flush completes (MessageSpool.Flusher.cs).
        _core.RunContinuationsAsynchronously = false;
    }

    /// <summary>Short, unique, ASCII alphanumeric; valid until the message goes back to the pool.</summary>
    public ReadOnlySpan<byte> QueueId => _id;
    internal Span<byte> IdBuffer => _id;

    /// <summary>Data octets appended so far (the envelope excluded).</summary>
    public long Size => _envelopeOpen ? 0 : _length - _envelopeLength;

    internal void Start(long arrivalMs, ReadOnlySpan<byte> client, ReadOnlySpan<byte> helo, ReadOnlySpan<byte> reverse, ReadOnlySpan<byte> mail)
    {
        _phase = Phase.Buffering;
        _envelopeOpen = true;
        _length = 0;
        _crc = 0;
        _envelopeLength = 0;
        _written = 0;
        _arrivalMs = arrivalMs;
        WriteField(client);
        WriteField(helo);
        WriteField(reverse);
        WriteField(mail);
    }

    /// <summary>Adds one accepted recipient (RFC 5321 §4.1.1.3). Only before the first Append.</summary>
    public void AddRecipient(ReadOnlySpan<byte> forwardPath, ReadOnlySpan<byte> parameters)
    {
        if (!_envelopeOpen) throw new InvalidOperationException("recipients come before the message data");
        WriteField(forwardPath);
        WriteField(parameters);
    }

    /// <summary>Appends message octets exactly as accepted (after dot-unstuffing). After a storage failure
    /// the octets are dropped and the failure is reported by CommitAsync.</summary>
    public void Append(ReadOnlySpan<byte> octets)
    {
        CloseEnvelope();
        Write(octets);
    }

    private void CloseEnvelope()
    {
        if (!_envelopeOpen) return;
        _envelopeOpen = false;
        _envelopeLength = _length;
    }

    private void WriteField(ReadOnlySpan<byte> field)
    {
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)field.Length);
        Write(n);
        Write(field);
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        if (_phase is not (Phase.Buffering or Phase.Streaming) || data.IsEmpty) return;
        long end = _length + data.Length;
        if (end > _spool.MaxPayload) { Fail(Phase.Failed); return; }   // the session's size cap should have stopped it
        if (_phase == Phase.Buffering)
        {
            if (end <= _first.Length)
            {
                data.CopyTo(_first.AsSpan((int)_length));
                _crc = Crc32C.Append(_crc, data);
                _length = end;
                return;
            }
            if (!MoveToRegion(end)) return;
        }
        else if (SpoolFormat.RecordHeaderSize + end > _regionLength && !MoveToRegion(end))
        {
            return;
        }
        // Streaming: the first buffer now holds what is not yet written, [_written, _length).
        _crc = Crc32C.Append(_crc, data);
        int buffered = (int)(_length - _written);
        if (buffered + data.Length <= _first.Length)
        {
            data.CopyTo(_first.AsSpan(buffered));
            _length = end;
            return;
        }
        if (!WriteOut(buffered)) return;
        if (data.Length >= _first.Length)
        {
            if (!CheckWrite(_segment!.Write(_offset + SpoolFormat.RecordHeaderSize + _written, data))) return;
            _written += data.Length;
        }
        else
        {
            data.CopyTo(_first);
        }
        _length = end;
    }

    /// <summary>Writes the first <paramref name="buffered"/> bytes of the first buffer at the stream's end.</summary>
    private bool WriteOut(int buffered)
    {
        if (buffered == 0) return true;
        if (!CheckWrite(_segment!.Write(_offset + SpoolFormat.RecordHeaderSize + _written, _first.AsSpan(0, buffered)))) return false;
        _written += buffered;
        return true;
    }

    /// <summary>Check for a write of this message's own: the spool remembers the error for its MAIL gate.
    /// (Reserve's errors are remembered by Reserve.)</summary>
    private bool CheckWrite(int err)
    {
        _spool.NoteStorageError(err);
        return Check(err);
    }

    private bool Check(int err)
    {
        if (err == 0) return true;
        Fail(err is LibC.ENOSPC or LibC.EDQUOT ? Phase.Full : Phase.Failed);
        return false;
    }

    private bool MoveToRegion(long payload)
    {
        long need = SpoolFormat.AlignUp(SpoolFormat.RecordHeaderSize + payload);
        long grow = _phase == Phase.Buffering ? SpoolFormat.RecordHeaderSize + 4L * _first.Length : 2 * _regionLength;
        long cap = SpoolFormat.AlignUp(SpoolFormat.RecordHeaderSize + _spool.MaxPayload);
        long size = Math.Max(need, Math.Min(SpoolFormat.AlignUp(grow), cap));
        if (!Check(_spool.Reserve(size, out var segment, out long offset))) return false;
        if (_phase == Phase.Buffering)
        {
            _written = 0;   // all of it is still in the first buffer
        }
        else if (_written > 0)
        {
            // What the old region already holds moves through the page cache: read by the mapping, written by pwrite.
            int err = segment!.Write(offset + SpoolFormat.RecordHeaderSize, _segment!.Span(_offset + SpoolFormat.RecordHeaderSize, (int)_written));
            if (err != 0)
            {
                segment.Release();
                return CheckWrite(err);
            }
        }
        _segment?.Release();   // the old region keeps a zero commit word: never a record
        _segment = segment;
        _offset = offset;
        _regionLength = size;
        _phase = Phase.Streaming;
        return true;
    }

    private void Fail(Phase phase)
    {
        if (phase == Phase.Full) _spool.RecheckRoomSoon();
        _segment?.Release();
        _segment = null;
        _phase = phase;
    }

    /// <summary>Makes the message durable. Committed means the caller may answer 250; the result is shared by
    /// every commit of the same flush. Completes without allocating; await it exactly once. With sync
    /// always the continuation runs on the spool's flusher thread: keep it short and never block in it.</summary>
    public ValueTask<CommitResult> CommitAsync()
    {
        CloseEnvelope();
        Span<byte> slot1 = stackalloc byte[SpoolFormat.SlotSize];
        slot1[..8].Clear();   // the commit word: written last, alone
        SpoolFormat.WriteSlot1Fields(slot1, (uint)_length, (uint)_envelopeLength, _crc, _arrivalMs, _id);
        if (_phase == Phase.Buffering)
        {
            // The common case: the whole record but its commit word in one write, packed at the tail.
            long size = SpoolFormat.AlignUp(SpoolFormat.RecordHeaderSize + _length);
            if (Check(_spool.Reserve(size, slot1, _first.AsSpan(0, (int)_length), out var segment, out long offset)))
            {
                _segment = segment;
                _offset = offset;
                _regionLength = size;
                _phase = Phase.Streaming;
            }
        }
        else if (_phase == Phase.Streaming && WriteOut((int)(_length - _written)))
        {
            long used = SpoolFormat.AlignUp(SpoolFormat.RecordHeaderSize + _length);
            _spool.TryShrink(_segment!, _offset, _regionLength, used);
            CheckWrite(_segment!.Write(_offset + SpoolFormat.SlotSize, slot1));
        }
        if (_phase == Phase.Streaming && _segment!.Retired) Fail(Phase.Failed);
        if (_phase != Phase.Streaming) return Finish(_phase == Phase.Full ? CommitResult.Full : CommitResult.Failed);

        var seg = _segment!;
        Interlocked.Increment(ref seg.Committed);
        // The commit point, written last: a reader sees the record whole or not at all (FORMAT.md).
        if (!CheckWrite(seg.WriteCommitWord(_offset, SpoolFormat.CommitWord(slot1, RecordState.Committed, seg.Salt, _offset))))
        {
            seg.Retired = true;   // the word may be half there: nothing more is committed in this segment
            return Finish(_phase == Phase.Full ? CommitResult.Full : CommitResult.Failed);
        }

        if (!_spool.SyncAlways) return Finish(CommitResult.Committed);
        _phase = Phase.Flushing;
        short version = _core.Version;
        _spool.EnqueueFlush(this);
        return new ValueTask<CommitResult>(this, version);
    }

    private ValueTask<CommitResult> Finish(CommitResult result)
    {
        _segment?.Release();
        _segment = null;
        Recycle();
        return new ValueTask<CommitResult>(result);
    }

    /// <summary>Gives the message up (client gone, too big, refused): it leaves no record a reader will see.</summary>
    public void Abort()
    {
        if (_phase is Phase.Idle or Phase.Flushing) return;
        _segment?.Release();
        _segment = null;
        Recycle();
    }

    // Flusher side.
    internal Segment FlushSegment => _segment!;
    internal long FlushStart => _offset;
    internal long FlushEnd => _offset + SpoolFormat.AlignUp(SpoolFormat.RecordHeaderSize + _length);

    internal void Uncommit() => _segment!.WriteCommitWord(_offset, 0);

    /// <summary>Ends the commit: the awaiting continuation runs now, on the calling (flusher) thread.</summary>
    internal void CompleteFlush(CommitResult result)
    {
        _segment!.Release();
        _segment = null;
        _core.SetResult(result);
    }

    private void Recycle()
    {
        _phase = Phase.Idle;
        _core.Reset();
        _spool.Return(this);
    }

    CommitResult IValueTaskSource<CommitResult>.GetResult(short token)
    {
        CommitResult r = _core.GetResult(token);
        Recycle();
        return r;
    }

    ValueTaskSourceStatus IValueTaskSource<CommitResult>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<CommitResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
