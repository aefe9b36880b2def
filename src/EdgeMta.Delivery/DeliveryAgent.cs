// The delivery agent: what turns edgemta into a store-and-forward MTA (docs/DELIVERY.md). It learns of every
// commit from the spool (ISpoolObserver, no polling), keeps a compact index of live messages (QueueEntry), asks
// the scheduler what is due, hands messages to relay client sessions on the transport's pooled sockets, journals
// each outcome through the group-committing JournalWriter, composes and spools bounces, and releases what is done.
//
// Threading: one lock (_gate) guards the index, the scheduler and the per-hop session books; it is held only for
// memory work. Blocking work (reading a record with pread, composing a bounce) runs on the agent's own thread
// ("pump"), woken by commits, completions and a timer on the injected clock. Session callbacks come on transport
// threads and only take the lock. Journal completions come on the journal thread.
//
// Durability order (FORMAT.md "When durable"): an attempt is finished (the scheduler told, the message perhaps
// released) only in the completion of the journal records of its last transaction, so nothing is let go that the
// journal does not hold. A failed journal write turns the attempt's final outcomes back into deferrals: the
// message is sent again (a possible duplicate, logged), never assumed done.
// What it does not do: parse SMTP (RelayClientSession), choose times (DeliveryScheduler), format queue output
// (QueueFormatter).
using System.Buffers;
using EdgeMta.Spool;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent : ISpoolObserver, IDisposable
{
    private readonly DeliveryOptions _options;
    private readonly IDeliveryEvents _events;
    private readonly TimeProvider _clock;
    private readonly object _gate = new();
    private readonly DeliveryScheduler _scheduler;
    private readonly Dictionary<string, QueueEntry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<long, int> _liveBySegment = new();
    private readonly HashSet<long> _emptySegments = new();
    private readonly Queue<Commit> _commits = new();
    /// <summary>Commits queued with a copy of their payload, at most <see cref="MaxLoaded"/>: beyond that (the pump
    /// behind) a commit is queued by place only and read back when taken, so the copies stay bounded.</summary>
    private int _copiedCommits;
    private readonly List<Recovered> _recovered = new();
    private readonly HopBook[] _hops;
    private readonly ArrayPool<byte> _buffers = ArrayPool<byte>.Shared;
    /// <summary>New messages kept in memory for their first attempt, at most.</summary>
    private const int MaxLoaded = 256;
    private Thread? _pump;
    private ITimer? _timer;
    private MessageSpool? _spool;
    private TransportServer? _transport;
    private JournalWriter? _journal;
    private bool _wake;
    private bool _stopping;
    private bool _disposed;

    public DeliveryAgent(DeliveryOptions options, IDeliveryEvents events)
    {
        ArgumentOutOfRangeException.ThrowIfZero(options.Relays.Count);
        _options = options;
        _events = events;
        _clock = options.Clock;
        _scheduler = new DeliveryScheduler(options.Scheduler with { Hops = options.Relays.Count }, _clock);
        _hops = new HopBook[options.Relays.Count];
        for (int i = 0; i < _hops.Length; i++) _hops[i] = new HopBook(i, SessionOptionsFor(options.Relays[i]));
        _composer = new BounceComposer(options.Hostname, _clock, NextMessageId);
    }

    /// <summary>Live messages in the index.</summary>
    public int Count { get { lock (_gate) return _entries.Count; } }

    /// <summary>Durable journal writes and the records they carried: records ÷ writes is how many outcomes share
    /// one device round trip (the group commit).</summary>
    public long JournalWrites => _journal?.Appends ?? 0;
    public long JournalRecords => _journal?.Records ?? 0;

    /// <summary>Attempts running now (a test waits for 0 before it moves a fake clock: a probe's interval is timed
    /// from the end of the last one).</summary>
    internal int InFlight { get { lock (_gate) return _scheduler.InFlight; } }

    /// <summary>Give this to MessageSpool.Open: it records what recovery keeps, for <see cref="Start"/>.</summary>
    public void OnRecovered(in SpoolRecord record)
    {
        var envelope = record.Envelope;
        _recovered.Add(new Recovered(SpoolRecovery.SequenceOf(record.Segment), record.Offset, record.QueueIdString,
            record.ArrivalUnixMs, record.Data.Length, envelope.RecipientCount, envelope.ReversePath.IsEmpty));
    }

    /// <summary>Folds the journal over what recovery found, compacts the journal, and starts delivering.
    /// Call after MessageSpool.Open (with <see cref="OnRecovered"/>) and once the transport has started.</summary>
    public void Start(MessageSpool spool, TransportServer transport)
    {
        _spool = spool;
        _transport = transport;
        var journal = Recover(spool.Directory);
        _journalFile = journal;
        _journal = new JournalWriter(journal, _options.JournalLinger);
        _timer = _clock.CreateTimer(_ => Wake(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _pump = new Thread(Pump) { IsBackground = true, Name = "edgemta-delivery" };
        _pump.Start();
        Wake();
    }

    /// <summary>ISpoolObserver: on a spool writer; only queues the place and wakes the pump.</summary>
    public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId)
        => Enqueue(new Commit(segment, offset, System.Text.Encoding.ASCII.GetString(queueId), null, 0, 0, 0));

    /// <summary>ISpoolObserver, with the payload at hand: a copy of it is queued too, so the pump need not read the
    /// record back. That read was a device round trip per message or two (the commit's write was direct, so nothing
    /// of it is in the page cache), on the disk where the next commits wait for their sync, and the direct writes
    /// of later commits then had the cached pages to drop. A copy costs a memcpy of the message on the writer.</summary>
    public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId, ReadOnlySpan<byte> payload, int envelopeLength, long arrivalUnixMs)
    {
        string id = System.Text.Encoding.ASCII.GetString(queueId);
        byte[]? copy = null;
        if (Interlocked.Increment(ref _copiedCommits) <= MaxLoaded)
        {
            copy = _buffers.Rent(payload.Length);
            payload.CopyTo(copy);
        }
        else
        {
            Interlocked.Decrement(ref _copiedCommits);
        }
        Enqueue(new Commit(segment, offset, id, copy, envelopeLength, payload.Length - envelopeLength, arrivalUnixMs));
    }

    private void Enqueue(in Commit c)
    {
        lock (_gate)
        {
            if (!TakeCopyPlaceLocked(c.Segment, c.Offset, c.Id))   // copy-forward's own commit, not new mail
            {
                _commits.Enqueue(c);
                _liveBySegment[c.Segment] = _liveBySegment.GetValueOrDefault(c.Segment) + 1;
                _wake = true;
                Monitor.Pulse(_gate);
                return;
            }
        }
        ReturnCopy(c);
    }

    private void ReturnCopy(in Commit c)
    {
        if (c.Payload is null) return;
        Interlocked.Decrement(ref _copiedCommits);
        _buffers.Return(c.Payload);
    }

    private void Wake()
    {
        lock (_gate)
        {
            _wake = true;
            Monitor.Pulse(_gate);
        }
    }

    private void Pump()
    {
        while (true)
        {
            lock (_gate)
            {
                while (!_wake && !_stopping) Monitor.Wait(_gate);
                if (_stopping) return;
                _wake = false;
            }
            try
            {
                PumpOnce();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException)
            {
                _events.Trouble("delivery: " + e.Message);
            }
        }
    }

    /// <summary>One round of the agent's own work, on the pump thread.</summary>
    private void PumpOnce()
    {
        TakeCommits();
        bool blocked = JournalBlocked(out TimeSpan? probeIn);
        if (!blocked)
        {
            ExpireDue();
            StartDue();
            ComposeBounces();
            SendDelayNotices();
            SendRelayedNotices();
            CopyForward();
        }
        DeleteEmptySegments();
        RetainJournal();
        lock (_gate)
        {
            // While the journal is failing only its probe is due; nothing else starts.
            long computedAt = NowMs;
            TimeSpan? next = blocked ? probeIn : _scheduler.UntilNextDue();
            if (EndIdleLocked() is { } idle) next = Min(next, idle);
            if (!blocked && UntilCopyCheckLocked() is { } copy) next = Min(next, copy);
            if (_bounceRetryAt != 0) next = Min(next, TimeSpan.FromMilliseconds(Math.Max(0, _bounceRetryAt - NowMs)));
            _timer?.Change(next ?? Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            // The timer counts from when it is set: if the clock moved since the wait was computed (a step, or a test's
            // fake clock advanced meanwhile), the wait is late by that much; one more round computes it afresh.
            if (NowMs != computedAt) _wake = true;
        }
    }

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;

    private long NowMs => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    private void TakeCommits()
    {
        while (true)
        {
            Commit c;
            lock (_gate)
            {
                if (!_commits.TryDequeue(out c)) return;
            }
            long arrival = c.ArrivalUnixMs;
            LoadedMessage? loaded = null;
            if (c.Payload is not null)
            {
                // The buffer becomes the loaded message's (returned to the pool with it); only the count of copies
                // waiting in the queue goes down here.
                Interlocked.Decrement(ref _copiedCommits);
                loaded = LoadedMessage.Parse(c.Payload, c.EnvelopeLength, c.DataLength, _buffers);
                if (loaded is null) _buffers.Return(c.Payload);
            }
            loaded ??= Read(c.Segment, c.Offset, c.Id, out arrival);
            if (loaded is null) continue;   // left in the spool, with a line: never dropped
            var entry = new QueueEntry(c.Id, c.Segment, c.Offset, arrival, loaded.DataLength, loaded.RecipientCount, loaded.NullSender);
            lock (_gate)
            {
                _entries[c.Id] = entry;
                // Kept for its first attempt, which usually follows at once; not while a backlog builds (a dead hop
                // and 100,000 arrivals must not hold 100,000 messages in memory): then it is read again when due.
                if (_loaded.Count < MaxLoaded) _loaded[entry] = loaded;
                else loaded.Return();
                _scheduler.AddIncoming(entry);
            }
        }
    }

    /// <summary>Stops delivering: no new attempt starts; sessions in flight are the transport's to stop (SIGTERM:
    /// they finish or abandon before the final dot). Then the journal writes what is queued and closes.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_pump is null || _disposed) return;
            _disposed = true;
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _pump?.Join();
        _timer?.Dispose();
        _journal?.Dispose();
        lock (_gate)
        {
            foreach (var loaded in _loaded.Values) loaded.Return();
            _loaded.Clear();
            while (_commits.TryDequeue(out var c)) ReturnCopy(c);
        }
    }

    /// <summary>A commit the spool told of: its place, and a copy of its payload when it came with one.</summary>
    private readonly record struct Commit(long Segment, long Offset, string Id, byte[]? Payload, int EnvelopeLength, int DataLength, long ArrivalUnixMs);

    private readonly record struct Recovered(long Segment, long Offset, string Id, long ArrivalMs, long Size, int Recipients, bool NullSender);
}
