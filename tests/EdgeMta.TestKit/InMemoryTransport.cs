// Contract: the transport's side of the IConnectionHandler seam (src/EdgeMta.Transport/ConnectionHandler.cs)
// with no socket, for Server unit tests: bytes in (Send), replies out (Replies), Pause and Resume, the idle
// timeout on a fake clock, shutdown, and the close with the handler given back to its factory.
//
// It keeps the real transport's rules: callbacks on one connection never overlap; a Resume from another
// thread (the spool's flusher) drives the connection on that thread when nobody else does, and counts even
// when it comes before the callback that answered Pause has returned; input kept while paused is offered
// after OnResumed; shutdown is delivered between callbacks, never while paused; OnTimedOut only while
// waiting for input past the handler's idle timeout or its request deadline (InMemoryConnection.Deadline.cs),
// checked by a sweep timer on the given clock, as ConnectionTable's. Everything written in one callback or one pass over the input is "sent" at once.
// What it does not do: TLS (a StartTls answer faults the connection), send back-pressure, the linger
// after close, admission limits. A handler exception closes the connection and is kept in Fault.
using System.Net;
using EdgeMta.Transport;

namespace EdgeMta.TestKit;

public sealed class InMemoryTransport : IDisposable
{
    private readonly List<InMemoryConnection> _connections = [];
    private readonly ITimer _sweep;
    private long _nextId;

    /// <param name="factory">Makes the handlers (the server's context, in Server tests).</param>
    /// <param name="clock">Time for idle timeouts; a <see cref="FakeClock"/> makes them fire when advanced.</param>
    /// <param name="defaultIdleTimeout">The idle timeout until a handler sets one (the transport's: 5 minutes).</param>
    public InMemoryTransport(IConnectionHandlerFactory factory, TimeProvider clock, TimeSpan? defaultIdleTimeout = null)
    {
        Factory = factory;
        Clock = clock;
        DefaultIdleTimeout = defaultIdleTimeout ?? TimeSpan.FromMinutes(5);
        // One sweep a second, as ConnectionTable's: the timeout resolution is one second.
        _sweep = clock.CreateTimer(static state => ((InMemoryTransport)state!).Sweep(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public IConnectionHandlerFactory Factory { get; }
    public TimeProvider Clock { get; }
    public TimeSpan DefaultIdleTimeout { get; }

    /// <summary>A client connects: a handler is made and opened (its greeting is in <see cref="InMemoryConnection.Replies"/>).</summary>
    public InMemoryConnection Connect(IPEndPoint? remote = null)
    {
        var connection = new InMemoryConnection(this, Interlocked.Increment(ref _nextId),
            remote ?? new IPEndPoint(IPAddress.Parse("192.0.2.1"), 50000));
        lock (_connections) _connections.Add(connection);
        connection.Open();
        return connection;
    }

    /// <summary>The server is stopping: every open connection's handler hears OnShutdown (between callbacks).</summary>
    public void Shutdown()
    {
        foreach (InMemoryConnection connection in Snapshot()) connection.RequestShutdown();
    }

    /// <summary>As TransportServer.ShortenRequestDeadlines: every connection waiting for a request (not a transfer,
    /// not paused) must complete it within <paramref name="atMost"/> from now, if its own deadline is later.</summary>
    public void ShortenRequestDeadlines(TimeSpan atMost)
    {
        foreach (InMemoryConnection connection in Snapshot()) connection.ShortenRequestDeadline((long)atMost.TotalMilliseconds);
    }

    public void Dispose() => _sweep.Dispose();

    private InMemoryConnection[] Snapshot()
    {
        lock (_connections) return [.. _connections];
    }

    private void Sweep()
    {
        foreach (InMemoryConnection connection in Snapshot()) connection.CheckDeadline();
    }

    /// <summary>Milliseconds on the clock's monotonic scale.</summary>
    internal long NowMs => (long)Clock.GetElapsedTime(0).TotalMilliseconds;
}
