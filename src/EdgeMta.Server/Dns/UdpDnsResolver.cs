// Contract: a stub resolver (RFC 1123 §6.1.3.1) for the blocklists' A questions: one UDP socket per address
// family, every question sent to the configured recursive servers, the answers matched to their questions by
// id and question, each question ended by its answer or by the deadline (--dns-timeout).
//
// Why hand-written rather than DnsClient 1.8.0 (which publishes AOT-clean): the blocklists need one question
// type and one transport, and DnsClient opens a UDP socket per query and reports trouble by exception; here
// 10,000 connections waiting on a silent server are 10,000 small table entries on one socket (the idle-memory
// budget of docs/SCREENING.md), and every failure is a value (IDnsResolver.cs).
//
// Sending: a question goes to the first server at once, then again to the next (round robin) at each
// retransmit interval, the deadline divided into (servers + 1) attempts, at most 4, as res_send(3) walks its
// nameserver list. Ids: random 16-bit (RFC 5452 §9.2), unique among the questions in flight; source port from
// the kernel's ephemeral range. An answer is taken only from a configured server's address, with the id and the
// question of one in flight (anything else is counted as stray and dropped, so a wrong id or a stray packet
// leaves the question waiting for the real answer or the deadline).
// Bounded: at most MaxInFlight questions; one more answers NotSent at once. One 512-octet receive buffer per
// socket (RFC 1035 §4.2.1: a UDP answer without EDNS is at most 512 octets).
// Threads: Query sends with a non-blocking sendto and returns; answers are delivered from the receive loop (an
// async socket receive, no thread held while waiting) and deadlines from one TimeProvider timer armed for the
// earliest: a timer per question cost about 110 bytes each, a tenth of a screened connection's budget when
// 10,000 wait on a silent server (docs/SCREENING.md, perf/dnsbl-idle.sh). Answered questions leave the deadline
// queue lazily, when their time comes (at most one retransmit interval later).
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Server.Dns;

public sealed class UdpDnsResolver : IDnsResolver, IDisposable
{
    /// <summary>Questions in flight at most: a quarter of the id space, so a random id is free at the first or
    /// second try.</summary>
    public const int MaxInFlight = 16_384;

    private readonly IPEndPoint[] _servers;
    private readonly SocketAddress[] _serverAddresses;
    private readonly Socket? _v4;
    private readonly Socket? _v6;
    private readonly TimeSpan _timeout;
    private readonly TimeSpan _interval;
    private readonly int _attempts;
    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private readonly Dictionary<ushort, Question> _inFlight = [];
    private readonly PriorityQueue<Question, long> _deadlines = new();   // by Question.Due, answered ones included
    private readonly ITimer _sweep;
    private long _armedFor = long.MaxValue;   // the timestamp _sweep fires at; under _gate
    private long _stray;
    private volatile bool _disposed;

    public UdpDnsResolver(IReadOnlyList<IPEndPoint> servers, TimeSpan timeout, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(servers);
        if (servers.Count == 0) throw new ArgumentException("at least one server", nameof(servers));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        _servers = [.. servers];
        _serverAddresses = [.. _servers.Select(s => s.Serialize())];
        _timeout = timeout;
        _attempts = Math.Min(_servers.Length + 1, 4);
        _interval = timeout / _attempts;
        _clock = clock ?? TimeProvider.System;
        _sweep = _clock.CreateTimer(static r => ((UdpDnsResolver)r!).OnDeadlines(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (_servers.Any(s => s.AddressFamily == AddressFamily.InterNetwork)) _v4 = Open(AddressFamily.InterNetwork);
        if (_servers.Any(s => s.AddressFamily == AddressFamily.InterNetworkV6)) _v6 = Open(AddressFamily.InterNetworkV6);
    }

    /// <summary>The servers asked, in order.</summary>
    public IReadOnlyList<IPEndPoint> Servers => _servers;

    /// <summary>Questions waiting for an answer now.</summary>
    public int InFlight
    {
        get
        {
            lock (_gate) return _inFlight.Count;
        }
    }

    /// <summary>Packets dropped because they answered nothing in flight (wrong id, question or server).</summary>
    public long Stray => Interlocked.Read(ref _stray);

    public void Query(string name, IDnsAnswerSink sink, int token)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(sink);
        Question? question = null;
        lock (_gate)
        {
            if (!_disposed && _inFlight.Count < MaxInFlight)
            {
                ushort id;
                do id = (ushort)Random.Shared.Next(65536); while (_inFlight.ContainsKey(id));
                byte[]? packet = DnsMessage.Query(id, name);
                if (packet is not null)
                {
                    question = new Question(id, packet, sink, token) { Due = _clock.GetTimestamp() + Ticks(_interval) };
                    _inFlight.Add(id, question);
                    _deadlines.Enqueue(question, question.Due);
                    ArmLocked(question.Due);
                }
            }
        }
        if (question is null)
        {
            sink.OnAnswer(token, DnsAnswer.Failed(DnsResult.NotSent));
            return;
        }
        Send(question, 0);
    }

    public void Dispose()
    {
        _disposed = true;
        _sweep.Dispose();
        _v4?.Dispose();
        _v6?.Dispose();
        Question[] pending;
        lock (_gate)
        {
            pending = [.. _inFlight.Values];
            _inFlight.Clear();
            _deadlines.Clear();
        }
        foreach (Question q in pending) q.Finish(DnsAnswer.Failed(DnsResult.Timeout));
    }

    private Socket Open(AddressFamily family)
    {
        var socket = new Socket(family, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        socket.Bind(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0));
        _ = ReceiveLoop(socket, family);
        return socket;
    }

    private void Send(Question question, int attempt)
    {
        IPEndPoint server = _servers[attempt % _servers.Length];
        Socket? socket = server.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
        try
        {
            socket?.SendTo(question.Packet, server);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // A full socket buffer (EAGAIN) or an unreachable network: the retransmit or the deadline follows.
        }
    }

    private async Task ReceiveLoop(Socket socket, AddressFamily family)
    {
        await Task.Yield(); // off the constructor's thread
        var buffer = new byte[512];
        var from = new SocketAddress(family);
        while (!_disposed)
        {
            int received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, from).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // ICMP port unreachable reported on the socket (ECONNREFUSED), or a truncated datagram
            }
            OnPacket(buffer.AsSpan(0, received), from);
        }
    }

    private void OnPacket(ReadOnlySpan<byte> packet, SocketAddress from)
    {
        int id = DnsMessage.IdOf(packet);
        Question? question = null;
        if (id >= 0 && FromServer(from))
        {
            lock (_gate)
            {
                if (_inFlight.TryGetValue((ushort)id, out question) && DnsMessage.Matches(question.Packet, packet) == DnsMessage.Match.Ours)
                {
                    _inFlight.Remove((ushort)id);
                }
                else
                {
                    question = null;
                }
            }
        }
        if (question is null)
        {
            Interlocked.Increment(ref _stray);
            return;
        }
        question.Finish(DnsMessage.Read(packet, question.Packet.Length - DnsMessage.HeaderLength));
    }

    private bool FromServer(SocketAddress from)
    {
        foreach (SocketAddress server in _serverAddresses)
        {
            if (server.Equals(from)) return true;
        }
        return false;
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _clock.TimestampFrequency);

    // Under _gate: the sweep fires by `due` at the latest. Changed under the lock so two arms never land out of order
    // (a timer's callback never runs under the timer's own lock, so this cannot deadlock with OnDeadlines).
    private void ArmLocked(long due)
    {
        if (due >= _armedFor || _disposed) return;
        _armedFor = due;
        long wait = Math.Max(0, due - _clock.GetTimestamp());
        _sweep.Change(TimeSpan.FromSeconds((double)wait / _clock.TimestampFrequency), Timeout.InfiniteTimeSpan);
    }

    // The sweep: every question whose time has come is sent again, or given up at its last attempt. Each one's next
    // time counts from its own due time, not the sweep's, so a question ends at --dns-timeout exactly.
    private void OnDeadlines()
    {
        List<(Question Question, int Attempt)>? resend = null;
        List<Question>? expired = null;
        lock (_gate)
        {
            long now = _clock.GetTimestamp();
            _armedFor = long.MaxValue;
            while (_deadlines.TryPeek(out Question? question, out long due))
            {
                if (due > now)
                {
                    ArmLocked(due);
                    break;
                }
                _deadlines.Dequeue();
                if (!_inFlight.TryGetValue(question.Id, out Question? current) || current != question) continue; // answered
                int attempt = ++question.Attempt;
                if (attempt == _attempts)
                {
                    _inFlight.Remove(question.Id);
                    (expired ??= []).Add(question);
                    continue;
                }
                // The last interval takes what is left of the deadline.
                TimeSpan next = attempt + 1 == _attempts ? _timeout - _interval * attempt : _interval;
                question.Due = due + Ticks(next);
                _deadlines.Enqueue(question, question.Due);
                (resend ??= []).Add((question, attempt));
            }
        }
        if (expired is not null)
        {
            foreach (Question q in expired) q.Finish(DnsAnswer.Failed(DnsResult.Timeout));
        }
        if (resend is not null)
        {
            foreach ((Question q, int attempt) in resend) Send(q, attempt);
        }
    }

    private sealed class Question(ushort id, byte[] packet, IDnsAnswerSink sink, int token)
    {
        private int _finished;

        public ushort Id { get; } = id;
        public byte[] Packet { get; } = packet;
        /// <summary>Sends so far minus one; changed under the resolver's lock only.</summary>
        public int Attempt { get; set; }
        /// <summary>The clock's timestamp of its next retransmit or its deadline; under the resolver's lock.</summary>
        public long Due { get; set; }

        // Once: the answer, the deadline and Dispose can race; the first one wins.
        public void Finish(DnsAnswer answer)
        {
            if (Interlocked.Exchange(ref _finished, 1) != 0) return;
            sink.OnAnswer(token, answer);
        }
    }
}
