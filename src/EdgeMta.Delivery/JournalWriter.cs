// Group commit for the delivery journal (FORMAT.md "Delivery journal", "When durable"): the agent posts records
// with a completion and goes on; one thread appends everything posted meanwhile with one durable write
// (DeliveryJournal.Append: pwrite + fdatasync), then runs the completions. Under load many sessions' outcomes
// share one device round trip, as the spool's commits share theirs.
// What it does not do: decide what must wait for durability. The agent chooses: a Delivered's completion
// releases the message, a Deferred's completion does nothing.
// How it fails: a failed append completes every record of its batch with the errno (none is assumed durable;
// the agent re-sends rather than assume done). Posting after Stop completes at once with EIO-like 5 (EIO).
namespace EdgeMta.Delivery;

/// <summary>Appends journal records on one background thread, a batch per durable write.</summary>
public sealed class JournalWriter : IDisposable
{
    private const int EIO = 5;

    private readonly EdgeMta.Spool.DeliveryJournal _journal;
    private readonly object _gate = new();   // Monitor: Wait and Pulse
    private readonly Thread _thread;
    private List<EdgeMta.Spool.JournalRecord> _records = new();
    private List<(int Count, Action<int> Done)> _waiting = new();
    private List<EdgeMta.Spool.JournalRecord> _spareRecords = new();
    private List<(int Count, Action<int> Done)> _spareWaiting = new();
    private bool _stopping;
    private long _appends;
    private long _recordsWritten;

    public JournalWriter(EdgeMta.Spool.DeliveryJournal journal)
    {
        _journal = journal;
        _thread = new Thread(Run) { IsBackground = true, Name = "edgemta-journal" };
        _thread.Start();
    }

    /// <summary>Durable writes made (one per batch that held records) and the records they carried: writes equal to
    /// records means no sharing.</summary>
    public long Appends => Interlocked.Read(ref _appends);
    public long Records => Interlocked.Read(ref _recordsWritten);

    /// <summary>Queues <paramref name="records"/>; <paramref name="done"/> runs on the journal thread with 0 once
    /// they are durable, or the errno of the failed write.</summary>
    public void Post(ReadOnlySpan<EdgeMta.Spool.JournalRecord> records, Action<int> done)
    {
        lock (_gate)
        {
            if (!_stopping)
            {
                foreach (var r in records) _records.Add(r);
                _waiting.Add((records.Length, done));
                Monitor.Pulse(_gate);
                return;
            }
        }
        done(EIO);
    }

    /// <summary>Posts and waits: for operator commands and tests, never on a socket thread.</summary>
    public Task<int> AppendAsync(ReadOnlySpan<EdgeMta.Spool.JournalRecord> records)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(records, err => done.TrySetResult(err));
        return done.Task;
    }

    private void Run()
    {
        while (true)
        {
            List<EdgeMta.Spool.JournalRecord> batch;
            List<(int Count, Action<int> Done)> waiting;
            lock (_gate)
            {
                while (_waiting.Count == 0 && !_stopping) Monitor.Wait(_gate);
                if (_waiting.Count == 0) return;
                batch = _records; waiting = _waiting;
                _records = _spareRecords; _waiting = _spareWaiting;
            }
            int err;
            try
            {
                err = _journal.Append(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batch));
            }
            catch (ObjectDisposedException)
            {
                err = EIO;
            }
            if (err == 0 && batch.Count > 0)
            {
                Interlocked.Increment(ref _appends);
                Interlocked.Add(ref _recordsWritten, batch.Count);
            }
            foreach (var (_, done) in waiting) done(err);
            batch.Clear(); waiting.Clear();
            lock (_gate) { _spareRecords = batch; _spareWaiting = waiting; }
        }
    }

    /// <summary>Writes what is queued, then stops the thread and closes the journal.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _thread.Join();
        _journal.Dispose();
    }
}
