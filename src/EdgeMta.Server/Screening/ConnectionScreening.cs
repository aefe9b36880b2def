// Contract: the host's side of the screening seam (src/EdgeMta.Protocol/SessionScreening.cs): a screening
// the connection handler owns for its whole pooled life, told when a connection opens and closes, and the
// way it reports that a verdict it answered Pending about is now known.
//
// What it does not do: decide anything itself (ClientScreening.cs decides rates; a blocklist screening
// decides listings), or run protocol code. IVerdictListener.OnVerdictKnown may be called from any thread
// (a DNS socket's, a timer's) and returns at once: the handler moves the work to the thread pool
// (SmtpConnectionHandler.Verdict.cs). A call when no verdict is awaited is harmless (the session asks
// again, or nobody is asking); a verdict never reported leaves the connection paused until the server
// stops, so a screening that answers Pending must report within its own deadline (e.g. --dns-timeout).
//
// Composing several (rates and blocklists): ask those that can answer Pending first and a counting one
// (ClientScreening, which counts an event each time it is asked) only once they have all accepted, so a
// question asked again after a Pending is counted once; the first answer that is not Accept is the answer.
using System.Net;
using EdgeMta.Protocol;

namespace EdgeMta.Server.Screening;

/// <summary>The handler's wake-up for a verdict that was Pending.</summary>
internal interface IVerdictListener
{
    /// <summary>A verdict the screening answered Pending about is known: ask again. Any thread; never blocks.</summary>
    void OnVerdictKnown();
}

/// <summary>A per-connection <see cref="ISessionScreening"/> with the connection's lifetime (pooled with its handler).</summary>
internal interface IConnectionScreening : ISessionScreening
{
    /// <summary>A connection opens, from <paramref name="client"/> (null when the transport knows none);
    /// before any question. <paramref name="connection"/> is the id the log uses (conn=).</summary>
    void Open(IPAddress? client, long connection);

    /// <summary>The connection closed (maybe while a verdict was pending): forget it before the next Open.</summary>
    void Close();
}
