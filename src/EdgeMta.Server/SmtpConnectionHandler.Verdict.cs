// The handler's wait for a screening verdict (src/EdgeMta.Protocol/SessionScreening.cs), the third reason it
// pauses beside the spool commit and the stream backlog (SmtpConnectionHandler.cs).
//
// The session answers AwaitingVerdict with the command's line left in the input (or, at connect, with the
// greeting held back); the handler answers Pause. The transport then reads nothing and sets no deadline
// (Connection.Drive.cs: a paused connection waits with none), so the wait is the screening's to bound: a
// screening that answers Pending reports within its own deadline (--dns-timeout), and a verdict never
// reported is ended by the server's stop and nothing else. The screening reports through
// IVerdictListener.OnVerdictKnown from whatever thread learned it (a DNS socket's, a timer's); that thread
// never runs protocol code: it queues ConnectionInfo.Resume on the thread pool, which calls OnResumed there,
// and OnResumed offers the kept input again (the session parses the same line and asks again) or, at
// connect, calls SmtpSession.ContinueAfterVerdict.
//
// Races, all settled under one short lock (no I/O under it, taken once per verdict, not per command):
// a verdict reported between the Pending answer and the Pause is kept (Signalled) and resumes at once; a
// report when nothing waits is kept the same way and costs at most one needless question later; a report
// after the connection closed finds the state reset and the resume carries the old connection's generation,
// which the transport ignores. The transport delivers no OnShutdown while paused, so a stop wakes a waiting
// connection through the context's Stopping token, and OnResumed then answers the session's shutdown (421).
using System.Buffers;
using System.Net;
using EdgeMta.Protocol;
using EdgeMta.Server.Screening;
using EdgeMta.Transport;

namespace EdgeMta.Server;

internal sealed partial class SmtpConnectionHandler : IVerdictListener
{
    private enum VerdictWait : byte
    {
        /// <summary>No verdict awaited, none reported.</summary>
        None,
        /// <summary>Paused for a verdict.</summary>
        Waiting,
        /// <summary>A verdict was reported while nobody waited: the next wait ends at once.</summary>
        Signalled,
        /// <summary>The wait is over and its Resume queued: OnResumed is next.</summary>
        Resuming,
    }

    private static readonly Action<object?> WakeForStop = static handler => ((SmtpConnectionHandler)handler!).OnVerdictKnown();

    private readonly IConnectionScreening? _screening;
    private readonly Lock _verdictGate = new();
    private VerdictWait _verdict;
    private CancellationTokenRegistration _stopWake;

    /// <summary>The client address the screening judges. ONE place, so that the PROXY protocol's proxied
    /// address (docs/SCREENING.md) replaces the socket's here and nowhere else.</summary>
    private static IPAddress? ScreenedAddress(ConnectionInfo info) =>
        info.ClientEndPoint?.Address is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : info.ClientEndPoint?.Address;

    public void OnVerdictKnown()
    {
        ConnectionInfo target;
        lock (_verdictGate)
        {
            if (_verdict != VerdictWait.Waiting)
            {
                if (_verdict == VerdictWait.None)
                {
                    _verdict = VerdictWait.Signalled;
                }
                return;
            }
            _verdict = VerdictWait.Resuming;
            target = _connection;
        }
        QueueResume(target);
    }

    // Never inline: the reporting thread may be a DNS socket's or a timer's, and Resume runs OnResumed and
    // the send on the calling thread when nobody else drives the connection (ConnectionHandler.cs).
    private static void QueueResume(ConnectionInfo connection) =>
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.Resume(), connection, preferLocal: false);

    private HandlerStatus AwaitVerdict()
    {
        ConnectionInfo target;
        lock (_verdictGate)
        {
            if (_verdict != VerdictWait.Signalled)
            {
                _verdict = VerdictWait.Waiting;
                // Inside the lock: a stop already under way runs the wake-up at once, on this thread (the lock
                // is re-entrant), and the registration is stored before any OnResumed can read it.
                _stopWake = _context.Stopping.UnsafeRegister(WakeForStop, this);
                return HandlerStatus.Pause;
            }
            _verdict = VerdictWait.Resuming; // reported since the question: ask again now
            target = _connection;
        }
        QueueResume(target); // Resume may come before the Pause is applied (ConnectionHandler.cs)
        return HandlerStatus.Pause;
    }

    /// <summary>True when this resume ends a verdict wait (and ends it).</summary>
    private bool TakeVerdictResume()
    {
        CancellationTokenRegistration stopWake;
        lock (_verdictGate)
        {
            if (_verdict != VerdictWait.Resuming)
            {
                return false;
            }
            _verdict = VerdictWait.None;
            stopWake = _stopWake;
            _stopWake = default;
        }
        stopWake.Unregister(); // never waits for a running wake-up, unlike Dispose
        return true;
    }

    private HandlerStatus AfterVerdict(IBufferWriter<byte> output)
    {
        if (_context.Stopping.IsCancellationRequested)
        {
            return After(_session.OnShutdown(output), output); // 421 4.3.2: the line that waited is never answered
        }
        if (_session.AwaitingConnectVerdict)
        {
            return After(_session.ContinueAfterVerdict(output), output);
        }
        return After(SessionStatus.Continue, output); // the transport offers the kept line again
    }

    /// <summary>The connection closed: no wait survives it, and no report from its screening reaches the next.</summary>
    private void EndVerdictWait()
    {
        CancellationTokenRegistration stopWake;
        lock (_verdictGate)
        {
            _verdict = VerdictWait.None;
            stopWake = _stopWake;
            _stopWake = default;
        }
        stopWake.Unregister();
    }
}
