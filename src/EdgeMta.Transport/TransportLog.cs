// The transport has no logger dependency: the host adapts this to its own (source-generated) logger.
// Every method is called off the hot path (faults, accept trouble, stop), never per message.
using System.Net;
using System.Net.Sockets;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Transport;

/// <summary>Events the transport reports but cannot return to a caller.</summary>
public interface ITransportLog
{
    /// <summary>A handler callback threw; the connection was closed abortively.</summary>
    void HandlerFaulted(long connectionId, Exception exception);

    /// <summary>accept(2) failed for lack of descriptors or memory; the listener waits, then retries.</summary>
    void AcceptBackingOff(SocketError error, TimeSpan delay);

    /// <summary>A listener stopped accepting (closed by StopAsync, or an error it cannot recover from).</summary>
    void ListenerStopped(string endPoint, SocketError error);

    /// <summary>A bug in the transport itself was caught in a completion callback rather than kill the process.</summary>
    void InternalError(Exception exception);

    /// <summary>A connection to a PROXY listener was closed before its session began, with no reply
    /// (<paramref name="peer"/> is the socket's, the proxy's). The default reports nothing.</summary>
    void ProxyRejected(IPEndPoint? peer, ProxyRejectReason reason)
    {
    }
}

/// <summary>Reports nothing.</summary>
public sealed class NullTransportLog : ITransportLog
{
    /// <summary>The one instance.</summary>
    public static readonly NullTransportLog Instance = new();

    private NullTransportLog() { }

    /// <inheritdoc/>
    public void HandlerFaulted(long connectionId, Exception exception) { }

    /// <inheritdoc/>
    public void AcceptBackingOff(SocketError error, TimeSpan delay) { }

    /// <inheritdoc/>
    public void ListenerStopped(string endPoint, SocketError error) { }

    /// <inheritdoc/>
    public void InternalError(Exception exception) { }
}
