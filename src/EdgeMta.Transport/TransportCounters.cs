// Plain counters the host may read at any time (Interlocked on write, Volatile on read). No metrics
// library: the host decides how to publish them.
namespace EdgeMta.Transport;

/// <summary>Connection counts since the server started.</summary>
public sealed class TransportCounters
{
    internal long _open;
    internal long _accepted;
    internal long _rejected;
    internal long _timedOut;
    internal long _faulted;
    internal long _inputOverflows;
    internal long _tlsEstablished;
    internal long _tlsFailed;
    internal long _proxyAccepted;
    internal long _proxyRejected;

    /// <summary>Admitted connections currently open (rejected ones are not counted).</summary>
    public long Open => Volatile.Read(ref _open);

    /// <summary>Connections admitted since start.</summary>
    public long Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections turned away at a limit since start.</summary>
    public long Rejected => Volatile.Read(ref _rejected);

    /// <summary>Connections closed because a send made no progress, or the peer's FIN never came.</summary>
    public long SendTimedOut => Volatile.Read(ref _timedOut);

    /// <summary>Connections closed because their handler threw.</summary>
    public long Faulted => Volatile.Read(ref _faulted);

    /// <summary>Connections closed because their handler let unconsumed input grow past MaxInputBytes.</summary>
    public long InputOverflows => Volatile.Read(ref _inputOverflows);

    /// <summary>TLS handshakes that succeeded.</summary>
    public long TlsEstablished => Volatile.Read(ref _tlsEstablished);

    /// <summary>TLS handshakes that failed or timed out (each closed its connection).</summary>
    public long TlsFailed => Volatile.Read(ref _tlsFailed);

    /// <summary>PROXY headers read whole on a proxy listener (LOCAL health checks included).</summary>
    public long ProxyAccepted => Volatile.Read(ref _proxyAccepted);

    /// <summary>Connections to a proxy listener closed before their session: untrusted peer, invalid or
    /// over-long header, timeout, or the peer closing first.</summary>
    public long ProxyRejected => Volatile.Read(ref _proxyRejected);
}
