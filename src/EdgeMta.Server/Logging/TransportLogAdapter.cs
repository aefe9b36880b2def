// The transport's trouble reports, written to the server log (never on the per-message path).
using System.Net.Sockets;
using EdgeMta.Transport;

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
}
