// What every connection of one server shares, built once at start: the protocol's precomputed options
// and recipient directory, the spool, the log, the clock, and the pool of connection handlers. Also the
// handler factory the transport calls at accept. The directory alone may change while running (a SIGHUP
// reload, ServerReload): it is one reference, replaced whole, and each session reads it once, at Start.
using System.Buffers;
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Server.Screening;
using EdgeMta.Transport;
using Microsoft.Extensions.ObjectPool;

namespace EdgeMta.Server;

internal sealed class SmtpServerContext : IConnectionHandlerFactory
{
    private readonly ObjectPool<SmtpConnectionHandler> _handlers;
    private readonly CancellationTokenSource _stopping = new();
    private long _pooled;
    private RecipientDirectory _directory;

    /// <param name="clock">Time for Received: headers and durations (TimeProvider.System when null; tests pass a fake).</param>
    public SmtpServerContext(SmtpSessionOptions sessionOptions, RecipientDirectory directory, EdgeMta.Spool.MessageSpool spool, ServerLog log,
        int maxRetainedHandlers, TimeProvider? clock = null)
    {
        Clock = clock ?? TimeProvider.System;
        SessionOptions = sessionOptions;
        _directory = directory;
        Spool = spool;
        Log = log;
        // The default pool keeps ProcessorCount * 2 objects (docs/PERF-NOTES.md): far too few under connection churn.
        _handlers = new DefaultObjectPool<SmtpConnectionHandler>(new HandlerPolicy(this), maxRetainedHandlers);
    }

    public SmtpSessionOptions SessionOptions { get; }
    /// <summary>The directory for sessions that start now; sessions in flight keep the one they started with.</summary>
    public RecipientDirectory Directory
    {
        get => Volatile.Read(ref _directory);
        set => Volatile.Write(ref _directory, value);
    }
    public EdgeMta.Spool.MessageSpool Spool { get; }
    public ServerLog Log { get; }
    /// <summary>Replies and accepted messages of every session (published by the host's metrics).</summary>
    public SessionCounters Counters { get; } = new();
    public TimeProvider Clock { get; }
    /// <summary>The slow-client defence's stress state and settings (docs/SCREENING.md "Slow clients"); the default
    /// never stresses (no connection maximum known) and has the default minimum data rate.</summary>
    public ConnectionStress Stress { get; init; } = new(0, new SlowClientOptions(), null);

    /// <summary>DNS blocklists (docs/SCREENING.md): null without --dnsbl. Each handler takes its screening from it.</summary>
    public Screening.Blocklists? Blocklists { get; init; }

    /// <summary>Makes each handler's screening, once per pooled handler, given the handler's wake-up for pending
    /// verdicts (Screening/ConnectionScreening.cs). Null: sessions are asked nothing (no interface call at all).</summary>
    public Func<IVerdictListener, IConnectionScreening>? Screening { get; init; }

    /// <summary>Cancelled when the server starts to stop: wakes connections paused for a verdict, which the
    /// transport's OnShutdown does not reach (ConnectionHandler.cs: never while paused).</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>The server is stopping (EdgeMtaServer.StopAsync, before the transport's stop).</summary>
    public void BeginStop() => _stopping.Cancel();
    /// <summary>The content check (--rspamd); null without it. Set once, before the first connection.</summary>
    public EdgeMta.Server.Rspamd.RspamdClient? Rspamd { get; set; }

    /// <summary>Handlers put in the pool so far (each one exactly once per connection it served).</summary>
    internal long HandlersPooled => Interlocked.Read(ref _pooled);

    public IConnectionHandler Create() => _handlers.Get();

    public void Return(IConnectionHandler handler)
    {
        var smtp = (SmtpConnectionHandler)handler;
        if (smtp.ReleaseFromTransport()) _handlers.Return(smtp);
    }

    /// <summary>A handler whose connection closed during its commit, now done.</summary>
    public void ReturnOrphan(SmtpConnectionHandler handler) => _handlers.Return(handler);

    public void WriteRejection(ConnectionInfo info, ConnectionRejection reason, IBufferWriter<byte> output)
    {
        output.Write(SessionOptions.Prepared.TooManyConnections);
        Counters.CountReply(ReplyCountingWriter.CodeOf(SessionOptions.Prepared.TooManyConnections));
    }

    private sealed class HandlerPolicy(SmtpServerContext context) : IPooledObjectPolicy<SmtpConnectionHandler>
    {
        public SmtpConnectionHandler Create() => new(context);

        public bool Return(SmtpConnectionHandler obj)
        {
            Interlocked.Increment(ref context._pooled); // once per connection close, never per command
            return true;
        }
    }
}
