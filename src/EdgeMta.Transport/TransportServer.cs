// The transport's public face: listen, admit connections under the limits, stop gracefully.
//
// Contract: Start binds every endpoint and takes every pre-bound listening socket (or none: a failed bind
// or a handed-over socket that is not a listening TCP socket closes all of them and throws);
// BoundEndPoints then says where it listens, ports resolved (port 0). Each accepted socket is counted
// against MaxConnections at accept, and put to the host's IConnectionGate once its client is known: at once
// on a plain listener, after the PROXY header on a proxy listener (Connection.Proxy.cs), whose untrusted
// peers are closed at accept. One over a limit is still given a connection object so the factory's refusal
// (421 4.7.0 in SMTP) is sent and the socket closed gracefully, without a handler. Outbound connections (TransportServer.Outbound.cs) share the table and the
// stop, not the limits. StopAsync stops accepting, asks every handler to finish (OnShutdown),
// waits for them up to the deadline and then closes the rest. Nothing here throws at a client's
// behaviour; only Start throws (a bind that fails).
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.ObjectPool;

namespace EdgeMta.Transport;

/// <summary>Listens on a set of endpoints and runs one <see cref="IConnectionHandler"/> per connection.</summary>
public sealed partial class TransportServer : IAsyncDisposable
{
    private readonly TransportOptions _options;
    private readonly ObjectPool<Connection> _connections;
    private readonly IConnectionGate? _gate;
    private readonly List<Listener> _listeners = new();
    private readonly IPEndPoint[] _bound;
    private readonly IPNetwork[] _proxyTrusted;
    private long _nextId;
    private SslServerAuthenticationOptions? _tlsOptions;
    private Task? _stopping;

    /// <summary>Builds the server; nothing is bound until <see cref="Start"/>.</summary>
    public TransportServer(TransportOptions options, IConnectionHandlerFactory factory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReceiveBufferSize, 1024);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxInputBytes, options.ReceiveBufferSize);
        _options = options;
        Factory = factory;
        Log = options.Log;
        ReceiveBufferSize = options.ReceiveBufferSize;
        WaitForDataBeforeTakingBuffer = options.WaitForDataBeforeTakingBuffer;
        MaxInputBytes = options.MaxInputBytes;
        MaxOutputBytes = options.MaxOutputBytes;
        DefaultIdleTimeoutMs = ToMilliseconds(options.DefaultIdleTimeout);
        SendTimeoutMs = ToMilliseconds(options.SendTimeout);
        LingerTimeoutMs = ToMilliseconds(options.LingerTimeout);
        TlsHandshakeTimeoutMs = ToMilliseconds(options.TlsHandshakeTimeout);
        ProxyTimeoutMs = ToMilliseconds(options.ProxyTimeout);
        _gate = options.Gate;
        _proxyTrusted = [.. options.ProxyTrustedNetworks];
        Clock = new TransportClock(options.TimeProvider ?? TimeProvider.System);
        if (options.TlsCertificate is { } certificate)
        {
            _tlsOptions = BuildTlsOptions(certificate, options.TlsIntermediateCertificates);
        }
        Buffers = new PinnedBufferPool(4096, Math.Max(options.MaxInputBytes, options.MaxOutputBytes), options.MaxRetainedBuffersPerSize);
        _connections = new DefaultObjectPool<Connection>(new ConnectionPolicy(this), options.MaxRetainedConnections);
        Table = new ConnectionTable(options.TimerPeriod, options.Log, Clock);
        _bound = new IPEndPoint[options.EndPoints.Count + options.ListeningSockets.Count + options.ProxyEndPoints.Count];
    }

    /// <summary>Where the server listens: <see cref="TransportOptions.EndPoints"/> in order, ports resolved,
    /// then the local addresses of <see cref="TransportOptions.ListeningSockets"/>, then
    /// <see cref="TransportOptions.ProxyEndPoints"/>.</summary>
    public IReadOnlyList<IPEndPoint> BoundEndPoints => _bound;

    /// <summary>Connection counts for the host.</summary>
    public TransportCounters Counters { get; } = new();

    /// <summary>The pinned buffers behind every receive and send (Outstanding: how many are held now).</summary>
    public PinnedBufferPool Buffers { get; }

    internal IConnectionHandlerFactory Factory { get; }
    internal ITransportLog Log { get; }
    internal ConnectionTable Table { get; }
    internal int ReceiveBufferSize { get; }
    internal bool WaitForDataBeforeTakingBuffer { get; }
    internal int MaxInputBytes { get; }
    internal int MaxOutputBytes { get; }
    internal int DefaultIdleTimeoutMs { get; }
    internal int SendTimeoutMs { get; }
    internal int LingerTimeoutMs { get; }
    internal int TlsHandshakeTimeoutMs { get; }
    internal int ProxyTimeoutMs { get; }
    internal TransportClock Clock { get; }

    /// <summary>Null when no certificate is configured; shared, read-only, by every handshake that starts while
    /// it is current. A handshake reads it once, so a replacement never changes one already under way.</summary>
    internal SslServerAuthenticationOptions? TlsOptions => Volatile.Read(ref _tlsOptions);

    /// <summary>
    /// The certificate for handshakes that start from now on (a SIGHUP reload); handshakes under way and sessions
    /// already under TLS keep the one they began with. The old certificate is not disposed here: an SslStream
    /// in flight may still hold it, and its native handles are released by the GC once none does.
    /// </summary>
    /// <exception cref="InvalidOperationException">The server was built without a certificate (STARTTLS is
    /// advertised or not from the start; a reload cannot change that).</exception>
    /// <exception cref="ArgumentException">The certificate has no private key.</exception>
    public void ReplaceTlsCertificate(X509Certificate2 certificate, X509Certificate2Collection? intermediates)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (TlsOptions is null)
        {
            throw new InvalidOperationException("The server was built without a TLS certificate.");
        }
        Volatile.Write(ref _tlsOptions, BuildTlsOptions(certificate, intermediates));
    }

    private static SslServerAuthenticationOptions BuildTlsOptions(X509Certificate2 certificate, X509Certificate2Collection? intermediates)
    {
        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException("The TLS certificate has no private key.", nameof(certificate));
        }
        // Built once per certificate: the context (its chain, checked offline) is shared by every handshake.
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13, // RFC 8996: nothing older
            ClientCertificateRequired = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
    }

    /// <summary>Binds and listens on every endpoint, takes the handed-over sockets, then starts accepting.
    /// Throws SocketException if a bind fails, ArgumentException for a handed-over socket that is not a
    /// listening TCP socket.</summary>
    public void Start()
    {
        if (_listeners.Count > 0)
        {
            throw new InvalidOperationException("The server has already started.");
        }
        try
        {
            for (int i = 0; i < _options.EndPoints.Count; i++)
            {
                var listener = new Listener(this, _options.EndPoints[i], _options.Backlog, ToMilliseconds(_options.AcceptBackoff));
                _listeners.Add(listener);
                _bound[i] = listener.BoundEndPoint;
            }
            for (int i = 0; i < _options.ListeningSockets.Count; i++)
            {
                var listener = Listener.Adopt(this, _options.ListeningSockets[i], ToMilliseconds(_options.AcceptBackoff));
                _listeners.Add(listener);
                _bound[_options.EndPoints.Count + i] = listener.BoundEndPoint;
            }
            int proxyFirst = _options.EndPoints.Count + _options.ListeningSockets.Count;
            for (int i = 0; i < _options.ProxyEndPoints.Count; i++)
            {
                var listener = new Listener(this, _options.ProxyEndPoints[i], _options.Backlog, ToMilliseconds(_options.AcceptBackoff), requireProxy: true);
                _listeners.Add(listener);
                _bound[proxyFirst + i] = listener.BoundEndPoint;
            }
        }
        catch
        {
            foreach (Listener listener in _listeners)
            {
                listener.Stop();
            }
            _listeners.Clear();
            foreach (Socket socket in _options.ListeningSockets)
            {
                socket.Dispose(); // ours from Start on, as documented; disposing twice is harmless
            }
            throw;
        }
        foreach (Listener listener in _listeners)
        {
            listener.Start();
        }
        _started = true; // from now on Connect is allowed (TransportServer.Outbound.cs)
    }

    /// <summary>
    /// Stops accepting, calls OnShutdown on every connection, waits for them to close up to
    /// <paramref name="deadline"/>, then closes the rest. Calling it again returns the same task.
    /// </summary>
    public Task StopAsync(TimeSpan deadline)
    {
        lock (_listeners)
        {
            return _stopping ??= StopCoreAsync(deadline);
        }
    }

    /// <summary>Stops at once (no grace period).</summary>
    public ValueTask DisposeAsync() => new(StopAsync(TimeSpan.Zero));

    private async Task StopCoreAsync(TimeSpan deadline)
    {
        AbortConnects();
        foreach (Listener listener in _listeners)
        {
            listener.Stop();
        }
        Table.Broadcast(ConnectionTable.Mode.Stopping, Connection.SignalShutdown);
        Task empty = Table.WhenEmpty();
        if (deadline > TimeSpan.Zero)
        {
            await Task.WhenAny(empty, Task.Delay(deadline)).ConfigureAwait(false);
        }
        if (!empty.IsCompleted)
        {
            Table.Broadcast(ConnectionTable.Mode.Aborting, Connection.SignalAbort);
            // Aborts finish as soon as no handler callback is running; a handler stuck in a callback
            // is a bug in the handler, and we do not wait for it forever.
            await Task.WhenAny(empty, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        }
        Table.Dispose();
    }

    /// <summary>Called by a listener for each accepted socket; never throws.</summary>
    internal void Admit(Socket socket, bool requireProxy)
    {
        try
        {
            socket.NoDelay = true; // replies are batched by the transport already; Nagle would only delay them
            if (requireProxy && !IsTrustedProxy(socket.RemoteEndPoint as IPEndPoint))
            {
                // Spec §5 (HAProxy's doc/proxy-protocol.txt): only trusted proxies may use the protocol. Closed at
                // accept, nothing read and nothing written (docs/SCREENING.md).
                Interlocked.Increment(ref Counters._proxyRejected);
                Log.ProxyRejected(socket.RemoteEndPoint as IPEndPoint, Proxy.ProxyRejectReason.Untrusted);
                socket.Dispose();
                return;
            }
            ConnectionRejection? rejection = TryAdmitGlobal();
            Connection connection = _connections.Get();
            connection.Start(socket, Interlocked.Increment(ref _nextId), rejection, requireProxy);
        }
        catch (Exception exception)
        {
            Log.InternalError(exception);
            socket.Dispose();
        }
    }

    private bool IsTrustedProxy(IPEndPoint? peer)
    {
        if (peer is null)
        {
            return false;
        }
        IPAddress address = peer.Address.IsIPv4MappedToIPv6 ? peer.Address.MapToIPv4() : peer.Address;
        foreach (IPNetwork network in _proxyTrusted)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Counts the connection against MaxConnections at accept, before anything is read.</summary>
    private ConnectionRejection? TryAdmitGlobal()
    {
        long open = Interlocked.Increment(ref Counters._open);
        if (_options.MaxConnections > 0 && open > _options.MaxConnections)
        {
            Interlocked.Decrement(ref Counters._open);
            return ConnectionRejection.TooManyConnections;
        }
        return null;
    }

    /// <summary>Asks the gate about the client (the socket peer, or the one its PROXY header named) once it
    /// is known; <paramref name="counted"/> is what ReleaseAdmission must give back to the gate.</summary>
    internal ConnectionRejection? TryAdmitAddress(IPAddress? address, out IPAddress? counted)
    {
        counted = null;
        if (_gate is null || address is null)
        {
            return null; // counted in the global limit only
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        ConnectionRejection? rejection = _gate.TryAdmit(address);
        if (rejection is null)
        {
            counted = address;
        }
        return rejection;
    }

    internal void ReleaseAdmission(IPAddress? address)
    {
        // The address's place first: whoever sees the open count drop (a client told a slot is free, a test waiting
        // on Counters.Open) must also find the address's place free, or a quick reconnect hears 421 for nothing.
        if (address is not null)
        {
            _gate!.Release(address);
        }
        Interlocked.Decrement(ref Counters._open);
    }

    internal void ReturnConnection(Connection connection) => _connections.Return(connection);

    /// <summary>What <see cref="ShortenRequestDeadlines"/> last asked for, in milliseconds.</summary>
    internal int ShortenedRequestMs => Volatile.Read(ref _shortenedRequestMs);

    private int _shortenedRequestMs = int.MaxValue;

    /// <summary>
    /// Every connection waiting for a request (<see cref="RequestDeadline.Request"/>, not a transfer, not paused)
    /// must now complete it within <paramref name="atMost"/> from now, if its own deadline is later: what a
    /// server under stress does to the clients it already holds (Postfix smtpd_timeout ${stress?{10}:{300}}s).
    /// Deadlines armed later are the handler's to choose. One signal per connection, driven on the thread pool.
    /// </summary>
    public void ShortenRequestDeadlines(TimeSpan atMost)
    {
        Volatile.Write(ref _shortenedRequestMs, ToMilliseconds(atMost));
        Table.Signal(Connection.SignalShorten);
    }

    private static int ToMilliseconds(TimeSpan value) => (int)Math.Clamp(value.TotalMilliseconds, 1, int.MaxValue);

    private sealed class ConnectionPolicy(TransportServer server) : IPooledObjectPolicy<Connection>
    {
        public Connection Create() => new(server);

        public bool Return(Connection obj) => true;
    }
}
