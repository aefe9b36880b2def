// The transport's trouble reports, written to the server log (never on the per-message path).
using System.Net;
using System.Net.Sockets;
using EdgeMta.Transport;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Server.Logging;

internal sealed class TransportLogAdapter(ServerLog log) : ITransportLog
{
    public void HandlerFaulted(long connectionId, Exception exception) =>
        log.Begin(LogEvent.TransportTrouble).Field("conn"u8, connectionId).Field("fault"u8, exception.GetType().Name)
            .Field("error"u8, exception.Message).End();

    public void AcceptBackingOff(SocketError error, TimeSpan delay) =>
        log.Begin(LogEvent.TransportTrouble).Field("accept"u8, error.ToString()).Field("backoff-ms"u8, (long)delay.TotalMilliseconds).End();

    public void ListenerStopped(string endPoint, SocketError error) =>
        log.Begin(LogEvent.TransportTrouble).Field("listener"u8, endPoint).Field("stopped"u8, error.ToString()).End();

    public void InternalError(Exception exception) =>
        log.Begin(LogEvent.TransportTrouble).Field("internal"u8, exception.GetType().Name).Field("error"u8, exception.Message).End();

    // docs/SCREENING.md: proxy-rejected client=<socket peer> reason=...; the peer is the proxy (or whoever
    // reached the proxy listener), never a client the header named.
    public void ProxyRejected(IPEndPoint? peer, ProxyRejectReason reason)
    {
        Span<byte> address = stackalloc byte[64];
        int written = 0;
        IPAddress? ip = peer?.Address;
        if (ip is not null && ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }
        ip?.TryFormat(address, out written);
        log.Begin(LogEvent.ProxyRejected).Field("client"u8, address[..written]).Field("reason"u8, ReasonName(reason)).End();
    }

    internal static ReadOnlySpan<byte> ReasonName(ProxyRejectReason reason) => reason switch
    {
        ProxyRejectReason.BadSignature => "bad-signature"u8,
        ProxyRejectReason.V1TooLong => "v1-too-long"u8,
        ProxyRejectReason.V1Malformed => "v1-malformed"u8,
        ProxyRejectReason.V1Unknown => "v1-unknown"u8,
        ProxyRejectReason.V1BadAddress => "v1-bad-address"u8,
        ProxyRejectReason.V1BadPort => "v1-bad-port"u8,
        ProxyRejectReason.V2BadVersion => "v2-bad-version"u8,
        ProxyRejectReason.V2BadCommand => "v2-bad-command"u8,
        ProxyRejectReason.V2BadFamily => "v2-bad-family"u8,
        ProxyRejectReason.V2BadLength => "v2-bad-length"u8,
        ProxyRejectReason.TooLarge => "too-large"u8,
        ProxyRejectReason.Untrusted => "untrusted"u8,
        ProxyRejectReason.TimedOut => "timeout"u8,
        ProxyRejectReason.Closed => "closed"u8,
        _ => "unknown"u8,
    };
}
