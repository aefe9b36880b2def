// Stream mode: TLS below the seam (STARTTLS, RFC 3207; implicit TLS, RFC 8314, if a handler asks in OnOpened).
//
// What it does: when a handler answers HandlerStatus.StartTls, the drive loop first sends what the pass
// wrote (the 220), then comes here: every input byte still kept is dropped (RFC 3207 §4.2 and CVE-2011-0411:
// plaintext that arrived before the handshake must never be read as if it came under TLS), an SslStream is
// put over a NetworkStream on the same socket, and AuthenticateAsServerAsync runs (TLS 1.2 and 1.3 only,
// RFC 8996 retired 1.0 and 1.1), bounded by TlsHandshakeTimeout through the connection's deadline. Once it
// succeeds the handler hears OnTlsEstablished, and from then on a receive is SslStream.ReadAsync (the
// zero-byte wait is a zero-byte ReadAsync, which SslStream passes down without renting its buffer) and a
// send is SslStream.WriteAsync. The Running word, the drive loop, the buffers and every other callback are
// the ones the plain path uses; only the source of the completion differs.
//
// Outbound connections run the same handshake as the client (AuthenticateAsClientAsync with the handler's
// ClientTlsOptions, Connection.Outbound.cs); a failure is told to the handler (OnTlsFailed) before OnClosed.
//
// What it does not do: ask for client certificates, renegotiate, check revocation, or resume sessions
// beyond what SslStream does by itself. A failed or timed-out handshake closes the connection (the handler
// hears OnClosed, never OnTlsEstablished). The close sends close_notify (RFC 8446 §6.1) before our FIN.
//
// Outcomes stay values: SslStream reports failure by exception, so each result is taken in one place
// (Take*), where any exception means "this connection's stream is finished" and becomes a Close, exactly
// like a SocketError on the plain path. Completions arrive through cached delegates (no allocation per
// operation beyond what SslStream itself does); each awaiter's GetResult is called exactly once.
//
// Known cost: with inline socket completions the handshake's continuations (one RSA or ECDSA signature,
// about a millisecond) run on the socket engine's thread, as handler code does on the plain path.
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;

namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    private SslStream? _tls;
    private bool _tlsRequested;
    private bool _handshakePending;
    private bool _tlsEstablished;
    private bool _closeNotifyPending;
    private SslProtocols _tlsProtocol; // what the handshake negotiated, for ConnectionInfo.TryGetTls; None in plaintext
    private TlsCipherSuite _tlsCipherSuite;
    private ConfiguredTaskAwaitable.ConfiguredTaskAwaiter _tlsTask; // the handshake, then close_notify
    private ConfiguredValueTaskAwaitable<int>.ConfiguredValueTaskAwaiter _tlsRead;
    private ConfiguredValueTaskAwaitable.ConfiguredValueTaskAwaiter _tlsWrite;
    private Action? _onTlsReceived;
    private Action? _onTlsSent;
    private Action? _onHandshakeDone;

    /// <summary>True once the handshake succeeded: every later byte moves through the SslStream.</summary>
    private bool InTlsMode => _tls is not null && !_handshakePending;

    /// <summary>The handler answered StartTls; checked here, acted on once the pass's output is sent.</summary>
    private void RequestTls()
    {
        if (_outbound is not null && !TakeClientTlsOptions())
        {
            return; // faulted: the handler has no client options
        }
        if (_outbound is null && _server.TlsOptions is null)
        {
            Fault(new InvalidOperationException("The handler answered StartTls but TransportOptions.TlsCertificate is not set."));
        }
        else if (_tls is not null)
        {
            Fault(new InvalidOperationException("The handler answered StartTls on a connection already under TLS."));
        }
        else if (_receivePending)
        {
            // A receive in flight could swallow the client's first handshake bytes as plaintext.
            Fault(new InvalidOperationException("StartTls may be answered only from OnOpened, OnReceived or OnResumed."));
        }
        else
        {
            _tlsRequested = true;
        }
    }

    private void BeginTlsHandshake()
    {
        _tlsRequested = false;
        ReturnInput(); // plaintext pipelined after STARTTLS is dropped, never offered (CVE-2011-0411)
        _dataReady = false;
        _inputOffered = false;
        _handshakePending = true;
        Volatile.Write(ref _deadline, _server.Clock.NowMs + _server.TlsHandshakeTimeoutMs);
        try
        {
            _tls = new SslStream(new NetworkStream(_socket!, ownsSocket: false), leaveInnerStreamOpen: false);
            Task handshake = _clientTlsOptions is { } client
                ? _tls.AuthenticateAsClientAsync(client, CancellationToken.None) // outbound (Connection.Outbound.cs)
                : _tls.AuthenticateAsServerAsync(_server.TlsOptions!, CancellationToken.None);
            _tlsTask = handshake.ConfigureAwait(false).GetAwaiter();
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or SocketException or InvalidOperationException
            || _outbound is not null) // the handler's options may be refused at once (ArgumentException): a failed handshake
        {
            _handshakePending = false;
            Interlocked.Increment(ref _server.Counters._tlsFailed);
            ReportTlsFailure(exception);
            Close(); // the socket went away before the handshake began
            return;
        }
        if (_tlsTask.IsCompleted)
        {
            _handshakePending = false;
            OnHandshakeResult();
        }
        else
        {
            _tlsTask.UnsafeOnCompleted(_onHandshakeDone ??= () => OnIoCompleted(SignalHandshake));
        }
    }

    private void OnHandshakeResult()
    {
        try
        {
            _tlsTask.GetResult();
        }
        catch (Exception exception)
        {
            // Any failure (a client that speaks no TLS, no common cipher, a timeout's Close): the
            // connection ends, as Postfix's smtpd does after a failed STARTTLS handshake. An outbound
            // handler hears why first (a refused certificate is a deferral reason, docs/DELIVERY.md).
            _tlsTask = default;
            Interlocked.Increment(ref _server.Counters._tlsFailed);
            ReportTlsFailure(exception);
            Close();
            return;
        }
        _tlsTask = default;
        _tlsProtocol = _tls!.SslProtocol;
        _tlsCipherSuite = _tls.NegotiatedCipherSuite;
        Interlocked.Increment(ref _server.Counters._tlsEstablished);
        Volatile.Write(ref _deadline, long.MaxValue);
        _tlsEstablished = true; // the drive loop tells the handler before anything else is read
    }

    /// <summary>A receive through the SslStream (into the input buffer, or zero bytes to wait for data).</summary>
    private void PostTlsReceive(bool real)
    {
        Memory<byte> buffer = real ? _input.AsMemory(_inputEnd) : Memory<byte>.Empty;
        try
        {
            _tlsRead = _tls!.ReadAsync(buffer).ConfigureAwait(false).GetAwaiter();
        }
        catch (Exception exception) when (exception is ObjectDisposedException or NotSupportedException or InvalidOperationException or IOException)
        {
            _receivePending = false;
            Close();
            return;
        }
        if (_tlsRead.IsCompleted)
        {
            _receivePending = false;
            OnReceiveResult();
        }
        else
        {
            _tlsRead.UnsafeOnCompleted(_onTlsReceived ??= () => OnIoCompleted(SignalReceived));
        }
    }

    /// <summary>The completed TLS receive's byte count; false when the stream failed (reset, bad record, our Close).</summary>
    private bool TakeTlsReceive(out int received)
    {
        try
        {
            received = _tlsRead.GetResult();
            return true;
        }
        catch (Exception)
        {
            received = 0;
            return false;
        }
        finally
        {
            _tlsRead = default;
        }
    }

    private void PostTlsSend()
    {
        try
        {
            _tlsWrite = _tls!.WriteAsync(new ReadOnlyMemory<byte>(_sending, _sendOffset, _sendEnd - _sendOffset)).ConfigureAwait(false).GetAwaiter();
        }
        catch (Exception exception) when (exception is ObjectDisposedException or NotSupportedException or InvalidOperationException or IOException)
        {
            _sendPending = false;
            Close();
            return;
        }
        if (_tlsWrite.IsCompleted)
        {
            _sendPending = false;
            OnSendResult();
        }
        else
        {
            _tlsWrite.UnsafeOnCompleted(_onTlsSent ??= () => OnIoCompleted(SignalSent));
        }
    }

    /// <summary>The completed TLS send (all or nothing: SslStream writes the whole buffer); false when it failed.</summary>
    private bool TakeTlsSend(out int sent)
    {
        sent = 0;
        try
        {
            if (_closeNotifyPending)
            {
                _closeNotifyPending = false;
                _tlsTask.GetResult();
                _tlsTask = default;
                return true;
            }
            _tlsWrite.GetResult();
            sent = _sendEnd - _sendOffset;
            return true;
        }
        catch (Exception)
        {
            _tlsTask = default;
            return false;
        }
        finally
        {
            _tlsWrite = default;
        }
    }

    /// <summary>close_notify before our FIN (RFC 8446 §6.1), so the client can tell our close from a truncation.
    /// It is a send: the drive loop waits for it, bounded by the linger deadline.</summary>
    private void PostCloseNotify()
    {
        _closeNotifyPending = true;
        _sendPending = true;
        Volatile.Write(ref _deadline, _lingerDeadline);
        try
        {
            _tlsTask = _tls!.ShutdownAsync().ConfigureAwait(false).GetAwaiter();
        }
        catch (Exception exception) when (exception is ObjectDisposedException or NotSupportedException or InvalidOperationException or IOException)
        {
            _closeNotifyPending = false;
            _sendPending = false;
            Close();
            return;
        }
        if (_tlsTask.IsCompleted)
        {
            _sendPending = false;
            OnSendResult();
        }
        else
        {
            _tlsTask.UnsafeOnCompleted(_onTlsSent ??= () => OnIoCompleted(SignalSent));
        }
    }

    /// <summary>Drops the stream mode when the connection object is released (the socket is already closed).</summary>
    private void ReleaseTls()
    {
        if (_tls is not null)
        {
            _tls.Dispose();
            _tls = null;
        }
        _tlsRequested = _handshakePending = _tlsEstablished = _closeNotifyPending = false;
        _tlsProtocol = SslProtocols.None;
        _tlsCipherSuite = default;
        _tlsTask = default;
        _tlsRead = default;
        _tlsWrite = default;
    }

    // Read by the handler from within a callback, on the thread that holds Running: no lock.
    public bool TryGetTls(int generation, out SslProtocols protocol, out TlsCipherSuite cipherSuite)
    {
        protocol = _tlsProtocol;
        cipherSuite = _tlsCipherSuite;
        return protocol != SslProtocols.None && (int)(Volatile.Read(ref _state) >> 32) == generation;
    }
}
