// Group commit for the delivery journal (FORMAT.md "Delivery journal", "When durable"): the agent posts records
// with a completion and goes on; one thread appends everything posted meanwhile with one durable write
// (DeliveryJournal.Append: pwrite + fdatasync), then runs the completions. Under load many sessions' outcomes
// share one device round trip, as the spool's commits share theirs.
// Linger: an outcome has no client waiting for it (FORMAT.md "When durable": a Delivered only holds the message's
// space until it is durable), so a post may wait up to the linger (10 ms in the agent) for others to share its
// write. Without it the journal's writes went out as fast as they came: at 10 inbound sessions one journal
// fdatasync per 5 messages, beside the spool's one per 4, and the spool's group commit (the 250s' wait) took
// 0.77 ms instead of 0.45 on the same disk (perf/race-relay.sh). A post someone waits on (AppendAsync: an
// operator's command, a bounce before its original is released) goes out at once, with whatever lingers.
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
    private readonly long _lingerTicks;   // Stopwatch ticks; 0: every batch goes out as soon as the thread is free
    private long _oldestPostAt;           // Stopwatch timestamp of the oldest post waiting, under _gate
    private bool _urgent;                 // a waiting post someone waits on: no linger
    private bool _stopping;
    private long _appends;
    private long _recordsWritten;

    /// <param name="linger">How long a post may wait for others to share its durable write (zero: none).</param>
    public JournalWriter(EdgeMta.Spool.DeliveryJournal journal, TimeSpan linger = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(linger, TimeSpan.Zero);
        _journal = journal;
        _lingerTicks = (long)(linger.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        _thread = new Thread(Run) { IsBackground = true, Name = "edgemta-journal" };
        _thread.Start();
    }

    /// <summary>Durable writes made (one per batch that held records) and the records they carried: writes equal to
    /// records means no sharing.</summary>
    public long Appends => Interlocked.Read(ref _appends);
    public long Records => Interlocked.Read(ref _recordsWritten);

    /// <summary>Queues <paramref name="records"/>; <paramref name="done"/> runs on the journal thread with 0 once
    /// they are durable, or the errno of the failed write. The write may linger for later posts to share it.</summary>
    public void Post(ReadOnlySpan<EdgeMta.Spool.JournalRecord> records, Action<int> done) => Post(records, done, urgent: false);

    /// <summary>Posts and waits: for operator commands, bounces and tests, never on a socket thread. No linger: the
    /// write goes out as soon as the thread is free, carrying whatever lingers.</summary>
    public Task<int> AppendAsync(ReadOnlySpan<EdgeMta.Spool.JournalRecord> records)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(records, err => done.TrySetResult(err), urgent: true);
        return done.Task;
    }

    private void Post(ReadOnlySpan<EdgeMta.Spool.JournalRecord> records, Action<int> done, bool urgent)
    {
        lock (_gate)
        {
            if (!_stopping)
            {
                bool first = _waiting.Count == 0;
                if (first) _oldestPostAt = System.Diagnostics.Stopwatch.GetTimestamp();
                foreach (var r in records) _records.Add(r);
                _waiting.Add((records.Length, done));
                _urgent |= urgent;
                // A post behind others needs no wake-up: the thread is writing, or lingering for the first one's
                // deadline, and takes it along. Waking it per post cost a context switch per outcome.
                if (first || urgent) Monitor.Pulse(_gate);
                return;
            }
        }
        done(EIO);
    }

    // Under _gate, with posts waiting: how long they may still linger (zero: write now).
    private TimeSpan LingerLeftLocked()
    {
        if (_urgent || _stopping || _lingerTicks == 0) return TimeSpan.Zero;
        long left = _oldestPostAt + _lingerTicks - System.Diagnostics.Stopwatch.GetTimestamp();
        return left <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((double)left / System.Diagnostics.Stopwatch.Frequency);
    }

    private void Run()
    {
        while (true)
        {
            List<EdgeMta.Spool.JournalRecord> batch;
            List<(int Count, Action<int> Done)> waiting;
            lock (_gate)
            {
                while (true)
                {
                    if (_waiting.Count == 0)
                    {
                        if (_stopping) return;
                        Monitor.Wait(_gate);
                        continue;
                    }
                    TimeSpan left = LingerLeftLocked();
                    if (left <= TimeSpan.Zero) break;
                    // Whole milliseconds, rounded up: Monitor.Wait rounds a TimeSpan down, and a wait of 0 ms would spin
                    // the thread through the last fraction of the linger. An urgent post, or Dispose, ends it early.
                    Monitor.Wait(_gate, (int)Math.Ceiling(left.TotalMilliseconds));
                }
                batch = _records; waiting = _waiting;
                _records = _spareRecords; _waiting = _spareWaiting;
                _urgent = false;
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
