// Segments, prepared ahead: one thread keeps a spare segment ready (created, allocated, written through
// with zeros, its header and name durable: Segment.cs), so no commit waits for a 64 MiB file to be made and
// no socket thread ever creates one. The same thread reads statvfs for the MAIL gate
// (MessageSpool.Readiness.cs): both block on a stalled filesystem, and neither may stall a session.
// Reservation (writer threads, under the spool's lock, memory only): a region goes at the current segment's
// tail; when it does not fit, or the segment is retired, the spare becomes current and the supply makes
// the next one. With no spare yet, the writer waits for it, at most the commit timeout.
// Backoff after a failed creation (FORMAT.md, "Writing"): the errno is kept and every reservation that needs
// a new segment fails with it at once (451, or 452 for ENOSPC) until a creation succeeds; the supply tries
// again after 1 s, doubling to 5 s. Creating, fallocating and unlinking a fresh 64 MiB segment for every
// refused message once made 8,155 segments in 5 s and left 3.9 GB on disk for 0.86 GB of mail.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool
{
    // 1 s first: for 5 s after a storage error MAIL is refused anyway (SpoolOptions.FailingWindowMs), so a quicker
    // retry only makes more segments fail to be born (at 100 ms: 14 creations for 4 faults of 400 ms, end to end).
    private const int FirstBackoffMs = 1000, LastBackoffMs = 5000;

    private Segment? _spare;
    private int _supplyError;
    private long _retryAt;   // Environment.TickCount64
    private int _backoffMs = FirstBackoffMs;
    private bool _roomCheckWanted = true;
    private Thread? _supply;

    private void StartSupply()
    {
        _supply = new Thread(SupplyLoop) { IsBackground = true, Name = "spool supply" };
        _supply.Start();
    }

    private void StopSupply()
    {
        lock (_gate) Monitor.PulseAll(_gate);
        if (_supply is not null && _supply != Thread.CurrentThread) _supply.Join();
    }

    private void SupplyLoop()
    {
        while (true)
        {
            bool create, check;
            lock (_gate)
            {
                while (true)
                {
                    if (_disposed) return;
                    long now = Environment.TickCount64;
                    create = _spare is null && now >= _retryAt;
                    check = _roomCheckWanted;
                    if (create || check) break;
                    long wait = _spare is null ? Math.Max(1, _retryAt - now) : _options.HeartbeatPeriodMs;
                    Monitor.Wait(_gate, (int)Math.Min(wait, _options.HeartbeatPeriodMs));
                }
                _roomCheckWanted = false;
            }
            if (check) CheckRoom();
            if (create) CreateSpare();
        }
    }

    private void CreateSpare()
    {
        int err = InjectCreateError?.Invoke() ?? 0;
        Segment? fresh = null;
        if (err == 0)
        {
            err = Segment.TryCreate(Io, _directory, Interlocked.Increment(ref _nextSequence) - 1, _options.SegmentSize, writeZeros: true, out fresh);
        }
        NoteStorageError(err);
        lock (_gate)
        {
            if (err == 0)
            {
                if (_disposed)
                {
                    fresh!.Release();   // never used: deleted
                    return;
                }
                _spare = fresh;
                _supplyError = 0;
                _backoffMs = FirstBackoffMs;
            }
            else
            {
                _supplyError = err;
                _retryAt = Environment.TickCount64 + _backoffMs;
                _backoffMs = Math.Min(LastBackoffMs, _backoffMs * 2);
            }
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Reserves a region of <paramref name="length"/> bytes (a multiple of a block) at a segment tail, for a
    /// streamed message (writer thread). The caller owns one reference to the segment. Returns 0 or an errno.</summary>
    internal int Reserve(long length, out Segment? segment, out long offset)
    {
        segment = null;
        offset = Segment.Block;
        if (length > SegmentUsable)
        {
            // A message bigger than a segment gets a segment of its own, sized to fit, made here on the writer:
            // not zeroed (the rare message this big pays the block conversions) and shared with nobody.
            if (_disposed) return LibC.EIO;
            long size = (Segment.Block + length + 4095) & ~4095L;
            int e = InjectCreateError?.Invoke() ?? 0;
            if (e == 0) e = Segment.TryCreate(Io, _directory, Interlocked.Increment(ref _nextSequence) - 1, size, writeZeros: false, out segment);
            NoteStorageError(e);
            if (e != 0) return e;
            segment!.Tail = offset + length;
            return 0;   // the creation reference is the region's
        }
        lock (_gate)
        {
            int err = CurrentWithRoomLocked(length, out var s);
            if (err != 0) return err;
            offset = s!.Tail;
            s.Tail += length;
            s.AddRef();
            segment = s;
            return 0;
        }
    }

    /// <summary>Reserves neighbouring regions for the small commits small[first..] that fit the current segment (at
    /// least one): one lock for the run. Each region holds a segment reference.</summary>
    private int ReserveRun(List<SpoolMessage> small, int first, RunBuffer run, out int count, out Segment? segment)
    {
        count = 0;
        lock (_gate)
        {
            int err = CurrentWithRoomLocked(small[first].SmallRegionLength, out segment);
            if (err != 0) return err;
            var s = segment!;
            int vectors = 0;
            while (first + count < small.Count && count < RunBuffer.Max)
            {
                long length = small[first + count].SmallRegionLength;
                vectors += small[first + count].SmallChunkCount;
                if (s.Tail + length > s.Length || vectors > RunBuffer.MaxVectors) break;
                run.Offsets[count] = s.Tail;
                run.Lengths[count] = length;
                s.Tail += length;
                s.AddRef();
                count++;
            }
            return 0;
        }
    }

    // Under _gate. The current segment if the region fits, else the spare (waiting for the supply at most the
    // commit timeout), else the supply's errno.
    private int CurrentWithRoomLocked(long length, out Segment? segment)
    {
        long giveUp = Environment.TickCount64 + (long)_options.CommitTimeout.TotalMilliseconds;
        while (true)
        {
            segment = _current;
            if (_disposed) return LibC.EIO;   // the spool is closing
            if (segment is not null && !segment.Retired && segment.Tail + length <= segment.Length) return 0;
            if (_spare is not null)
            {
                _current?.Release();
                _current = _spare;
                _opened[_spare.Sequence] = _spare;
                _spare = null;
                Monitor.PulseAll(_gate);   // the supply makes the next one
                continue;
            }
            if (_supplyError != 0)
            {
                // Still failing: the refusal renews the MAIL gate's window, as a failed write would.
                NoteStorageError(_supplyError);
                return _supplyError;
            }
            long left = giveUp - Environment.TickCount64;
            if (left <= 0) return LibC.ETIMEDOUT;
            Monitor.Wait(_gate, (int)Math.Min(left, 100));
        }
    }

    /// <summary>True when the region is still its segment's last: its unused end may be given back at commit.</summary>
    internal bool MayShrink(Segment segment, long offset, long length)
    {
        lock (_gate) return segment.Tail == offset + length;
    }

    /// <summary>The shorter extent is durable: the tail comes back to the region's new end, unless something was
    /// reserved after it meanwhile (then the gap stays, zeros a walk steps over).</summary>
    internal void ShrinkAfterCommit(Segment segment, long offset, long length, long newLength)
    {
        lock (_gate)
        {
            if (segment.Tail == offset + length) segment.Tail = offset + newLength;
        }
    }
}
