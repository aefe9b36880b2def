// A delivery agent with everything real but the clock: a spool in a temp directory, the transport's outbound
// sockets, relay sessions, the scheduler on a FakeClock, and a TestHop as the next hop. Restart() stops it all
// the way the server does and opens the same directory again.
using System.Collections.Concurrent;
using System.Text;
using EdgeMta.Spool;
using EdgeMta.TestKit;
using EdgeMta.Transport;

namespace EdgeMta.Delivery.Tests;

internal sealed class RecordingEvents : IDeliveryEvents
{
    public readonly ConcurrentQueue<string> Lines = new();
    public int Count(string prefix) => Lines.Count(l => l.StartsWith(prefix, StringComparison.Ordinal));
    public void Delivered(string id, string recipient, string relay, string reply, double delaySeconds, int attempts) => Lines.Enqueue($"delivered id={id} rcpt={recipient} attempts={attempts}");
    public void Deferred(string id, string recipient, string relay, string reply, double nextSeconds) => Lines.Enqueue($"deferred id={id} rcpt={recipient} reply={reply} next={nextSeconds:0}");
    public void Failed(string id, string recipient, string reply) => Lines.Enqueue($"failed id={id} rcpt={recipient} reply={reply}");
    public void Bounce(string bounceId, string forId, string to) => Lines.Enqueue($"bounce id={bounceId} for={forId} to={to}");
    public void PossibleDuplicate(string id, string relay, string reason) => Lines.Enqueue($"possible-duplicate id={id} reason={reason}");
    public void RelayDead(string relay, string reason) => Lines.Enqueue($"relay-dead relay={relay} reason={reason}");
    public void RelayAlive(string relay) => Lines.Enqueue($"relay-alive relay={relay}");
    public void SegmentCompacted(long sequence, int messages, long bytes) => Lines.Enqueue($"segment-compacted seq={sequence:x16} messages={messages} bytes={bytes}");
    public void JournalFileDeleted(long sequence, long maxSegment) => Lines.Enqueue($"journal-deleted seq={sequence:x16} max-segment={maxSegment:x16}");
    public void Trouble(string what) => Lines.Enqueue($"trouble {what}");
}

/// <summary>Transport faults become lines of the events, so a test that fails shows why.</summary>
internal sealed class TransportFaults(RecordingEvents events) : ITransportLog
{
    public void HandlerFaulted(long connectionId, Exception exception) => events.Trouble($"handler fault: {exception}");
    public void AcceptBackingOff(System.Net.Sockets.SocketError error, TimeSpan delay) { }
    public void ListenerStopped(string endPoint, System.Net.Sockets.SocketError error) { }
    public void InternalError(Exception exception) => events.Trouble($"transport fault: {exception}");
}

internal sealed class NoInbound : IConnectionHandlerFactory
{
    public IConnectionHandler Create() => throw new InvalidOperationException("no inbound connections here");
    public void Return(IConnectionHandler handler) { }
    public void WriteRejection(ConnectionInfo info, ConnectionRejection reason, System.Buffers.IBufferWriter<byte> output) { }
}

internal sealed class AgentRig : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgemta-agent-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly Func<DeliveryOptions, DeliveryOptions>? _adjust;

    public AgentRig(TestHop hop, Func<DeliveryOptions, DeliveryOptions>? adjust = null, long segmentSize = 1 << 20)
    {
        Hop = hop;
        _adjust = adjust;
        SegmentSize = segmentSize;
        System.IO.Directory.CreateDirectory(_dir);
        Open();
    }

    public TestHop Hop { get; }
    public long SegmentSize { get; }
    public FakeClock Clock { get; } = new(DateTimeOffset.UtcNow);
    public RecordingEvents Events { get; private set; } = new();
    public DeliveryAgent Agent { get; private set; } = null!;
    public MessageSpool Spool { get; private set; } = null!;
    public TransportServer Transport { get; private set; } = null!;
    public string Directory => _dir;

    private void Open()
    {
        RelayEndpoint.TryParse(Hop.Url, out var endpoint, out _);
        var options = new DeliveryOptions
        {
            Relays = [endpoint!],
            Hostname = "edge.example",
            Tls = RelayTlsMode.None,
            Clock = Clock,
            Scheduler = new SchedulerOptions { RetryMin = TimeSpan.FromSeconds(60), RetryMax = TimeSpan.FromSeconds(600) },
        };
        options = _adjust?.Invoke(options) ?? options;
        Events = new RecordingEvents();
        Agent = new DeliveryAgent(options, Events);
        Spool = MessageSpool.Open(new SpoolOptions { Directory = _dir, SegmentSize = SegmentSize, MaxMessageSize = 4 << 20, MinimumFreeBytes = 0, Observer = Agent },
            Agent.OnRecovered, out _);
        Transport = new TransportServer(new TransportOptions { Log = new TransportFaults(Events) }, new NoInbound());
        Transport.Start();
        Agent.Start(Spool, Transport);
    }

    /// <summary>Commits a message from <paramref name="sender"/> to <paramref name="recipients"/>; returns its queue id.</summary>
    public async Task<string> Send(string sender, string body, params string[] recipients)
    {
        var m = Spool.Begin("192.0.2.1"u8, "client.example"u8, Encoding.UTF8.GetBytes(sender), default);
        foreach (string r in recipients) m.AddRecipient(Encoding.UTF8.GetBytes(r), default);
        m.Append(Encoding.UTF8.GetBytes(body));
        string id = Encoding.ASCII.GetString(m.QueueId);
        Assert.Equal(CommitResult.Committed, await m.CommitAsync());
        return id;
    }

    /// <summary>Moves the fake clock: the agent's timer fires and its pump acts on what fell due.</summary>
    public void Advance(TimeSpan by) => Clock.Advance(by);

    /// <summary>Stops everything, runs <paramref name="between"/> on the files at rest, and opens again.</summary>
    public async Task Restart(Action? between = null)
    {
        await Stop();
        between?.Invoke();
        Open();
    }

    private async Task Stop()
    {
        Agent.BeginStop();
        await Transport.StopAsync(TimeSpan.FromSeconds(5));
        Agent.Dispose();
        Spool.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await Stop();
        try { System.IO.Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The journal's file calls, failing every write and sync of a journal file while <see cref="Failing"/>.</summary>
internal sealed unsafe class FailingJournalIo : SpoolIo
{
    private const int EIO = 5;
    private readonly ConcurrentDictionary<int, bool> _journalFds = new();
    public volatile bool Failing;
    public int Failures;

    public override int Create(string path, out int fd, out bool direct)
    {
        int err = base.Create(path, out fd, out direct);
        if (err == 0 && path.EndsWith(".jnl", StringComparison.Ordinal)) _journalFds[fd] = true;
        return err;
    }

    public override int Write(int fd, EdgeMta.Spool.Native.LibC.IoVec* iov, int count, long offset, bool sync)
    {
        if (Failing && _journalFds.ContainsKey(fd) && offset > 0)
        {
            Interlocked.Increment(ref Failures);
            return EIO;
        }
        return base.Write(fd, iov, count, offset, sync);
    }
}
