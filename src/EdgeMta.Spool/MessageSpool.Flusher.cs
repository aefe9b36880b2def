// Group commit (RFC 5321 §6.1 durability at the price of one flush per batch, not per message).
// One dedicated thread: it takes every commit queued since its last flush, msyncs one page range per
// segment touched, and completes each commit's ValueTask right there. Commits that arrive during a flush
// form the next batch, so the batch grows with the load and no writer thread ever blocks (docs/PERF-NOTES.md:
// k=64 records per flush gives about 19x the per-message rate of k=1).
// The range flushed for a segment starts at the lower of its watermark and the batch's first record: the
// watermark is how far every slot 0 is already durable, and flushing from it makes durable the slot 0 of
// every region reserved before the batch's records, committed or not. So a committed record is never
// preceded by a region header that is not on disk, and recovery can always walk to it.
// On a failed flush every commit of the batch fails and the segment is retired; a batch that reaches a
// segment already retired fails without a flush (FORMAT.md, "Writing").
// Heartbeat: the flusher stamps the monotonic clock at every loop turn, and an idle flusher wakes at least
// once every SpoolOptions.HeartbeatPeriodMs to stamp it too, so a stale stamp means a stuck flusher (an msync that does not
// return, a deadlock), never a quiet one. The host's service watchdog reads it; nothing here acts on it.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool
{
    private readonly object _flushGate = new();   // Monitor: the flusher waits on it
    private List<SpoolMessage> _pending = new(256);
    private List<SpoolMessage> _working = new(256);
    private readonly Segment?[] _batchSegments = new Segment?[8];
    private readonly long[] _batchFrom = new long[8];
    private readonly long[] _batchTo = new long[8];
    private Thread? _flusher;
    private bool _stopping;
    private bool _flusherExited;
    private bool _flusherWaiting;
    private long _flushes;
    private long _flushedRecords;
    private long _heartbeat;

    /// <summary>Longest an idle flusher sleeps before it stamps its heartbeat again (SpoolOptions).</summary>
    public int HeartbeatPeriodMs => _options.HeartbeatPeriodMs;

    /// <summary>The <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> of the flusher's last loop turn,
    /// at most <see cref="HeartbeatPeriodMs"/> old while it is idle, one flush old while it works. With no flusher (`--sync none`)
    /// nothing can stall, and the answer is always now.</summary>
    public long FlusherHeartbeat => _flusher is null ? System.Diagnostics.Stopwatch.GetTimestamp() : Volatile.Read(ref _heartbeat);

    /// <summary>Flushes done and records they carried, for benchmarks (records / flushes = batch size).</summary>
    public (long Flushes, long Records) FlushCounters => (Interlocked.Read(ref _flushes), Interlocked.Read(ref _flushedRecords));

    private void StartFlusher()
    {
        _heartbeat = System.Diagnostics.Stopwatch.GetTimestamp();
        _flusher = new Thread(FlushLoop) { IsBackground = true, Name = "spool flusher" };
        _flusher.Start();
    }

    private void StopFlusher()
    {
        if (_flusher is null) return;
        lock (_flushGate)
        {
            _stopping = true;
            Monitor.Pulse(_flushGate);
        }
        // Disposed from a commit's continuation, which runs on the flusher: it finishes the queue and exits.
        if (Thread.CurrentThread == _flusher) return;
        _flusher.Join();
    }

    internal void EnqueueFlush(SpoolMessage m)
    {
        lock (_flushGate)
        {
            if (_flusherExited)
            {
                // A commit racing Dispose: nobody will flush it. It fails (451); the client retries.
                m.Uncommit();
                m.CompleteFlush(CommitResult.Failed);
                return;
            }
            _pending.Add(m);
            if (_flusherWaiting || (_gathering && _pending.Count >= _lastBatch)) Monitor.Pulse(_flushGate);
        }
    }

    // Gathering: the writers completed by one flush commit again at about the same time, but the first of
    // them wakes the flusher alone; flushing at once would alternate one tiny batch with one big one.
    // So when fewer commits wait than the last batch held, the flusher waits for that many, at most half
    // the last flush time (and 2 ms; whole milliseconds, so never on a disk that flushes in under 2 ms): one flush then carries what two would have.
    private bool _gathering;
    private int _lastBatch;
    private long _lastFlushTicks;

    private void FlushLoop()
    {
        while (true)
        {
            Volatile.Write(ref _heartbeat, System.Diagnostics.Stopwatch.GetTimestamp());
            lock (_flushGate)
            {
                while (_pending.Count == 0)
                {
                    if (_stopping) { _flusherExited = true; return; }
                    _flusherWaiting = true;
                    Monitor.Wait(_flushGate, _options.HeartbeatPeriodMs);
                    _flusherWaiting = false;
                    Volatile.Write(ref _heartbeat, System.Diagnostics.Stopwatch.GetTimestamp());
                }
                Gather();
                (_pending, _working) = (_working, _pending);
            }
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            FlushBatch(_working);
            _lastFlushTicks = System.Diagnostics.Stopwatch.GetTimestamp() - started;
            Counters.RecordFlush(_lastFlushTicks * 1_000_000 / System.Diagnostics.Stopwatch.Frequency);
            _lastBatch = _working.Count;
            _working.Clear();
        }
    }

    private void Gather()
    {
        if (_pending.Count >= _lastBatch || _stopping) return;
        // Monitor.Wait counts whole milliseconds: on a disk that flushes faster than 2 ms, do not wait.
        int waitMs = (int)Math.Min(2, _lastFlushTicks * 1000 / 2 / System.Diagnostics.Stopwatch.Frequency);
        if (waitMs < 1) return;
        long deadline = Environment.TickCount64 + waitMs;
        _gathering = true;
        while (_pending.Count < _lastBatch && !_stopping)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0 || !Monitor.Wait(_flushGate, (int)left)) break;
        }
        _gathering = false;
    }

    private void FlushBatch(List<SpoolMessage> batch)
    {
        int segments = 0;
        foreach (var m in batch)
        {
            var seg = m.FlushSegment;
            int i = 0;
            while (i < segments && _batchSegments[i] != seg) i++;
            if (i == segments)
            {
                if (segments == _batchSegments.Length) { FlushSegments(segments, out _); segments = 0; i = 0; }
                _batchSegments[i] = seg;
                _batchFrom[i] = m.FlushStart;
                _batchTo[i] = m.FlushEnd;
                segments++;
            }
            else
            {
                _batchFrom[i] = Math.Min(_batchFrom[i], m.FlushStart);
                _batchTo[i] = Math.Max(_batchTo[i], m.FlushEnd);
            }
        }
        FlushSegments(segments, out int err);
        // A segment overflowing the small table above is flushed early; its error is folded in here.
        err = err != 0 ? err : _earlyError;
        _earlyError = 0;
        var result = err == 0 ? CommitResult.Committed
            : err is LibC.ENOSPC or LibC.EDQUOT ? CommitResult.Full : CommitResult.Failed;
        Interlocked.Increment(ref _flushes);
        Interlocked.Add(ref _flushedRecords, batch.Count);
        if (err != 0)
        {
            // The client hears 451 and will send again: unmark what the failed flush may still write back
            // later, so a restart does not find these as well (a duplicate, at worst, if it already did).
            foreach (var m in batch) m.Uncommit();
        }
        // Completed here, on this thread: the continuation (the server's posts its connection's reply and
        // sends it) runs at once. A hop to the thread pool instead cost a wakeup per batch and
        // two to three times the context switches per message (README, "Performance work").
        foreach (var m in batch) m.CompleteFlush(result);
    }

    private int _earlyError;

    private void FlushSegments(int count, out int err)
    {
        err = 0;
        for (int i = 0; i < count; i++)
        {
            var seg = _batchSegments[i]!;
            long from = Math.Min(_batchFrom[i], seg.Watermark);
            // A retired segment is never flushed again: after a failed flush Linux reports the writeback error
            // once and marks the failed pages clean, so a later msync of the same range finds nothing dirty and
            // returns 0. A commit that passed the retired check while the failing flush ran rides in the next
            // batch: it fails here (451) instead of earning a 250 for bytes that never reached the disk.
            bool retired = seg.Retired;
            int e = retired ? LibC.EIO : InjectFlushError?.Invoke() ?? 0;
            // Up to the zeros written ahead too (Segment.cs), so their blocks convert in this one flush.
            if (e == 0) e = seg.Flush(from, Math.Max(_batchTo[i], Volatile.Read(ref seg.ZeroedTo)));
            // Durable in a file that is no longer in the spool (the directory or the segment removed by hand) is
            // not durable: 451, and the segment takes no more records. One statx per segment per flush.
            if (e == 0 && !seg.IsLinked()) e = LibC.ENOENT;
            if (e != 0)
            {
                if (!retired) NoteStorageError(e);   // for the MAIL gate (MessageSpool.Readiness.cs); not the made-up EIO
                seg.Retired = true;
                err = e;
            }
            else
            {
                seg.Watermark = Math.Max(seg.Watermark, _batchTo[i]);
            }
            _batchSegments[i] = null;
        }
        if (err != 0 && _earlyError == 0) _earlyError = err;
    }
}
