// Contract: one running EdgeMta server, from a ServerOptions to listening sockets and back.
//
// Start order matters for RFC 5321 §6.1: the spool is opened and recovered (torn tails cut, damage
// quarantined) before any socket listens, so no client is ever answered by a server that does not yet
// know what it already holds. Stop order is the reverse: stop accepting, let sessions in DATA finish up
// to the deadline (421 4.3.2 to idle ones), then close the spool, which flushes what was committed.
// What it does not do: parse flags (the host does), or decide any reply (the protocol session does).
using System.Net;
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
        var spool = MessageSpool.Open(options.Spool with
        {
            MaxMessageSize = (int)Math.Min(int.MaxValue - TraceHeaderAllowance, session.MaxMessageSize) + TraceHeaderAllowance,
            // One line when the spool starts failing: the errno is on record even if every refusal then comes at MAIL.
            StorageFailing = errno => LogSpoolTrouble(log, errno),
        }, out RecoveryReport recovery);

        var context = new SmtpServerContext(session, directory, spool, log, maxRetainedHandlers: 4096);
        var transportOptions = new TransportOptions
        {
            MaxConnections = options.MaxConnections ?? ServerOptions.DefaultMaxConnections,
            MaxConnectionsPerAddress = options.MaxConnectionsPerAddress,
            ExemptLoopbackFromAddressLimit = true,
            DefaultIdleTimeout = session.CommandTimeout,
            Log = new TransportLogAdapter(log),
            TlsCertificate = tls?.Certificate,
            TlsIntermediateCertificates = tls?.Intermediates,
        };
        foreach (IPEndPoint endpoint in options.Listen) transportOptions.EndPoints.Add(endpoint);
        foreach (System.Net.Sockets.Socket socket in options.ListeningSockets) transportOptions.ListeningSockets.Add(socket);
        if (transportOptions.EndPoints.Count == 0 && transportOptions.ListeningSockets.Count == 0)
        {
            transportOptions.EndPoints.Add(ServerOptions.DefaultListen);
        }
        var transport = new TransportServer(transportOptions, context);
        try
        {
            transport.Start();
        }
        catch
        {
            spool.Dispose();
            throw;
        }
        return new EdgeMtaServer(options, transport, spool, log, recovery, context, new ServerReload(options, context, transport, log));
    }

    /// <summary>Graceful stop: no new connections, 421 4.3.2 to idle sessions, DATA finishes up to the deadline.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        _log.Begin(LogEvent.Stopping).Field("open"u8, _transport.Counters.Open).End();
        await _transport.StopAsync(_options.ShutdownDeadline).ConfigureAwait(false);
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

    private static void LogSpoolTrouble(ServerLog log, int errno)
    {
        ReadOnlySpan<byte> name = Errno.Name(errno);
        var line = log.Begin(LogEvent.SpoolTrouble);
        line = name.IsEmpty ? line.Field("errno"u8, errno) : line.Field("errno"u8, name);
        line.End();
    }
}
