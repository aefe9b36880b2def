// The delivery journal kept bounded during a run (FORMAT.md "Delivery journal", "Retention"): after a segment
// deletion or a journal file roll, the pump deletes each journal file this process closed whose records name only
// segments no longer in the spool (DeliveryJournal.DeleteUnneeded, JournalRetention.cs), after an fsync of the spool
// directory that makes those segments' deletion durable. Copy-forward's other half lives here: the moved message's
// state is restated at its new place, durable before its old segment may go, so that the old journal files hold
// nothing still needed (FORMAT.md "Copy-forward").
// What it does not do: touch files from before this start (the next start compacts them), or delete anything
// while the spool directory's fsync fails.
// How it fails: a restatement that fails keeps the old segment counted live (so it, and every journal file naming
// it, stays) and is tried again at the next copy-forward check; a failed unlink or fsync keeps the file for the next
// pass. Both only cost space.
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    private DeliveryJournal? _journalFile;
    private long _segmentsDeleted;           // pump thread only
    private long _retainSeenDeleted = -1;
    private long _retainSeenClosed = -1;
    // Moves whose restatement is not durable yet: the entry, its new place, and the old segment it pins.
    private readonly List<(QueueEntry Entry, long Segment, long Offset, long OldSegment)> _restateDue = new();

    /// <summary>Journal files this process deleted during the run (tests; the server counts the log events).</summary>
    internal long JournalFilesDeleted => _journalFile?.FilesDeleted ?? 0;

    /// <summary>Under _gate: posts the records that say all of <paramref name="entry"/>'s state at its new place. Posted
    /// under the lock, so every record made before at the old place is written before them.</summary>
    private Task<int> RestateMovedLocked(QueueEntry entry, long segment, long offset)
    {
        var records = new List<JournalRecord>(entry.Recipients.Length + 2);
        Restate(entry, segment, offset, NowMs, records);
        return records.Count == 0 ? Task.FromResult(0) : _journal!.AppendAsync(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records));
    }

    /// <summary>Under _gate: the move's pin on its old segment is let go; empty, the segment is deleted by the pump.</summary>
    private void UnpinLocked(long segment)
    {
        int live = _liveBySegment.GetValueOrDefault(segment) - 1;
        if (live <= 0)
        {
            _liveBySegment.Remove(segment);
            _emptySegments.Add(segment);
        }
        else
        {
            _liveBySegment[segment] = live;
        }
    }

    /// <summary>Pump thread: the restatements that failed before, again.</summary>
    private void RestateDue()
    {
        while (true)
        {
            Task<int> restating;
            (QueueEntry Entry, long Segment, long Offset, long OldSegment) due;
            lock (_gate)
            {
                if (_restateDue.Count == 0 || _stopping) return;
                due = _restateDue[0];
                restating = RestateMovedLocked(due.Entry, due.Segment, due.Offset);
            }
            if (restating.GetAwaiter().GetResult() != 0) return;
            lock (_gate)
            {
                _restateDue.RemoveAt(0);
                UnpinLocked(due.OldSegment);
            }
        }
    }

    /// <summary>Pump thread, after DeleteEmptySegments: deletes the journal files nothing in the spool needs.</summary>
    private void RetainJournal()
    {
        var journal = _journalFile;
        if (journal is null || _spool is null) return;
        long closed = journal.FilesClosed;
        if (closed == _retainSeenClosed && _segmentsDeleted == _retainSeenDeleted) return;
        _retainSeenClosed = closed;
        _retainSeenDeleted = _segmentsDeleted;
        long lowest = journal.LowestRetainedMaxSegment;
        if (lowest == long.MaxValue) return;
        long oldest = long.MaxValue;
        foreach (string file in SpoolRecovery.SegmentFiles(_spool.Directory)) oldest = Math.Min(oldest, SpoolRecovery.SequenceOf(file));
        if (oldest <= lowest) return;
        // The segments below `oldest` are gone from the listing; their unlinks must be durable before the journal that
        // says what became of their messages goes (the other order, cut by a crash, would send them again).
        var io = _options.JournalIo ?? SpoolIo.System;
        if (io.SyncDirectory(_spool.Directory) != 0) return;
        journal.DeleteUnneeded(oldest, _events.JournalFileDeleted);
    }
}
