// Run-time retention of the delivery journal (FORMAT.md "Delivery journal", "Retention"): a journal file is only
// ever needed for messages whose spool segment is still there (at start a record naming a place that is not in
// the spool folds to nothing), so a file this process closed may be deleted once every segment any of its
// records names (a message's segment; for Moved both the old and the new place's) is deleted, durably. Segment
// sequences only grow, so per file the highest sequence its records name (MaxSegment) is enough: the file goes
// when the oldest segment still in the spool is above it. Without this the journal grows by about 192 bytes a
// message until the next start.
// What it does not do: delete the file being written, or a file from before this process (its records were
// never seen here; the next start's compaction takes it), or decide which segments are still in the spool (the
// caller lists the spool's segment files, after the directory fsync that made their deletion durable). Copy-forward
// keeps its message's earlier state alive by restating it at the new place (DeliveryAgent.CopyForward.cs): records
// naming only the old place are then needed by nothing.
// How it fails: an unlink or a directory fsync that fails stops the pass; the file is kept (tracked again) and
// the next pass tries again; a file kept is never wrong, only space (the next start compacts it).
namespace EdgeMta.Spool;

public sealed partial class DeliveryJournal
{
    // Files this process let go that hold records, oldest first, with the highest segment sequence they name.
    private readonly List<(long Sequence, long MaxSegment)> _closed = new();
    private long _fileMaxSegment;
    private long _filesClosed;
    private long _filesDeleted;

    /// <summary>Journal files this process filled and let go (a roll), and those it deleted since (retention).</summary>
    public long FilesClosed => Interlocked.Read(ref _filesClosed);
    public long FilesDeleted => Interlocked.Read(ref _filesDeleted);

    /// <summary>Journal files on disk that this process knows the segments of (closed, not yet deleted).</summary>
    public int FilesRetained { get { lock (_gate) return _closed.Count; } }

    /// <summary>The lowest highest-named-segment among the closed files kept (long.MaxValue when none is): no file can
    /// go before the oldest segment in the spool is above it, so a caller need not look at the spool before then.</summary>
    public long LowestRetainedMaxSegment
    {
        get
        {
            lock (_gate)
            {
                long lowest = long.MaxValue;
                foreach (var f in _closed) lowest = Math.Min(lowest, f.MaxSegment);
                return lowest;
            }
        }
    }

    // Under _gate, for each record placed in the current file.
    private void NoteSegmentsLocked(in JournalRecord r)
    {
        long max = r.Segment;
        if (r.Type == JournalRecordType.Moved) max = Math.Max(max, r.MovedToSegment);
        if (max > _fileMaxSegment) _fileMaxSegment = max;
    }

    // Under _gate, as the current file is let go.
    private void ClosedLocked(long sequence, bool hasRecords)
    {
        if (hasRecords)
        {
            _closed.Add((sequence, _fileMaxSegment));
            Interlocked.Increment(ref _filesClosed);
        }
        _fileMaxSegment = 0;
    }

    /// <summary>Deletes, oldest first, each closed file whose records name only segments below
    /// <paramref name="oldestSegment"/> (the lowest sequence still in the spool; long.MaxValue when none is): each
    /// unlink made durable (directory fsync) before the next. <paramref name="deleted"/> hears each file's sequence
    /// and highest named segment. Returns how many went. Blocking: never on a socket thread.</summary>
    public int DeleteUnneeded(long oldestSegment, Action<long, long>? deleted = null)
    {
        List<(long Sequence, long MaxSegment)> going;
        lock (_gate)
        {
            going = new List<(long, long)>();
            for (int i = 0; i < _closed.Count; i++)
            {
                if (_closed[i].MaxSegment < oldestSegment) going.Add(_closed[i]);
            }
            if (going.Count == 0) return 0;
            _closed.RemoveAll(f => f.MaxSegment < oldestSegment);
        }
        int n = 0;
        for (int i = 0; i < going.Count; i++)
        {
            string path = Path.Combine(_directory, $"{going[i].Sequence:x16}.jnl");
            _io.Delete(path);
            if (File.Exists(path) || _io.SyncDirectory(_directory) != 0)
            {
                // Kept: tracked again, tried again by the next pass.
                lock (_gate)
                {
                    for (int j = i; j < going.Count; j++) _closed.Add(going[j]);
                    _closed.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
                }
                break;
            }
            n++;
            Interlocked.Increment(ref _filesDeleted);
            deleted?.Invoke(going[i].Sequence, going[i].MaxSegment);
        }
        return n;
    }
}
