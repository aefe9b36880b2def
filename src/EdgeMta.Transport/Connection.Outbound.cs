// A connection this process opened (OutboundHandler.cs, TransportServer.Outbound.cs): what differs from an
// accepted one, kept apart so the inbound path reads as before.
//
// What it does: starts a connected socket with the caller's handler (no factory: never created by it, never
// returned to it, never admitted against the inbound limits); runs STARTTLS as the client with the handler's
// ClientTlsOptions and reports a failed handshake through OnTlsFailed before OnClosed; and carries
// HandlerStatus.WriteMore: once everything written has left, the drive loop calls OnWritable for the next
// chunk, offering no input in between (a reply that arrives early, RFC 2920 §3.1 allows none before the end
// of data, is kept for after).
//
// What it does not do: anything SMTP (the handler waits for the greeting, sends EHLO, decides on STARTTLS),
// or check certificates itself (ClientTlsOptions carries the handler's checks, docs/DELIVERY.md --relay-tls).
//
// How it fails: WriteMore from an inbound handler, or StartTls with no ClientTlsOptions, faults the connection
// (HandlerFaulted, then closed), as any other handler misuse. A handler that answers WriteMore with nothing
// written is called again, but within the drive loop's per-turn budget, so it cannot hold a thread.
using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    private IOutboundHandler? _outbound;
    private SslClientAuthenticationOptions? _clientTlsOptions;
    private bool _writeMore;
    private bool _handshakeTimedOut;

    /// <summary>Takes over a socket connected by an OutboundConnect and calls the handler's OnOpened.</summary>
    public void StartOutbound(Socket socket, long id, IOutboundHandler handler)
    {
        int generation = Claim(socket, id);
        _outbound = handler;
        _handler = handler;
        ConnectionTable.Mode mode = _server.Table.Register(this, generation, out _slot);
        var info = new ConnectionInfo(this, generation, id, IpOf(socket.RemoteEndPoint), IpOf(socket.LocalEndPoint));
        try
        {
            Apply(handler.OnOpened(info, _output));
        }
        catch (Exception exception)
        {
            Fault(exception);
        }
        Opened(mode);
    }

    /// <summary>An end's address, IPv4 written as IPv4 (a dual-mode socket reports ::ffff:a.b.c.d); null for a
    /// Unix-domain socket, which has no IP address.</summary>
    private static IPEndPoint? IpOf(EndPoint? endPoint)
    {
        if (endPoint is not IPEndPoint ip)
        {
            return null;
        }
        return ip.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ip.Address.MapToIPv4(), ip.Port) : ip;
    }

    private void RequestWriteMore()
    {
        if (_outbound is null)
        {
            Fault(new InvalidOperationException("WriteMore is for outbound connections only."));
            return;
        }
        _writeMore = true;
    }

    /// <summary>Everything written before WriteMore has been sent: ask for more. Input kept meanwhile is offered
    /// once the handler answers Continue.</summary>
    private void InvokeWritable()
    {
        _writeMore = false;
        HandlerStatus status;
        try
        {
            status = _outbound!.OnWritable(_output);
        }
        catch (Exception exception)
        {
            Fault(exception);
            return;
        }
        if (status == HandlerStatus.Continue)
        {
            _inputOffered = false;
        }
        Apply(status);
    }

    /// <summary>Reads the handler's client options when it answers StartTls; false (and faulted) when it has none.</summary>
    private bool TakeClientTlsOptions()
    {
        try
        {
            _clientTlsOptions = _outbound!.ClientTlsOptions;
        }
        catch (Exception exception)
        {
            Fault(exception);
            return false;
        }
        if (_clientTlsOptions is null)
        {
            Fault(new InvalidOperationException("The handler answered StartTls but its ClientTlsOptions is null."));
            return false;
        }
        return true;
    }

    /// <summary>An outbound handshake failed: tell the handler why, in one line, before OnClosed.</summary>
    private void ReportTlsFailure(Exception exception)
    {
        if (_outbound is null)
        {
            return;
        }
        string reason = _handshakeTimedOut
            ? $"the TLS handshake timed out after {_server.TlsHandshakeTimeoutMs / 1000.0:0.#} s"
            : OneLine(exception);
        try
        {
            _outbound.OnTlsFailed(reason);
        }
        catch (Exception handlerException)
        {
            _server.Log.HandlerFaulted(_id, handlerException);
        }
    }

    /// <summary>The exception's message and its inner one's (where a chain error is usually told), on one line,
    /// at most 512 characters, for a log line and a deferral reason.</summary>
    private static string OneLine(Exception exception)
    {
        string text = exception.InnerException is { } inner && inner.Message != exception.Message
            ? exception.Message + " " + inner.Message
            : exception.Message;
        text = text.ReplaceLineEndings(" ");
        return text.Length <= 512 ? text : text[..512];
    }

    private void ReleaseOutbound()
    {
        _outbound = null;
        _clientTlsOptions = null;
        _writeMore = _handshakeTimedOut = false;
    }
}
