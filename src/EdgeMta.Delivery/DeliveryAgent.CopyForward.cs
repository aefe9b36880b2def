// Copy-forward (FORMAT.md "Copy-forward"): a segment over an hour old whose live records are at most a tenth of it
// is emptied by copying those records to the spool's tail, so that a few long-deferred messages do not pin 64 MiB
// each for days. Per message, on the agent's own thread (no attempt starts meanwhile): read the record by its
// place, commit a copy with the same queue id, arrival time and payload bytes through the spool's commit path,
// make a Moved record durable, then move the index entry, restate the message's state at its new place (so that the
// journal files naming only the old place can go with it: DeliveryAgent.JournalRetention.cs) and, once that is
// durable, the per-segment live counts; the emptied segment is deleted by the pump like any other
// (MessageSpool.TryDeleteSegment).
// Bounded: checked once a minute on the injected clock, at most CopyBudgetPerMinute message bytes a minute, one
// whole segment per round of the pump (new commits and due attempts go between two segments), never a segment with
// an attempt in flight (it waits for the next check).
// What it does not do: copy a segment still written to, or decide anything at start (DeliveryAgent.Recovery.cs,
// with RecordLiveness, discards a copy whose Moved never became durable).
// How it fails: a record that does not read back stays where it is (a line; its segment then stays); a copy the
// spool refuses (full disk, I/O error) ends this round, and the next check tries again; a Moved that fails to
// write retracts the copy at once (its commit word set to Consumed), and the message stays at its old place.
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    /// <summary>How often the agent looks for segments to copy forward.</summary>
    internal static readonly TimeSpan CopyCheckInterval = TimeSpan.FromMinutes(1);
    /// <summary>A segment younger than this (its header's creation time) is left alone: most deferrals end within the
    /// first retries, and a young segment usually empties itself.</summary>
    internal static readonly TimeSpan CopyMinimumAge = TimeSpan.FromHours(1);
    /// <summary>Copied when its live bytes are at most 1/CopyLiveDivisor of its length (10 %).</summary>
    private const long CopyLiveDivisor = 10;
    /// <summary>Message bytes copied a minute, at most: about 1 MiB/s, a small share of the receiver's disk.</summary>
    internal const long CopyBudgetPerMinute = 64L << 20;
    /// <summary>Per live message beyond its data: the two slots, the envelope and the region's rounding to 512 bytes
    /// (an estimate that errs high: a segment copies a little later, never sooner).</summary>
    private const long CopyOverheadPerMessage = 1024;
    /// <summary>How long the agent waits for the spool to report a copy's place after its commit returned (the
    /// writer reports right after answering it).</summary>
    private const int CopyPlaceWaitMs = 5_000;

    private readonly Dictionary<long, (long CreatedMs, long Length)> _segmentInfo = new();
    private long _nextCopyCheckMs;
    private long _copyBudget = CopyBudgetPerMinute;
    private long _copyBudgetAtMs;
    private string? _copyId;
    private long _copySegment;
    private long _copyOffset;
    private long _segmentsCompacted;
    private long _messagesCopied;
    private long _bytesCopied;

    /// <summary>Segments emptied by copy-forward, and the messages and message bytes it copied (metrics).</summary>
    public long SegmentsCompacted => Interlocked.Read(ref _segmentsCompacted);
    public long MessagesCopied => Interlocked.Read(ref _messagesCopied);
    public long BytesCopied => Interlocked.Read(ref _bytesCopied);

    /// <summary>When the pump should wake for the next check, if anything is live (else it need not).</summary>
    private TimeSpan? UntilCopyCheckLocked()
        => _entries.Count == 0 ? null : TimeSpan.FromMilliseconds(Math.Max(0, _nextCopyCheckMs - NowMs));

    /// <summary>ISpoolObserver's side: true when this commit is the copy the pump waits for (it is not new mail).</summary>
    private bool TakeCopyPlaceLocked(long segment, long offset, string id)
    {
        if (_copyId is null || _copySegment != 0 || !string.Equals(id, _copyId, StringComparison.Ordinal)) return false;
        _copySegment = segment;
        _copyOffset = offset;
        Monitor.PulseAll(_gate);
        return true;
    }

    private void CopyForward()
    {
        RestateDue();
        long now = NowMs;
        List<(long Segment, List<QueueEntry> Entries, long Bytes)> candidates;
        lock (_gate)
        {
            if (_stopping || _entries.Count == 0 || now < _nextCopyCheckMs) return;
            _nextCopyCheckMs = now + (long)CopyCheckInterval.TotalMilliseconds;
            // A token bucket holding one minute's worth: a quiet hour does not turn into an hour's worth at once.
            long elapsed = _copyBudgetAtMs == 0 ? 60_000 : Math.Max(0, now - _copyBudgetAtMs);
            _copyBudget = Math.Min(CopyBudgetPerMinute, _copyBudget + CopyBudgetPerMinute * elapsed / 60_000);
            _copyBudgetAtMs = now;
            candidates = CandidatesLocked();
        }
        for (int i = 0; i < candidates.Count; i++)
        {
            var (segment, entries, bytes) = candidates[i];
            if (!_spool!.IsSealed(segment) || !Qualifies(segment, bytes, now)) continue;
            lock (_gate)
            {
                if (bytes > _copyBudget) return;   // the whole segment or nothing: the next check has more budget
                _copyBudget -= bytes;
            }
            if (!CopySegment(segment, entries)) return;
            lock (_gate)
            {
                // One segment a round: the pump takes new commits and starts what is due before the next one.
                if (i + 1 < candidates.Count && _copyBudget > 0)
                {
                    _nextCopyCheckMs = now;
                    _wake = true;
                }
            }
            return;
        }
    }

    /// <summary>Live bytes and entries per segment, in segment order; a segment with an attempt in flight is left out
    /// (its turn comes at a later check). Once a minute: one pass over the index.</summary>
    private List<(long, List<QueueEntry>, long)> CandidatesLocked()
    {
        var bySegment = new SortedDictionary<long, (List<QueueEntry> Entries, long Bytes, bool Busy)>();
        foreach (var e in _entries.Values)
        {
            if (!bySegment.TryGetValue(e.Segment, out var s)) s = (new List<QueueEntry>(), 0, false);
            s.Entries.Add(e);
            bySegment[e.Segment] = (s.Entries, s.Bytes + e.Size + CopyOverheadPerMessage, s.Busy || e.InFlight);
        }
        var list = new List<(long, List<QueueEntry>, long)>();
        foreach (var (segment, s) in bySegment)
        {
            if (!s.Busy) list.Add((segment, s.Entries, s.Bytes));
        }
        return list;
    }

    private bool Qualifies(long segment, long liveBytes, long now)
    {
        if (!_segmentInfo.TryGetValue(segment, out var info))
        {
            if (!_spool!.TryReadSegmentInfo(segment, out long created, out long length)) return false;
            _segmentInfo[segment] = info = (created, length);
        }
        return now - info.CreatedMs >= (long)CopyMinimumAge.TotalMilliseconds && liveBytes * CopyLiveDivisor <= info.Length;
    }

    /// <summary>Copies every live message of <paramref name="segment"/> forward; false when the spool or the journal
    /// refused one (this round ends there).</summary>
    private bool CopySegment(long segment, List<QueueEntry> entries)
    {
        int messages = 0;
        long bytes = 0;
        bool ok = true;
        foreach (var entry in entries)
        {
            lock (_gate)
            {
                if (_stopping) { ok = false; break; }
                // Released, moved, or taken by an attempt since the candidates were listed.
                if (!_entries.ContainsKey(entry.QueueId) || entry.InFlight || entry.Segment != segment) continue;
            }
            int copied = CopyOne(entry, segment);
            if (copied < 0) { ok = false; break; }
            messages++;
            bytes += copied;
        }
        _segmentInfo.Remove(segment);
        if (messages > 0)
        {
            Interlocked.Increment(ref _segmentsCompacted);
            Interlocked.Add(ref _messagesCopied, messages);
            Interlocked.Add(ref _bytesCopied, bytes);
            _events.SegmentCompacted(segment, messages, bytes);
        }
        return ok;
    }

    /// <summary>One message: copy, Moved durable, then the index. Returns its data bytes; 0 when it was left where it
    /// is (unreadable: kept, with a line); -1 when the spool or the journal failed.</summary>
    private int CopyOne(QueueEntry entry, long segment)
    {
        string id = entry.QueueId;
        long offset = entry.Offset;
        byte[] idBytes = System.Text.Encoding.ASCII.GetBytes(id);
        if (!_spool!.TryReadRecord(segment, offset, idBytes, _buffers, out byte[]? buffer, out int envelope, out int data, out long arrival))
        {
            _events.Trouble($"delivery: record {id} at {segment:x16}+{offset} does not read back; not copied forward");
            return 0;
        }
        CommitResult result;
        lock (_gate)
        {
            _copyId = id;
            _copySegment = 0;
        }
        try
        {
            var copy = _spool.BeginCopy(idBytes, arrival, buffer.AsSpan(0, envelope));
            copy.Append(buffer.AsSpan(envelope, data));
            var pending = copy.CommitAsync();
            result = pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
        }
        finally
        {
            _buffers.Return(buffer!);
        }
        long newSegment, newOffset;
        lock (_gate)
        {
            long deadline = Environment.TickCount64 + CopyPlaceWaitMs;
            while (result == CommitResult.Committed && _copySegment == 0 && Environment.TickCount64 < deadline)
            {
                Monitor.Wait(_gate, (int)Math.Max(1, deadline - Environment.TickCount64));
            }
            newSegment = _copySegment;
            newOffset = _copyOffset;
            _copyId = null;
            _copySegment = 0;
        }
        if (result != CommitResult.Committed || newSegment == 0)
        {
            // Not committed: nothing to undo. Committed with no place heard: an orphan the next start discards.
            _events.Trouble($"delivery: copy-forward of {id} not spooled ({result}); it stays at {segment:x16}+{offset}");
            return -1;
        }
        var moved = JournalRecord.Moved(segment, offset, id, newSegment, newOffset, NowMs);
        int err = _journal!.AppendAsync([moved]).GetAwaiter().GetResult();
        if (err != 0)
        {
            // The copy must never become a second message: retract it now (FORMAT.md "Copy-forward").
            bool retracted = _spool.TryRetractRecord(newSegment, newOffset, idBytes);
            _events.Trouble($"delivery: copy-forward of {id}: journal write failed (errno {err}); the copy is "
                + (retracted ? "retracted" : "left for the next start to discard"));
            return -1;
        }
        bool released;
        Task<int> restating;
        lock (_gate)
        {
            // Released meanwhile (an operator's delete): the copy is the message's place in the journal now, with the
            // final records that came at the old one; nothing is live, nothing to count at the new place.
            released = !_entries.ContainsKey(id);
            if (!released)
            {
                entry.Segment = newSegment;
                entry.Offset = newOffset;
                _liveBySegment[newSegment] = _liveBySegment.GetValueOrDefault(newSegment) + 1;
                _emptySegments.Remove(newSegment);
            }
            else
            {
                // Released meanwhile, the old segment may already be counted empty: pinned until the restatement is
                // durable, as a live one is by its own count.
                _liveBySegment[segment] = _liveBySegment.GetValueOrDefault(segment) + 1;
                _emptySegments.Remove(segment);
            }
            restating = RestateMovedLocked(entry, newSegment, newOffset);
        }
        int restated = restating.GetAwaiter().GetResult();
        lock (_gate)
        {
            if (restated != 0)
            {
                // The old segment stays (its journal files hold the state) until a later round restates it.
                _restateDue.Add((entry, newSegment, newOffset, segment));
                _events.Trouble($"delivery: copy-forward of {id}: restating its state failed (errno {restated}); "
                    + $"segment {segment:x16} stays until it is written");
                return data;
            }
            UnpinLocked(segment);
        }
        return data;
    }
}
