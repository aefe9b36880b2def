// Settings read once, when the server is built; the hot path only reads the precomputed fields.
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace EdgeMta.Transport;

/// <summary>How the transport listens, what it holds per connection, and when it gives up on one.</summary>
public sealed class TransportOptions
{
    /// <summary>Where to listen (IPv4 and IPv6; port 0 picks a free port, see <see cref="TransportServer.BoundEndPoints"/>).</summary>
    public IList<IPEndPoint> EndPoints { get; } = new List<IPEndPoint>();

    /// <summary>
    /// Sockets already bound and listening (TCP), handed over by whoever started the process (a service
    /// manager's socket activation): served beside <see cref="EndPoints"/>, with their own backlog, and owned
    /// by the server from <see cref="TransportServer.Start"/> on (closed at stop, or when Start fails).
    /// </summary>
    public IList<Socket> ListeningSockets { get; } = new List<Socket>();

    /// <summary>
    /// Listeners whose every connection must begin with a PROXY header, v1 or v2 (HAProxy's
    /// doc/proxy-protocol.txt; docs/SCREENING.md, --listen-proxy): bound after <see cref="EndPoints"/> and
    /// <see cref="ListeningSockets"/>. Plain listeners never look for a header (spec §5: no guessing).
    /// </summary>
    public IList<IPEndPoint> ProxyEndPoints { get; } = new List<IPEndPoint>();

    /// <summary>Who may connect to a <see cref="ProxyEndPoints"/> listener (--proxy-trusted); any other peer is
    /// closed at accept without a byte read (spec §5; maddy's trust-all default was a security fix, 0.9.6).</summary>
    public IList<IPNetwork> ProxyTrustedNetworks { get; } = new List<IPNetwork>();

    /// <summary>The PROXY header must be complete this long after accept; one deadline, not re-armed per byte
    /// (Postfix's smtpd_upstream_proxy_timeout is 5 s; the spec asks for at least 3 s, a TCP retransmit).</summary>
    public TimeSpan ProxyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>listen(2) backlog.</summary>
    public int Backlog { get; set; } = 512;

    /// <summary>Connections admitted at once; one more is answered by the factory's rejection and closed. 0: no limit.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Per-client admission once the client is known (after the PROXY header on a proxy listener):
    /// the per-address limit and its exemptions live behind it, in the host. Null: every client is admitted.</summary>
    public IConnectionGate? Gate { get; set; }

    /// <summary>Size of the buffer taken when data is ready to read (a power of two, at least 1 KiB).
    /// 16 KiB: loopback TCP reaches full speed at 16 KiB transfers (docs/PERF-NOTES.md).</summary>
    public int ReceiveBufferSize { get; set; } = 16 * 1024;

    /// <summary>
    /// Wait for input with a zero-byte receive, taking a buffer only when data is ready (default). Idle
    /// connections then hold no buffer (docs/PERF-NOTES.md: 3.3 KB instead of 19.3 KB each), at the price of one
    /// more recv(2) per wait: measured here, 2 recvfrom + 1 sendto + ~0.9 epoll_wait per command round
    /// trip. False: post the real receive at once and keep the buffer while idle.
    /// </summary>
    public bool WaitForDataBeforeTakingBuffer { get; set; } = true;

    /// <summary>Most unconsumed input kept for a handler; a handler that lets more pile up is closed.
    /// The protocol caps its own lines far below this (512 octets); this only stops a runaway.</summary>
    public int MaxInputBytes { get; set; } = 64 * 1024;

    /// <summary>Most output one pass may write; writing more faults the handler (replies are small).</summary>
    public int MaxOutputBytes { get; set; } = 256 * 1024;

    /// <summary>Pinned buffers of each size kept for reuse (buffers beyond this are left to the GC).</summary>
    public int MaxRetainedBuffersPerSize { get; set; } = 1024;

    /// <summary>Connection objects (with their two SocketAsyncEventArgs) kept for reuse. The ObjectPool
    /// default would be ProcessorCount * 2, far too few under churn.</summary>
    public int MaxRetainedConnections { get; set; } = 1024;

    /// <summary>Idle timeout until the handler sets its own (RFC 5321 §4.5.3.2 command timeout: 5 minutes).</summary>
    public TimeSpan DefaultIdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A send that makes no progress for this long closes the connection (a client that stopped reading).</summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>After our FIN, how long to wait for the peer's FIN before closing anyway.</summary>
    public TimeSpan LingerTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often deadlines are checked (the timeout resolution).</summary>
    public TimeSpan TimerPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>First pause after accept fails for lack of descriptors or memory; doubles up to 1 s.</summary>
    public TimeSpan AcceptBackoff { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>The server certificate, with its private key, for connections whose handler answers
    /// <see cref="HandlerStatus.StartTls"/>. Null: no TLS (a StartTls answer faults the connection).</summary>
    public X509Certificate2? TlsCertificate { get; set; }

    /// <summary>Intermediate certificates sent with <see cref="TlsCertificate"/> in every handshake (may be null).</summary>
    public X509Certificate2Collection? TlsIntermediateCertificates { get; set; }

    /// <summary>A TLS handshake not finished by then closes the connection (Postfix's smtpd_starttls_timeout
    /// is 300 s; a handshake is a few round trips, so one minute is generous).</summary>
    public TimeSpan TlsHandshakeTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The clock of every deadline and of the sweep that checks them (TransportClock.cs). Tests pass a
    /// fake one and advance it instead of sleeping; the default reads the system's monotonic clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Where the transport reports what it cannot return to anyone (faults, accept trouble).</summary>
    public ITransportLog Log { get; set; } = NullTransportLog.Instance;
}
