// Outbound connections: the relay client's side of the transport (OutboundHandler.cs has the contract,
// docs/DELIVERY.md "What a delivery attempt does" the reason: no thread per connection, no blocking call).
//
// What it does: Connect makes a socket for the endpoint (TCP for IPEndPoint and DnsEndPoint, a Unix-domain
// stream socket for UnixDomainSocketEndPoint) and hands it to an OutboundConnect, which connects without
// blocking, bounded by the caller's timeout. A connected socket is then driven by a pooled Connection exactly
// as an accepted one, registered in the same table, so StopAsync reaches it (OnShutdown, then the close at
// the deadline) and the sweep times it out.
//
// What it does not do: count outbound connections against MaxConnections or the IConnectionGate (those
// limit what clients may take from us; the relay's own limits are --relay-concurrency, docs/DELIVERY.md), or
// choose addresses: a DnsEndPoint is resolved by the socket layer, MX lookup is the caller's.
//
// How it fails: Connect throws only for misuse (a null argument, a timeout that is not positive, an endpoint
// type it does not know, a server not started or stopping). Every network outcome reaches the handler.
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport;

public sealed partial class TransportServer
{
    private readonly List<OutboundConnect> _connecting = new();
    private bool _connectsClosed;
    private volatile bool _started;

    /// <summary>
    /// Opens a connection to <paramref name="remote"/> for <paramref name="handler"/>, without blocking: the
    /// handler hears OnOpened once connected, or OnConnectFailed (refused, unreachable, not resolved, or
    /// SocketError.TimedOut after <paramref name="connectTimeout"/>), always on another thread.
    /// </summary>
    /// <exception cref="ArgumentException">An endpoint that is not an IPEndPoint, DnsEndPoint or
    /// UnixDomainSocketEndPoint, or a timeout that is not positive.</exception>
    /// <exception cref="InvalidOperationException">The server has not started, or is stopping.</exception>
    public void Connect(EndPoint remote, IOutboundHandler handler, TimeSpan connectTimeout)
    {
        ArgumentNullException.ThrowIfNull(remote);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(connectTimeout, TimeSpan.Zero);
        Socket socket = remote switch
        {
            IPEndPoint ip => new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp),
            // Unspecified: a dual-mode IPv6 socket reaches the IPv4 and IPv6 addresses the name resolves to.
            DnsEndPoint { AddressFamily: AddressFamily.Unspecified } => new Socket(SocketType.Stream, ProtocolType.Tcp),
            DnsEndPoint dns => new Socket(dns.AddressFamily, SocketType.Stream, ProtocolType.Tcp),
            UnixDomainSocketEndPoint => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified),
            _ => throw new ArgumentException($"Cannot connect to a {remote.GetType().Name}.", nameof(remote)),
        };
        var connect = new OutboundConnect(this, socket, remote, handler, Interlocked.Increment(ref _nextId));
        lock (_connecting)
        {
            if (!_started || _connectsClosed)
            {
                socket.Dispose();
                throw new InvalidOperationException(_started ? "The server is stopping." : "The server has not started.");
            }
            _connecting.Add(connect);
        }
        connect.Begin(connectTimeout);
    }

    /// <summary>A connect settled: stop no longer needs to cancel it.</summary>
    internal void ForgetConnect(OutboundConnect connect)
    {
        lock (_connecting)
        {
            _connecting.Remove(connect); // a few in flight per next hop: a list is enough
        }
    }

    /// <summary>Stop's first step: no new connect, and those in flight end with OperationAborted (a stopping
    /// server starts no session; one that connected a moment before is registered and told OnShutdown).</summary>
    private void AbortConnects()
    {
        OutboundConnect[] inFlight;
        lock (_connecting)
        {
            _connectsClosed = true;
            inFlight = _connecting.ToArray();
        }
        foreach (OutboundConnect connect in inFlight)
        {
            connect.Abort();
        }
    }

    /// <summary>Drives a connected outbound socket (the Connection guards every handler call itself).</summary>
    internal void StartOutbound(Socket socket, long id, IOutboundHandler handler) =>
        _connections.Get().StartOutbound(socket, id, handler);
}
