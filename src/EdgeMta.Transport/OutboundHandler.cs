// Outbound connections on the same transport as inbound ones (docs/DELIVERY.md "What a delivery attempt does":
// the relay client's sockets are the server's pooled, non-blocking sockets; no thread per connection, no
// blocking socket call).
//
// What it is: TransportServer.Connect opens a TCP or Unix-domain connection with a non-blocking connect (a
// SocketAsyncEventArgs ConnectAsync, bounded by the given timeout) and then drives it exactly as an accepted
// one: the same Connection object, the same drive loop, buffers, idle timeout, send timeout, stop and close.
// The handler is the caller's (no factory, never returned to a pool). The differences:
// - OnOpened is called once connected; the handler usually writes nothing and waits for the greeting.
// - A connect that fails or times out calls OnConnectFailed (once, on some pool thread) and nothing else: no
//   OnOpened, no OnClosed.
// - HandlerStatus.StartTls runs the handshake as the CLIENT with ClientTlsOptions (target host, certificate
//   checks). A failed handshake calls OnTlsFailed with the reason, then OnClosed.
// - HandlerStatus.WriteMore is allowed (streams a message bigger than the output buffer).
// - Outbound connections do not count against the inbound limits (--max-connections, per address), but
//   stop treats them as any connection: OnShutdown, then closed at the stop deadline.
// How it fails: Connect never throws for network errors; it throws only for misuse (server not started or
// stopping: InvalidOperationException).
using System.Net.Security;
using System.Net.Sockets;

namespace EdgeMta.Transport;

/// <summary>The protocol side of a connection this process opened (the relay client).</summary>
public interface IOutboundHandler : IConnectionHandler
{
    /// <summary>The connect failed (refused, unreachable, name not resolved) or timed out (SocketError.TimedOut).
    /// The last call this handler gets for this attempt.</summary>
    void OnConnectFailed(SocketError error);

    /// <summary>Options for the client handshake when the handler answers StartTls (RFC 3207): TargetHost and the
    /// certificate checks are the handler's (docs/DELIVERY.md --relay-tls).</summary>
    SslClientAuthenticationOptions ClientTlsOptions { get; }

    /// <summary>The client TLS handshake failed or timed out; OnClosed follows. <paramref name="reason"/> is one
    /// line for a log (e.g. the certificate chain error).</summary>
    void OnTlsFailed(string reason);

    /// <summary>Everything written before a WriteMore has been sent: write more and answer again.</summary>
    HandlerStatus OnWritable(System.Buffers.IBufferWriter<byte> output);
}
