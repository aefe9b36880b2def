// The commit path (FORMAT.md, "Writing"): SpoolOptions.Writers threads, each taking every job queued when
// it wakes. Small commits taken together get neighbouring regions in one reservation and go out in one
// direct write with RWF_DSYNC: the 250 waits for that one device round trip, and while it runs the next
// commits are taken by another writer, so several are in flight (the disk's queue overlaps them where
// fdatasync calls on one file serialise; measured here, 4 KiB: 6,800 writes/s with one in flight, 18,600
// with eight). Streamed messages' chunks and commits run on the same threads.
// Completion runs on the writer, inline: the server's continuation posts the reply and sends it (a hop to
// the thread pool cost a wakeup and two to three times the context switches per message: README,
// "Performance work").
// Heartbeat: a writer stamps when it starts a batch and clears the stamp when done; FlusherHeartbeat is the
// oldest stamp (now when every writer is idle), so it goes stale only while a write does not return.
// How it fails: a failed durable write fails every commit it carried and retires its segment; a write that
// returned into a segment an earlier failure retired is not trusted either (buffered fallback: Linux reports
// a writeback error once per file, so the later sync can pass with nothing on disk; Segment.cs).
using System.Diagnostics;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool
{
    private readonly Lock _queueGate = new();
    private List<SpoolMessage> _queue = new(256);
    private Thread[] _writers = [];
    private long[] _busySince = [];
    // Idle writers, a stack (LIFO), each waiting on its own semaphore.
    private int[] _idle = [];
    private int _idleCount;
    private SemaphoreSlim[] _wakes = [];
    private int _busyWriters;

    private bool _writersStopping;
    private bool _writersStopped;
    private long _flushes;
    private long _flushedRecords;

    /// <summary>Longest an idle writer sleeps between looks at its queue (SpoolOptions); the watchdog allows
    /// at least twice this.</summary>
    public int HeartbeatPeriodMs => _options.HeartbeatPeriodMs;

    /// <summary>The <see cref="Stopwatch.GetTimestamp"/> at which the oldest write still running began; now when
    /// no write runs. Stale only while a write does not return (a stalled or dying disk).</summary>
    public long FlusherHeartbeat
    {
        get
        {
            long oldest = Stopwatch.GetTimestamp();
            foreach (ref long since in _busySince.AsSpan())
            {
                long s = Volatile.Read(ref since);
                if (s != 0 && s < oldest) oldest = s;
            }
            return oldest;
        }
    }

    /// <summary>Durable writes done and the records they carried (records / flushes = batch size).</summary>
    public (long Flushes, long Records) FlushCounters => (Interlocked.Read(ref _flushes), Interlocked.Read(ref _flushedRecords));

    private void StartWriters()
    {
        int n = Math.Clamp(_options.Writers, 1, 64);
        _writers = new Thread[n];
        _busySince = new long[n];
        _idle = new int[n];
        _wakes = new SemaphoreSlim[n];
        for (int i = 0; i < n; i++) _wakes[i] = new SemaphoreSlim(0);
        for (int i = 0; i < n; i++)
        {
            _writers[i] = new Thread(WriterLoop) { IsBackground = true, Name = "spool writer" };
            _writers[i].Start(i);
        }
    }

    // A writer whose wait timed out: off the idle stack, unless Enqueue popped it meanwhile (its wake then
    // comes, or came, and the next wait returns at once: a look at an empty queue, harmless).
    private void LeaveIdle(int me)
    {
        lock (_queueGate)
        {
            for (int i = 0; i < _idleCount; i++)
            {
                if (_idle[i] != me) continue;
                _idle[i] = _idle[--_idleCount];
                return;
            }
        }
    }

    private void StopWriters()
    {
        lock (_queueGate)
        {
            _writersStopping = true;
            foreach (var wake in _wakes) wake.Release();
        }
        foreach (var t in _writers)
        {
            // Disposed from a commit's continuation, which runs on a writer: the others finish the queue.
            if (t != Thread.CurrentThread) t.Join();
        }
        lock (_queueGate) _writersStopped = true;
        foreach (var m in TakeAll()) m.Refuse();
    }

    private List<SpoolMessage> TakeAll()
    {
        lock (_queueGate)
        {
            var all = _queue;
            _queue = new List<SpoolMessage>();
            return all;
        }
    }

    internal void Enqueue(SpoolMessage m)
    {
        lock (_queueGate)
        {
            if (!_writersStopped)
            {
                _queue.Add(m);
                // Another write in flight only when none is, or when enough commits wait to fill one: every write
                // costs a system call, an interrupt and a wakeup, and on this 2-core machine CPU, not the disk,
                // sets the pace (SpoolOptions.WakeThreshold has the figures).
                if (_idleCount > 0 && (_busyWriters == 0 || _queue.Count >= _options.WakeThreshold))
                {
                    // The writer that went idle last: its stack and caches are warm, and at low load one thread
                    // carries every commit (Monitor.Pulse woke the longest idle, a different cold thread each time;
                    // dot-to-250 p99 at one session 2.2 to 3.5 ms against 0.9 to 1.9 for the old flusher).
                    _wakes[_idle[--_idleCount]].Release();
                }
                return;
            }
        }
        m.Refuse();   // racing Dispose: nobody will write it; 451, and the client sends it again
    }

    private void WriterLoop(object? index)
    {
        int me = (int)index!;
        var batch = new List<SpoolMessage>(256);
        var small = new List<SpoolMessage>(256);
        var streams = new List<SpoolMessage>(16);
        var synced = new List<SpoolMessage>(16);
        var syncSegments = new List<Segment?>(16);
        var run = new RunBuffer();
        while (true)
        {
            while (true)
            {
                lock (_queueGate)
                {
                    if (_queue.Count > 0)
                    {
                        (_queue, batch) = (batch, _queue);
                        _busyWriters++;
                        break;
                    }
                    if (_writersStopping) return;
                    _idle[_idleCount++] = me;
                }
                if (!_wakes[me].Wait(_options.HeartbeatPeriodMs)) LeaveIdle(me);
            }
            Volatile.Write(ref _busySince[me], Stopwatch.GetTimestamp());
            // Sorted before any is finished: a finished message may go back to the pool and start again.
            foreach (var m in batch) (m.IsSmallCommit ? small : streams).Add(m);
            batch.Clear();
            // Small commits first: they wait for this write; a streamed chunk only keeps a buffer busy.
            if (small.Count > 0) CommitSmall(small, run);
            foreach (var m in streams)
            {
                if (m.RunStreamJob()) synced.Add(m);
            }
            if (synced.Count > 0) SyncStreamCommits(synced, syncSegments);
            small.Clear();
            streams.Clear();
            synced.Clear();
            Volatile.Write(ref _busySince[me], 0);
            lock (_queueGate) _busyWriters--;
        }
    }

    /// <summary>Vectors in one write: IOV_MAX.</summary>
    internal const int MaxRunVectors = 1024;

    /// <summary>Per writer: the regions and vectors of one run of small records.</summary>
    private sealed class RunBuffer
    {
        public const int Max = 256;
        public const int MaxVectors = MaxRunVectors;
        public readonly long[] Offsets = new long[Max];
        public readonly long[] Lengths = new long[Max];
        public readonly nint[] Firsts = new nint[Max];
    }

    private unsafe void CommitSmall(List<SpoolMessage> small, RunBuffer run)
    {
        LibC.IoVec* iov = stackalloc LibC.IoVec[RunBuffer.MaxVectors];
        int i = 0;
        while (i < small.Count)
        {
            int err = ReserveRun(small, i, run, out int count, out Segment? segment);
            if (err != 0)
            {
                var failed = ResultOf(err);
                for (int j = i; j < small.Count; j++) small[j].FinishCommit(failed, null);
                return;
            }
            int vectors = 0;
            for (int j = 0; j < count; j++)
            {
                var m = small[i + j];
                int chunks = m.SmallChunkCount;
                run.Firsts[j] = (nint)m.FillSmallRecord(segment!, run.Offsets[j], run.Lengths[j], iov + vectors);
                vectors += chunks;
            }
            err = WriteDurableRun(segment!, iov, vectors, run.Offsets[0], SyncAlways);
            Interlocked.Add(ref _flushedRecords, count);
            var result = ResultOf(err);
            for (int j = 0; j < count; j++) small[i + j].FinishCommit(result, (byte*)run.Firsts[j], whole: true);
            i += count;
        }
    }

    internal static CommitResult ResultOf(int err) => err == 0 ? CommitResult.Committed
        : err is LibC.ENOSPC or LibC.EDQUOT ? CommitResult.Full : CommitResult.Failed;

    // The streamed commits of a batch are written; one sync per segment makes them all durable (group commit:
    // a batch of 64 KiB messages costs one device flush, not one each). The segments are read before any
    // commit is finished: a finished message may go back to the pool and start again.
    private void SyncStreamCommits(List<SpoolMessage> written, List<Segment?> segments)
    {
        segments.Clear();
        foreach (var m in written) segments.Add(m.PendingSegment);
        Interlocked.Add(ref _flushedRecords, written.Count);
        for (int i = 0; i < written.Count; i++)
        {
            Segment? segment = segments[i];
            if (segment is null) continue;
            int err = SyncDurable(segment);
            for (int j = i; j < written.Count; j++)
            {
                if (segments[j] != segment) continue;
                segments[j] = null;
                written[j].FinishStreamCommit(err);
            }
        }
    }

    private int SyncDurable(Segment segment)
    {
        int err = InjectFlushError?.Invoke() ?? 0;
        long started = Stopwatch.GetTimestamp();
        if (err == 0 && SyncAlways) err = segment.Sync();
        if (SyncAlways) Counters.RecordFlush((Stopwatch.GetTimestamp() - started) * 1_000_000 / Stopwatch.Frequency);
        Interlocked.Increment(ref _flushes);
        if (err == 0 && segment.Retired) err = LibC.EIO;   // retired before or while: nothing here is trusted
        if (err == 0 && SyncAlways && !segment.IsLinked()) err = LibC.ENOENT;
        if (err != 0) NoteWriteFailure(segment, err);
        return err;
    }

    private unsafe int WriteDurableRun(Segment segment, LibC.IoVec* iov, int count, long offset, bool durable)
    {
        // A segment an earlier failure retired takes no more commits: fail here, before the write.
        int err = InjectFlushError?.Invoke() ?? 0;
        if (err == 0 && segment.Retired) err = LibC.EIO;
        long started = Stopwatch.GetTimestamp();
        if (err == 0) err = segment.Write(iov, count, offset, durable);
        if (durable) Counters.RecordFlush((Stopwatch.GetTimestamp() - started) * 1_000_000 / Stopwatch.Frequency);
        Interlocked.Increment(ref _flushes);
        // Durable in a file that is no longer in the spool (the directory or the segment removed by hand) is
        // not durable: 451, and the segment takes no more records. One statx per durable write.
        if (err == 0 && durable && !segment.IsLinked()) err = LibC.ENOENT;
        if (err != 0) NoteWriteFailure(segment, err);
        return err;
    }

    /// <summary>A write into <paramref name="segment"/> failed: remember the errno for the MAIL gate, and put
    /// nothing more in it (a region header may be half there).</summary>
    internal void NoteWriteFailure(Segment segment, int err)
    {
        if (!segment.Retired) NoteStorageError(err);   // not the made-up EIO of a segment already retired
        segment.Retired = true;
    }

    /// <summary>Tests only: an errno to fail segment creation or a durable write with.</summary>
    internal Func<int>? InjectCreateError, InjectFlushError;

    /// <summary>Tests only: retires the current segment and drops the spare, so the next commit needs a segment
    /// the supply has yet to make (where InjectCreateError can fail it).</summary>
    internal void NeedFreshSegmentForTests()
    {
        lock (_gate)
        {
            // A creation under way would install its spare after this: wait for it (bounded) first.
            for (int i = 0; i < 100 && _spare is null && _supplyError == 0; i++) Monitor.Wait(_gate, 100);
            if (_current is not null) _current.Retired = true;
            _spare?.Release();
            _spare = null;
            _retryAt = 0;
            Monitor.PulseAll(_gate);
        }
    }
}
