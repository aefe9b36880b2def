// Contract: one running EdgeMta server, from a ServerOptions to listening sockets and back.
//
// Start order matters for RFC 5321 §6.1: the spool is opened and recovered (torn tails cut, damage
// quarantined) before any socket listens, so no client is ever answered by a server that does not yet
// know what it already holds. Stop order is the reverse: stop accepting, let sessions in DATA finish up
// to the deadline (421 4.3.2 to idle ones), then close the spool, which flushes what was committed.
// What it does not do: parse flags (the host does), or decide any reply (the protocol session does).
using System.Net;
using EdgeMta.Delivery;
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Spool;
using EdgeMta.Transport;

namespace EdgeMta.Server;

public sealed class EdgeMtaServer : IAsyncDisposable
{
    // Room for our own Received: header on top of the client's message (RFC 5321 §4.4 trace fields are
    // a few hundred octets; the protocol caps its header length).
    private const int TraceHeaderAllowance = 4096;

    /// <summary>Largest --max-message-size: what the spool takes, less the room kept for the Received: header.</summary>
    public const long MaxMessageSizeLimit = MessageSpool.MaxMessageSizeLimit - TraceHeaderAllowance;

    private readonly ServerOptions _options;
    private readonly TransportServer _transport;
    private readonly MessageSpool _spool;
    private readonly ServerLog _log;
    private readonly SmtpServerContext _context;
    private int _stopped;
    private DeliveryAgent? _agent;
    private ControlServer? _control;

    /// <summary>Delivery events since start (zero without --relay).</summary>
    public DeliveryCounters Delivery { get; private init; } = new();

    /// <summary>Live messages the delivery agent holds (0 without --relay).</summary>
    public int QueueLength => _agent?.Count ?? 0;

    /// <summary>The delivery journal's durable writes and records since start (0 without --relay).</summary>
    public (long Writes, long Records) DeliveryJournal => _agent is null ? default : (_agent.JournalWrites, _agent.JournalRecords);

    /// <summary>What the delivery agent found at start (default without --relay).</summary>
    public RecoverySummary DeliveryRecovery => _agent?.Recovery ?? default;

    private EdgeMtaServer(ServerOptions options, TransportServer transport, MessageSpool spool, ServerLog log, RecoveryReport recovery,
        SmtpServerContext context, ServerReload reload)
    {
        _options = options;
        Reload = reload;
        _transport = transport;
        _spool = spool;
        _log = log;
        _context = context;
        Recovery = recovery;
    }

    /// <summary>What spool recovery found at start.</summary>
    public RecoveryReport Recovery { get; }

    /// <summary>The addresses actually bound (port 0 resolved).</summary>
    public IReadOnlyList<IPEndPoint> BoundEndPoints => _transport.BoundEndPoints;

    public TransportCounters Counters => _transport.Counters;

    /// <summary>The spool flusher's last sign of life (a Stopwatch timestamp; MessageSpool.FlusherHeartbeat),
    /// for a service watchdog that must fall silent when the flusher stalls.</summary>
    public long FlusherHeartbeat => _spool.FlusherHeartbeat;

    /// <summary>How stale <see cref="FlusherHeartbeat"/> gets while the flusher is merely idle.</summary>
    public TimeSpan FlusherHeartbeatPeriod => TimeSpan.FromMilliseconds(_spool.HeartbeatPeriodMs);

    /// <summary>Commands answered, by verb (counted by the protocol sessions when the caller's
    /// <see cref="ServerOptions.Session"/> carries a <see cref="CommandCounters"/>; the host's always does).</summary>
    public CommandCounters? Commands => _context.SessionOptions.Commands;

    /// <summary>Replies by code and accepted messages.</summary>
    public SessionCounters Sessions => _context.Counters;

    /// <summary>The spool's flush latency.</summary>
    public SpoolCounters SpoolCounters => _spool.Counters;

    /// <summary>The spool's segments, bytes and free disk now (reads the directory: for a scrape).</summary>
    public SpoolUsage MeasureSpoolUsage() => _spool.MeasureUsage();

    /// <summary>Re-reads the recipient directory and the TLS certificate for new sessions (the host's SIGHUP).</summary>
    public ServerReload Reload { get; }

    /// <summary>Opens and recovers the spool, loads the recipient directory, then listens. With
    /// <paramref name="tls"/> (loaded by the host from --tls-cert/--tls-key, see <see cref="ServerCertificate"/>)
    /// STARTTLS is advertised and served; the caller keeps ownership of it and disposes it after StopAsync.</summary>
    /// <exception cref="IOException">The spool cannot be opened, or an address cannot be bound.</exception>
    /// <exception cref="ArgumentException">Session.TlsAvailable or RequireTls disagreeing with the certificate
    /// given (the host refuses that at parse time).</exception>
    public static EdgeMtaServer Start(ServerOptions options, ServerLog log, ServerCertificate? tls = null)
    {
        SmtpSessionOptions session = options.Session;
        if (session.TlsAvailable != tls is not null)
        {
            // STARTTLS is advertised (and served) only with a certificate loaded (RFC 3207 §4: otherwise 502).
            throw new ArgumentException("Session.TlsAvailable must say whether a certificate is given.", nameof(tls));
        }
        if (session.RequireTls && tls is null)
        {
            throw new ArgumentException("--require-tls needs a certificate (--tls-cert and --tls-key).", nameof(tls));
        }
        RecipientDirectory directory = LoadDirectory(options);
        var deliveryCounters = new DeliveryCounters();
        var agent = options.Delivery is null ? null : new DeliveryAgent(options.Delivery, new DeliveryLog(log, deliveryCounters));
        var spool = MessageSpool.Open(options.Spool with
        {
            MaxMessageSize = (int)Math.Min(int.MaxValue - TraceHeaderAllowance, session.MaxMessageSize) + TraceHeaderAllowance,
            // One line when the spool starts failing: the errno is on record even if every refusal then comes at MAIL.
            StorageFailing = errno => LogSpoolTrouble(log, errno),
            Observer = agent,
        }, agent is null ? null : agent.OnRecovered, out RecoveryReport recovery);

        var context = new SmtpServerContext(session, directory, spool, log, maxRetainedHandlers: 4096);
        var transportOptions = new TransportOptions
        {
            MaxConnections = options.MaxConnections ?? ServerOptions.DefaultMaxConnections,
            Gate = new Screening.ConnectionGate(options.MaxConnectionsPerAddress, options.ClientIpv6Prefix, options.TrustedNetworks),
            ProxyTimeout = options.ProxyTimeout,
            DefaultIdleTimeout = session.CommandTimeout,
            Log = new TransportLogAdapter(log),
            TlsCertificate = tls?.Certificate,
            TlsIntermediateCertificates = tls?.Intermediates,
        };
        foreach (IPEndPoint endpoint in options.Listen) transportOptions.EndPoints.Add(endpoint);
        foreach (System.Net.Sockets.Socket socket in options.ListeningSockets) transportOptions.ListeningSockets.Add(socket);
        foreach (IPEndPoint endpoint in options.ListenProxy) transportOptions.ProxyEndPoints.Add(endpoint);
        foreach (IPNetwork network in options.ProxyTrusted) transportOptions.ProxyTrustedNetworks.Add(network);
        if (options.ListenProxy.Count > 0 && options.ProxyTrusted.Count == 0)
        {
            // docs/SCREENING.md: no implicit trust-all (maddy 0.9.6 fixed exactly that). The host's flags say it first.
            throw new ArgumentException("--listen-proxy needs --proxy-trusted.", nameof(options));
        }
        if (transportOptions.EndPoints.Count == 0 && transportOptions.ListeningSockets.Count == 0 && transportOptions.ProxyEndPoints.Count == 0)
        {
            transportOptions.EndPoints.Add(ServerOptions.DefaultListen);
        }
        var transport = new TransportServer(transportOptions, context);
        ControlServer? control = null;
        try
        {
            transport.Start();
            if (agent is not null)
            {
                agent.Start(spool, transport);
                control = StartControl(spool.Directory, agent, log);
            }
        }
        catch
        {
            agent?.Dispose();
            spool.Dispose();
            throw;
        }
        return new EdgeMtaServer(options, transport, spool, log, recovery, context, new ServerReload(options, context, transport, log))
        {
            _agent = agent,
            _control = control,
            Delivery = deliveryCounters,
        };
    }

    /// <summary>control.sock for the live queue commands. Without it (a spool path too long for a Unix socket, a
    /// filesystem that cannot hold one) mail is still delivered: one line says so, and `edgemta queue` then finds
    /// no server and refuses to touch a spool whose lock is held.</summary>
    private static ControlServer? StartControl(string directory, DeliveryAgent agent, ServerLog log)
    {
        var control = new ControlServer(directory, agent);
        try
        {
            control.Start();
            return control;
        }
        catch (IOException e)
        {
            log.Begin(LogEvent.DeliveryTrouble).Quoted("error"u8, "no live queue commands: " + e.Message).End();
            return null;
        }
    }

    /// <summary>Graceful stop: no new connections, 421 4.3.2 to idle sessions, DATA finishes up to the deadline.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        _log.Begin(LogEvent.Stopping).Field("open"u8, _transport.Counters.Open).End();
        if (_control is not null) await _control.DisposeAsync().ConfigureAwait(false);
        // Sessions first, outbound ones included (each finishes or abandons before its final dot: no duplicate on
        // SIGTERM), then the agent's journal, then the spool the journal's records name.
        _agent?.BeginStop();   // idle relay connections are paused: they hear no OnShutdown until woken
        await _transport.StopAsync(_options.ShutdownDeadline).ConfigureAwait(false);
        _agent?.Dispose();
        await _spool.DisposeAsync().ConfigureAwait(false);
        _log.Flush();
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private static RecipientDirectory LoadDirectory(ServerOptions o)
    {
        if (o.RecipientsFile is null)
        {
            return o.Domains.Count == 0 ? RecipientDirectory.Sink : RecipientDirectory.Parse("", o.Domains);
        }
        using var reader = new StreamReader(o.RecipientsFile);
        return RecipientDirectory.Parse(reader, o.Domains);
    }

    /// <summary>Logs what recovery found (the host calls it after its `listening on` line, which must come first).</summary>
    public void LogRecovery()
    {
        RecoveryReport r = Recovery;
        ServerLog log = _log;
        log.Begin(LogEvent.SpoolRecovered)
            .Field("segments"u8, r.Segments)
            .Field("messages"u8, r.Messages)
            .Field("bytes"u8, r.Bytes)
            .Field("torn"u8, r.TornTailBytes)
            .Field("damaged"u8, r.Damaged.Count)
            .Field("left-in-place"u8, r.LeftInPlace)
            .End();
    }

    /// <summary>One line at start on store and forward: the next hops and what the journal held, or that mail stays in
    /// the spool without --relay (docs/DELIVERY.md "Flags").</summary>
    public void LogDelivery()
    {
        if (_agent is null || _options.Delivery is null)
        {
            _log.Begin(LogEvent.DeliveryOff).Field("reason"u8, "no --relay: mail stays in the spool (spool export, spool drain)").End();
            return;
        }
        RecoverySummary r = _agent.Recovery;
        _log.Begin(LogEvent.DeliveryStarted).Field("relay"u8, string.Join(",", _options.Delivery.Relays))
            .Field("queued"u8, r.Live).Field("held"u8, r.Held).Field("bounces-due"u8, r.BouncesDue)
            .Field("journal-records"u8, r.JournalRecords).Field("journal-damaged"u8, r.DamagedRecords).End();
    }

    private static void LogSpoolTrouble(ServerLog log, int errno)
    {
        ReadOnlySpan<byte> name = Errno.Name(errno);
        var line = log.Begin(LogEvent.SpoolTrouble);
        line = name.IsEmpty ? line.Field("errno"u8, errno) : line.Field("errno"u8, name);
        line.End();
    }
}
