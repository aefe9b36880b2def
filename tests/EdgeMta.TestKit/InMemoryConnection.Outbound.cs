// Contract: what the in-memory connection adds for outbound handlers (src/EdgeMta.Transport/OutboundHandler.cs),
// so that a relay client session can be driven with no socket, as the real transport drives it:
// - every send is kept apart (Sends), so a test can assert the write grouping (RFC 2920 pipelining);
// - HandlerStatus.WriteMore: what was written is "sent", then OnWritable is called before any input, timeout or
//   shutdown; HoldWrites keeps the send pending until ReleaseWrite, so a test can break the connection mid-data;
// - HandlerStatus.StartTls: the input kept is dropped (the transport's CVE-2011-0411 rule), the handler's
//   ClientTlsOptions are read and kept, and the handshake "succeeds" (OnTlsEstablished) or, when TlsFailure is
//   set, fails (OnTlsFailed with that reason, then the close).
// What it does not do: real TLS (no bytes are encrypted, no certificate is checked) or partial sends.
using System.Net.Security;
using EdgeMta.Transport;

namespace EdgeMta.TestKit;

public sealed partial class InMemoryConnection
{
    private readonly List<string> _sends = [];
    private bool _writePending;
    private bool _holdWrites;
    private int _writeCredits;
    private bool _tlsEstablishPending;
    private bool _tlsFailPending;

    /// <summary>Each send, in order (Latin-1 text): what one callback (or one pass over the input) wrote.</summary>
    public IReadOnlyList<string> Sends { get { lock (_gate) return [.. _sends]; } }

    /// <summary>When true, a WriteMore stays pending (nothing else happens on the connection) until
    /// <see cref="ReleaseWrite"/>.</summary>
    public bool HoldWrites
    {
        get { lock (_gate) return _holdWrites; }
        set { lock (_gate) _holdWrites = value; }
    }

    /// <summary>A WriteMore is waiting for its OnWritable.</summary>
    public bool WritePending { get { lock (_gate) return _writePending; } }

    /// <summary>When set, the next client handshake fails with this reason.</summary>
    public string? TlsFailure { get; set; }

    /// <summary>The options the handler gave for its client handshake (null until it asked for one).</summary>
    public SslClientAuthenticationOptions? ClientTlsOptions { get; private set; }

    /// <summary>Handshakes run (succeeded or failed).</summary>
    public int TlsHandshakes { get; private set; }

    /// <summary>The pending WriteMore "has been sent": OnWritable is called (once) on this thread.</summary>
    public void ReleaseWrite()
    {
        lock (_gate)
        {
            if (!_writePending) throw new InvalidOperationException("No WriteMore is pending.");
            _writeCredits++;
        }
        Drive();
    }

    // Under the lock, from Next: the outbound steps come before shutdown, timeouts and input.
    private Step NextOutbound()
    {
        if (_tlsFailPending)
        {
            _tlsFailPending = false;
            return Step.TlsFailed;
        }
        if (_tlsEstablishPending)
        {
            _tlsEstablishPending = false;
            return Step.TlsEstablished;
        }
        if (_writePending && (!_holdWrites || _writeCredits > 0))
        {
            if (_holdWrites) _writeCredits--;
            _writePending = false;
            _inputOffered = false; // input kept during the send is offered once OnWritable answers Continue
            return Step.Writable;
        }
        return Step.None;
    }

    // Under the lock, from Apply.
    private void StartClientTls(IOutboundHandler handler)
    {
        _input.Clear();
        ClientTlsOptions = handler.ClientTlsOptions;
        TlsHandshakes++;
        if (TlsFailure is null) _tlsEstablishPending = true;
        else _tlsFailPending = true;
    }

    private void RunTlsFailed(IConnectionHandler handler)
    {
        try
        {
            ((IOutboundHandler)handler).OnTlsFailed(TlsFailure!);
        }
        catch (Exception exception)
        {
            Faulted(exception);
            return;
        }
        lock (_gate) _closeRequested = true;
    }
}
