// The pre-phase of a PROXY listener (docs/SCREENING.md, "PROXY protocol"; HAProxy's doc/proxy-protocol.txt):
// a connection accepted there reads its PROXY header before anything else happens.
//
// What it does: from accept, with no handler and nothing written, it reads into the pinned input buffer
// (waiting with a zero-byte receive, as any idle connection) under ONE deadline, ProxyTimeout from accept,
// which later bytes do not move (a peer sending one byte a second cannot stretch it). A complete header opens
// the session: the client it names (the socket peer for a v2 LOCAL health check) is admitted against the
// host's IConnectionGate, then the handler is created and writes its greeting, never before the header (spec §5:
// "the receiver MUST NOT start processing the connection before it receives a complete and valid PROXY
// protocol header"; Stalwart answered HAProxy's v2 header with 500s because it greeted first). Bytes after the
// header stay in the buffer as the handler's first input: the header is no command and no pipelining.
//
// What it does not do: look at the socket peer's trust (TransportServer.Admit closes an untrusted peer before
// a connection object is taken), or anything for plain listeners, which never read a header.
//
// How it fails: an invalid or over-long header, a timeout, or the peer closing first: the socket is closed
// with no reply, counted, and reported once through ITransportLog.ProxyRejected.
using System.Net;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    private bool _awaitingProxy;

    /// <summary>Accept on a PROXY listener: wait for the header, the deadline fixed from now.</summary>
    private void BeginProxyPhase()
    {
        _awaitingProxy = true;
        Volatile.Write(ref _deadline, _server.Clock.NowMs + _server.ProxyTimeoutMs);
    }

    /// <summary>The drive loop's step while the header is awaited; null to keep driving.</summary>
    private DriveResult? DriveProxyPhase(ref int receivesLeft)
    {
        if (_shutdownRequested)
        {
            RejectProxy(ProxyRejectReason.Closed); // stopping: no session has begun, so none to finish
            return null;
        }
        if (!_inputOffered && _inputEnd > _inputStart)
        {
            ReadProxyHeader();
            return null;
        }
        if (_receivePending)
        {
            return DriveResult.Waiting; // the deadline set at accept stands: it is not re-armed per byte
        }
        if (--receivesLeft < 0)
        {
            return DriveResult.Yielded;
        }
        PostReceive();
        return null;
    }

    private void ReadProxyHeader()
    {
        var input = new ReadOnlySpan<byte>(_input, _inputStart, _inputEnd - _inputStart);
        switch (ProxyHeader.TryParse(input, out ProxyHeader header, out int length))
        {
            case ProxyParseStatus.Incomplete:
                _inputOffered = true; // read more; the parser refuses anything past 4 KiB, within the buffer
                return;
            case ProxyParseStatus.Invalid:
                RejectProxy(header.Error);
                return;
        }
        _inputStart += length;
        if (_inputStart == _inputEnd)
        {
            ReturnInput();
        }
        _awaitingProxy = false;
        _inputOffered = false; // what followed the header is the session's first input
        Volatile.Write(ref _deadline, long.MaxValue);
        Interlocked.Increment(ref _server.Counters._proxyAccepted);
        IPEndPoint? client = header.ToSourceEndPoint(); // null for LOCAL: the socket's own endpoints stand
        try
        {
            OpenSession(client);
        }
        catch (Exception exception)
        {
            Fault(exception);
        }
    }

    /// <summary>The header was not complete ProxyTimeout after accept (the timer's signal).</summary>
    private bool ProxyTimedOut()
    {
        if (!_awaitingProxy)
        {
            return false;
        }
        RejectProxy(ProxyRejectReason.TimedOut);
        return true;
    }

    /// <summary>The peer went away before its header was whole: reported as Closed, once.</summary>
    private void ReportProxyClosed()
    {
        if (_awaitingProxy)
        {
            RejectProxy(ProxyRejectReason.Closed);
        }
    }

    private void RejectProxy(ProxyRejectReason reason)
    {
        _awaitingProxy = false;
        Interlocked.Increment(ref _server.Counters._proxyRejected);
        _server.Log.ProxyRejected(_peer, reason);
        Close(); // no reply: the peer is the proxy, and the spec says to abort (§2)
    }
}
