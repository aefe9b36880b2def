// One message being received: envelope, then DATA octets as they arrive, then commit or abort.
// The session's side (this file) only copies bytes into aligned chunks and hands work to the spool's
// writer threads (SpoolMessage.Writer.cs); it never touches a file, so a stalled disk stalls no socket
// thread (FORMAT.md, "Writing").
// Where the bytes go: region bytes (slot 0, slot 1, then the payload) fill a ring of RingSize chunks. A
// message that fits the first chunk is written whole at commit, in one durable write shared with every
// other small commit the writer took at the same time. A bigger one streams: each chunk, once full, goes
// to a writer (a direct write, not synchronous), and the commit then writes the last partial chunk and
// rewrites the region's first block with slot 1 and its commit word, durably.
// Backpressure: the ring holds RingSize chunks; when six of them wait for the writer, PauseWhileBacklogged
// tells the connection to stop reading until the writer catches up (or the spool's deadline passes, and
// the message fails: 451 at its end). Nothing is held whole in memory.
// Lifetime: pooled. Two parties hold it: the session (until Abort, or until it takes the commit's result)
// and the writer (while a job of it is queued or running); the last to let go returns it to the pool.
// Copy QueueId before awaiting the commit if it is needed after.
// Threads: the commit's continuation runs on a writer thread (or the deadline timer's), inline.
using System.Buffers.Binary;
using System.Threading.Tasks.Sources;

namespace EdgeMta.Spool;

public sealed unsafe partial class SpoolMessage : IValueTaskSource<CommitResult>
{
    private enum Phase : byte { Idle, Buffering, Streaming, Committing, Full, Failed }

    /// <summary>Chunks in a message's ring. Writing starts at four unwritten (MessageSpool.StreamThreshold); six
    /// pause the connection; the last two take what one pass of received bytes (16 KiB) may still bring.</summary>
    internal const int RingSize = 8;
    private const int PauseChunks = 6;
    private const int Header = SpoolFormat.RecordHeaderSize;

    private readonly MessageSpool _spool;
    private readonly int _chunk;
    private nint[] _ring = new nint[RingSize];
    private readonly byte[] _id = new byte[SpoolFormat.QueueIdSize];
    private readonly Lock _sync = new();
    private Phase _phase;
    private bool _envelopeOpen;
    private long _length;     // payload bytes so far (envelope + data)
    private uint _crc;
    private long _envelopeLength;
    private long _arrivalMs;
    // Shared with the writer, under _sync.
    private long _full;       // region bytes in full chunks, ready for the writer
    private long _written;    // region bytes the writer has written
    private bool _jobQueued;
    private bool _commitRequested;
    private Action? _resume;
    private int _holds;
    private int _completed;
    internal long Deadline;
    internal int WaitingIndex = -1;
    internal int Generation;
    private ManualResetValueTaskSourceCore<CommitResult> _core;

    internal SpoolMessage(MessageSpool spool)
    {
        _spool = spool;
        _chunk = spool.Buffers.ChunkSize;
        // The continuation runs inline on the writer thread when the write completes (MessageSpool.Writers.cs).
        _core.RunContinuationsAsynchronously = false;
    }

    /// <summary>Short, unique, ASCII alphanumeric; valid until the message goes back to the pool.</summary>
    public ReadOnlySpan<byte> QueueId => _id;
    internal Span<byte> IdBuffer => _id;

    /// <summary>Data octets appended so far (the envelope excluded).</summary>
    public long Size => _envelopeOpen ? 0 : _length - _envelopeLength;

    internal void Start(long arrivalMs, ReadOnlySpan<byte> client, ReadOnlySpan<byte> helo, ReadOnlySpan<byte> reverse, ReadOnlySpan<byte> mail)
    {
        Reset(arrivalMs);
        WriteField(client);
        WriteField(helo);
        WriteField(reverse);
        WriteField(mail);
    }

    /// <summary>A copy of a stored record (MessageSpool.BeginCopy): its envelope bytes exactly as stored, so the
    /// payload, and its CRC, are the original's once the data is appended.</summary>
    internal void StartCopy(long arrivalMs, ReadOnlySpan<byte> encodedEnvelope)
    {
        Reset(arrivalMs);
        Write(encodedEnvelope);
    }

    private void Reset(long arrivalMs)
    {
        if (_ring[0] == 0) _ring[0] = (nint)_spool.Buffers.Rent();
        _phase = Phase.Buffering;
        Generation++;
        _envelopeOpen = true;
        _length = _crc = 0;
        _envelopeLength = _full = _written = 0;
        _jobQueued = _commitRequested = false;
        _resume = null;
        _holds = 1;
        _completed = 0;
        _arrivalMs = arrivalMs;
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
        if (_length + data.Length > _spool.MaxPayload) { Fail(); return; }   // the session's size cap should have stopped it
        _crc = Crc32C.Append(_crc, data);
        while (!data.IsEmpty)
        {
            long r = Header + _length;
            long k = r / _chunk;
            // The slot still holds a chunk the writer has not written: only when the caller appends on past
            // PauseWhileBacklogged (the server pauses; a direct caller of the library may not). The ring grows.
            if (k - Volatile.Read(ref _written) / _chunk >= _ring.Length) GrowRing(k);
            ref nint slot = ref _ring[k % _ring.Length];
            if (slot == 0) slot = (nint)_spool.Buffers.Rent();
            int at = (int)(r % _chunk);
            int n = Math.Min(_chunk - at, data.Length);
            data[..n].CopyTo(new Span<byte>((byte*)slot + at, n));
            _length += n;
            data = data[n..];
            if (at + n == _chunk) ChunkFull(r + n);
        }
    }

    // Doubles the ring, keeping each unwritten chunk at its index modulo the new length (under _sync: the
    // writer reads the ring under it). Chunks already written go back to the pool.
    private void GrowRing(long k)
    {
        lock (_sync)
        {
            nint[] old = _ring;
            long w = _written / _chunk;
            int length = old.Length * 2;
            while (k - w >= length) length *= 2;
            var ring = new nint[length];
            for (long j = w; j < k; j++)
            {
                ring[j % length] = old[j % old.Length];
                old[j % old.Length] = 0;
            }
            foreach (nint spare in old) _spool.Buffers.Return((byte*)spare);
            _ring = ring;
        }
    }

    private void ChunkFull(long regionEnd)
    {
        bool submit;
        lock (_sync)
        {
            if (_phase is not (Phase.Buffering or Phase.Streaming)) return;
            _full = regionEnd;
            _phase = Phase.Streaming;
            // Nothing goes to the disk until a few chunks wait: a message of up to that size is then written whole
            // at its commit, in one write beside the other commits, like a small one (a 64 KiB message in three
            // 32 KiB writes and a sync of its own cost 1.9x the old page-cache path at 100 sessions).
            submit = _full - _written >= _spool.StreamThreshold && TakeJobLocked();
        }
        if (submit) _spool.Enqueue(this);
    }

    // A job is queued unless one already is (the writer then finds the new work itself); the writer holds
    // the message until its job ends.
    private bool TakeJobLocked()
    {
        if (_jobQueued) return false;
        _jobQueued = true;
        Interlocked.Increment(ref _holds);
        return true;
    }

    /// <summary>True when half the ring waits for the writer: the caller stops reading and <paramref name="resume"/>
    /// is called (once, from a writer or the deadline timer) when it may read again. False: read on.</summary>
    public bool PauseWhileBacklogged(Action resume)
    {
        lock (_sync)
        {
            if (_phase != Phase.Streaming || !BackloggedLocked) return false;
        }
        // The deadline first: a writer that catches up at once finds the wait registered and ends it.
        _spool.WaitWithDeadline(this);
        lock (_sync)
        {
            if (_phase == Phase.Streaming && BackloggedLocked)
            {
                _resume = resume;
                return true;
            }
        }
        _spool.StopWaiting(this);
        return false;
    }

    private bool BackloggedLocked => Header + _length - _written >= (long)_chunk * PauseChunks;

    private void Fail()
    {
        lock (_sync)
        {
            if (_phase is Phase.Buffering or Phase.Streaming) _phase = Phase.Failed;
        }
    }

    /// <summary>Makes the message durable. Committed means the caller may answer 250. Completes without
    /// allocating; await it exactly once. The continuation runs on a spool writer thread: keep it short and
    /// never block in it.</summary>
    public ValueTask<CommitResult> CommitAsync()
    {
        CloseEnvelope();
        bool submit;
        short version = _core.Version;
        lock (_sync)
        {
            if (_phase is not (Phase.Buffering or Phase.Streaming))
            {
                // Failed or full before the end: nothing to write. The writer may still hold the message (a chunk
                // in flight); the session's hold goes now, the result with it.
                var result = _phase == Phase.Full ? CommitResult.Full : CommitResult.Failed;
                _phase = Phase.Idle;
                Interlocked.Exchange(ref _completed, 1);
                _spool.StopWaiting(this);
                Release();
                return new ValueTask<CommitResult>(result);
            }
            _phase = Phase.Committing;
            _commitRequested = true;
            submit = TakeJobLocked();
        }
        _spool.WaitWithDeadline(this);
        if (submit) _spool.Enqueue(this);
        return new ValueTask<CommitResult>(this, version);
    }

    /// <summary>Gives the message up (client gone, too big, refused): it leaves no record a reader will see.</summary>
    public void Abort()
    {
        lock (_sync)
        {
            if (_phase is Phase.Idle or Phase.Committing) return;
            _phase = Phase.Idle;
            _resume = null;   // the connection is going: a writer catching up must not resume it
            _spool.StopWaiting(this);
            Release();
        }
    }

    private void Release()
    {
        if (Interlocked.Decrement(ref _holds) == 0) Recycle();
    }

    private void Recycle()
    {
        // A stream aborted after its writer's job ended still holds its region: let go of it here, or the next
        // message renting this one would find a region reserved and commit into it (the power-loss simulation
        // found it: the next record took the aborted one's first block, a 250 for a damaged record).
        ReleaseRegion();
        // The first chunk stays with the pooled message; the rest of the ring goes back.
        for (int i = 1; i < _ring.Length; i++)
        {
            _spool.Buffers.Return((byte*)_ring[i]);
            _ring[i] = 0;
        }
        _phase = Phase.Idle;
        _core.Reset();
        _spool.Return(this);
    }

    /// <summary>Sets the commit's result once (the writer's, or the deadline's 451 if it came first); the
    /// awaiting continuation runs now, on the calling thread. False if it was already set.</summary>
    internal bool Complete(CommitResult result)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _spool.StopWaiting(this);
        _core.SetResult(result);
        return true;
    }

    /// <summary>The spool's deadline passed (MessageSpool.Deadlines.cs): a paused stream fails and its connection
    /// reads on (discarding, 451 at the end); a commit is answered 451 now, whatever the writer does later.</summary>
    internal void Expire(int generation)
    {
        Action? resume;
        bool committing;
        lock (_sync)
        {
            if (generation != Generation) return;   // finished and started again since the deadline was read
            resume = _resume;
            _resume = null;
            if (resume is not null && _phase == Phase.Streaming) _phase = Phase.Failed;
            committing = _phase == Phase.Committing;
        }
        if (committing) Complete(CommitResult.Failed);
        resume?.Invoke();
    }

    CommitResult IValueTaskSource<CommitResult>.GetResult(short token)
    {
        CommitResult r = _core.GetResult(token);
        Release();
        return r;
    }

    ValueTaskSourceStatus IValueTaskSource<CommitResult>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<CommitResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
