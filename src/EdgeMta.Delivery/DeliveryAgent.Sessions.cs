// Attempts and the connections that carry them. An attempt is one message's pending recipients tried over one
// session, in transactions of at most --relay-recipients (452 to some: those go again at once in a new
// transaction, once). Per hop the agent keeps a queue of loaded attempts ready to go and opens sessions only while
// there are more ready attempts than sessions still connecting, up to the scheduler's concurrency: under load a
// session carries attempt after attempt (connection reuse), idle it says QUIT.
using System.Net;
using System.Net.Sockets;
using EdgeMta.Spool;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    private readonly Dictionary<QueueEntry, LoadedMessage> _loaded = new();

    private sealed class HopBook(int index, RelaySessionOptions options)
    {
        public readonly int Index = index;
        public readonly RelaySessionOptions Options = options;
        public readonly string Name = options.Endpoint.ToString();
        public readonly Queue<Attempt> Ready = new();
        /// <summary>Sessions idle between transactions (IRelayWork.Park), the one parked last on top.</summary>
        public readonly List<HopSession> Parked = new();
        public int Sessions;
        /// <summary>Sessions that will ask for work soon: connecting, or woken from Parked.</summary>
        public int Connecting;
    }

    private sealed class Attempt(QueueEntry entry, int hop, LoadedMessage message)
    {
        public readonly QueueEntry Entry = entry;
        public readonly int Hop = hop;
        public readonly LoadedMessage Message = message;
        public readonly List<int> Todo = new();
        public readonly List<int> Finalized = new();
        public readonly List<(int Index, string Reply)> Deferred = new();
        public readonly List<int> Relayed = new();
        public readonly RelayTransaction Transaction = new();
        public int[] Map = [];
        public bool JournalFailed;
        public bool HopWorked;
    }

    private RelaySessionOptions SessionOptionsFor(RelayEndpoint endpoint)
    {
        return new RelaySessionOptions
        {
            Endpoint = endpoint,
            Hostname = _options.Hostname,
            Tls = _options.Tls,
            TrustAnchors = _options.TrustAnchors,
            MaxRecipients = _options.MaxRecipients,
            Clock = _options.Clock,
        };
    }

    /// <summary>Loads every due entry the scheduler gives and queues it on its hop.</summary>
    private void StartDue()
    {
        while (true)
        {
            QueueEntry entry;
            int hop;
            LoadedMessage? loaded;
            lock (_gate)
            {
                if (_stopping || !_scheduler.TryTake(out entry!, out hop)) return;
                _loaded.Remove(entry, out loaded);
            }
            loaded ??= Load(entry);
            lock (_gate)
            {
                if (loaded is null)
                {
                    // Unreadable now: keep it, try later (never dropped: the spool still holds it).
                    _scheduler.Finished(entry, hop, hopWorked: true);
                    continue;
                }
                var attempt = new Attempt(entry, hop, loaded);
                for (int i = 0; i < entry.Recipients.Length; i++)
                {
                    if (!entry.Recipients[i].IsFinal) attempt.Todo.Add(i);
                }
                if (attempt.Todo.Count == 0)
                {
                    loaded.Return();
                    _scheduler.Finished(entry, hop, hopWorked: true);
                    TryReleaseLocked(entry);
                    continue;
                }
                _hops[hop].Ready.Enqueue(attempt);
                EnsureSessionsLocked(_hops[hop]);
            }
        }
    }

    private LoadedMessage? Load(QueueEntry entry) => Read(entry.Segment, entry.Offset, entry.QueueId, out _);

    /// <summary>The record at a place, checked and parsed; null (with a line) when it does not read back, and then
    /// the caller keeps the message: the spool still holds it.</summary>
    private LoadedMessage? Read(long segment, long offset, string id, out long arrivalUnixMs)
    {
        if (!_spool!.TryReadRecord(segment, offset, System.Text.Encoding.ASCII.GetBytes(id), _buffers,
                out byte[]? buffer, out int envLength, out int dataLength, out arrivalUnixMs))
        {
            _events.Trouble($"delivery: record {id} at {segment:x16}+{offset} does not read back; kept in the spool");
            return null;
        }
        var m = LoadedMessage.Parse(buffer!, envLength, dataLength, _buffers);
        if (m is null) _buffers.Return(buffer!);
        return m;
    }

    private void EnsureSessionsLocked(HopBook hop)
    {
        // An idle connection first (no connect, greeting, EHLO and STARTTLS to pay again), then new ones.
        while (hop.Connecting < hop.Ready.Count && hop.Parked.Count > 0 && !_stopping)
        {
            var parked = hop.Parked[^1];
            hop.Parked.RemoveAt(hop.Parked.Count - 1);
            parked.WakeLocked(expired: false);
        }
        while (hop.Connecting < hop.Ready.Count && hop.Sessions < _options.Scheduler.Concurrency && !_stopping)
        {
            hop.Sessions++;
            hop.Connecting++;
            var session = new RelayClientSession(hop.Options, new HopSession(this, hop) { Asking = true });
            _transport!.Connect(EndPointOf(hop.Options.Endpoint), session, hop.Options.ConnectTimeout);
        }
    }

    private static EndPoint EndPointOf(RelayEndpoint e) => e.Kind == RelayKind.LmtpUnix
        ? new UnixDomainSocketEndPoint(e.Path)
        : e.Address is not null ? new IPEndPoint(e.Address, e.Port) : new DnsEndPoint(e.Host, e.Port);

    /// <summary>Fills the attempt's transaction with its next batch of recipients; false when none is left.</summary>
    private bool NextBatchLocked(Attempt a, out RelayTransaction tx)
    {
        tx = a.Transaction;
        int n = Math.Min(a.Todo.Count, _options.MaxRecipients);
        if (n == 0) return false;
        tx.Reset(n);
        tx.QueueId = a.Entry.QueueId;
        tx.ReversePath = a.Message.Slice(a.Message.ReversePath);
        tx.MailParameters = a.Message.Slice(a.Message.MailParameters);
        tx.Data = a.Message.Data;
        if (a.Map.Length < n) a.Map = new int[Math.Max(n, 8)];
        for (int i = 0; i < n; i++)
        {
            int r = a.Todo[i];
            a.Map[i] = r;
            tx.Recipients.Add(a.Message.Slice(a.Message.Paths[r]));
            tx.RecipientParameters.Add(a.Message.Slice(a.Message.Parameters[r]));
        }
        a.Todo.RemoveRange(0, n);
        tx.Tag = a;
        return true;
    }

    /// <summary>The agent's side of one connection.</summary>
    private sealed class HopSession(DeliveryAgent agent, HopBook hop) : IRelayWork
    {
        private Attempt? _current;
        private bool _greeted;
        private bool _expired;
        private RelayClientSession? _session;

        /// <summary>Counted in the hop's Connecting: it will call TryNext soon.</summary>
        public bool Asking { get; set; }
        public long ParkedAtMs { get; private set; }

        public bool TryNext(out RelayTransaction transaction)
        {
            transaction = null!;
            lock (agent._gate)
            {
                if (Asking)
                {
                    Asking = false;
                    hop.Connecting--;
                }
                if (!_greeted)
                {
                    _greeted = true;
                    if (agent._scheduler.MarkAlive(hop.Index)) agent._events.RelayAlive(hop.Name);
                }
                if (_current is not null)
                {
                    if (agent.NextBatchLocked(_current, out transaction)) return true;
                    agent.EndAttemptLocked(_current);
                    _current = null;
                }
                if (agent._stopping || !hop.Ready.TryDequeue(out var next)) return false;
                _expired = false;
                _current = next;
                next.HopWorked = true;
                return agent.NextBatchLocked(next, out transaction);
            }
        }

        public bool Park(RelayClientSession session)
        {
            lock (agent._gate)
            {
                if (agent._stopping || _expired) return false;
                _session = session;
                ParkedAtMs = agent.NowMs;
                hop.Parked.Add(this);
                agent._wake = true;   // the pump's timer learns of the idle limit
                Monitor.Pulse(agent._gate);
                return true;
            }
        }

        /// <summary>Under the agent's lock: the session asks for work again, or (expired) says QUIT. Resume runs
        /// the session's callbacks, which take the lock: it is queued, never called here.</summary>
        public void WakeLocked(bool expired)
        {
            _expired = expired;
            if (!expired)
            {
                Asking = true;
                hop.Connecting++;
            }
            var session = _session!;
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Wake(), session, preferLocal: false);
        }

        public void Completed(RelayTransaction transaction)
        {
            lock (agent._gate) agent.CompletedLocked((Attempt)transaction.Tag!, transaction, hop);
        }

        public void Ended(SessionEnd end, string reason)
        {
            lock (agent._gate)
            {
                hop.Sessions--;
                if (Asking) hop.Connecting--;
                hop.Parked.Remove(this);
                if (_current is not null)
                {
                    agent.EndAttemptLocked(_current);
                    _current = null;
                }
                if (end == SessionEnd.Loop)
                {
                    while (hop.Ready.TryDequeue(out var a)) agent.FailAllLocked(a, 554, new EnhancedStatusCode(5, 4, 6), "5.4.6 mail loops back to myself: " + reason);
                    return;
                }
                bool hopFailed = !_greeted && end is SessionEnd.ConnectFailed or SessionEnd.Refused or SessionEnd.TlsFailed;
                if (hopFailed && agent._scheduler.MarkDead(hop.Index)) agent._events.RelayDead(hop.Name, reason);
                if (hop.Ready.Count == 0) return;
                if (hopFailed && hop.Sessions == 0)
                {
                    // Nothing will take them from a dead hop: back to the scheduler, waiting on the hop, not on
                    // their own backoff (docs/DELIVERY.md: one probe per interval, not a retry per message).
                    while (hop.Ready.TryDequeue(out var a)) agent.DeferForHopLocked(a, reason);
                    agent._wake = true;
                    Monitor.Pulse(agent._gate);
                    return;
                }
                if (!hopFailed) agent.EnsureSessionsLocked(hop);
            }
        }
    }
}

