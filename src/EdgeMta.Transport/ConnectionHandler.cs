// The one seam between the transport and whatever protocol runs on top of it.
//
// What it is: a handler is given the bytes received so far and answers how many it consumed; the
// transport keeps the rest and offers them again with more (the Garnet IMessageConsumer shape). Replies
// are written to an IBufferWriter<byte>; everything written during one pass over the received bytes (a
// pipelined batch, RFC 2920) leaves in ONE send.
//
// TLS is a status too (HandlerStatus.StartTls): the transport switches the connection to a TLS stream and
// calls OnTlsEstablished; the handler never sees a certificate, a record or a handshake byte.
//
// Time: two bounds on a wait for input, the earlier one wins.
// - The idle timeout (SetIdleTimeout) restarts on every wait, so every received byte restarts it. Alone it
//   bounds a silent client only: one byte every 20 s would hold a connection for ever.
// - The request deadline (SetRequestDeadline, RequestDeadline.cs) is the handler's: it arms one when it starts
//   waiting for a new request (after it answered the last one, or when message text begins) and received bytes
//   never move it, so a request must be complete within its timeout of when it began to be awaited (Postfix's
//   smtpd_per_request_deadline). A transfer deadline also earns N / rate seconds per read of N bytes (Postfix's
//   smtpd_min_data_rate). The zero-byte idle wait is unchanged: an armed deadline is a few fields, no buffer.
//   The clock stops while the handler has paused the connection (the server's wait is not the client's); a
//   server under stress may shorten every armed request deadline at once (TransportServer.ShortenRequestDeadlines).
//   When either bound passes the handler hears OnTimedOut; what to answer is its business.
//
// What it is not: the transport knows nothing of lines, commands or SMTP. It never parses, never
// answers on its own (except through the factory's rejection reply) and never interprets a timeout:
// it only tells the handler that one happened.
//
// Threading contract: calls on one handler never overlap and are never re-entered; they may come from
// any thread, including the socket engine's epoll thread when DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1
// is set, so a handler must never block (no fsync, no Wait()): answer Pause and call Resume() later.
// An exception thrown by a handler closes that connection (abortively) and is reported through
// ITransportLog; it never reaches the socket engine.
using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;

namespace EdgeMta.Transport;

/// <summary>What the handler wants after a callback.</summary>
public enum HandlerStatus
{
    /// <summary>Send what was written and keep reading.</summary>
    Continue,

    /// <summary>
    /// Send what was written, then neither read, process input nor time out until
    /// <see cref="ConnectionInfo.Resume"/> is called (from any thread, even before the callback returned).
    /// The next callback is then <see cref="IConnectionHandler.OnResumed"/>.
    /// </summary>
    Pause,

    /// <summary>Send what was written, then close gracefully (FIN, then wait briefly for the peer's FIN).</summary>
    Close,

    /// <summary>
    /// Send what was written (STARTTLS's 220), drop every input byte the transport still keeps (the handler
    /// consumed what it was offered; anything pipelined after STARTTLS is never offered, CVE-2011-0411), then
    /// run the TLS handshake as the server with <see cref="TransportOptions.TlsCertificate"/>. On success the
    /// next callback is <see cref="IConnectionHandler.OnTlsEstablished"/> and every byte after it moves
    /// through TLS, with the same contract as before; on failure or timeout the connection closes (OnClosed).
    /// Valid from OnOpened (implicit TLS, RFC 8314), OnReceived and OnResumed, once per connection, and only
    /// with a certificate configured; anywhere else it faults the connection.
    /// </summary>
    StartTls,

    /// <summary>
    /// Outbound connections only (<see cref="IOutboundHandler"/>): send what was written, and once all of it has
    /// left call <see cref="IOutboundHandler.OnWritable"/> for more, without offering input in between (input
    /// that arrives meanwhile is kept and offered after a callback answers Continue). For message data longer
    /// than <see cref="TransportOptions.MaxOutputBytes"/>: write a chunk, answer WriteMore, write the next.
    /// </summary>
    WriteMore,
}

/// <summary>Why the transport turned a connection away at accept.</summary>
public enum ConnectionRejection
{
    /// <summary>The server holds its global maximum of connections.</summary>
    TooManyConnections,

    /// <summary>The remote address holds its maximum of connections.</summary>
    TooManyFromAddress,
}

/// <summary>One connection's protocol state. Created (or taken from a pool) by an <see cref="IConnectionHandlerFactory"/>.</summary>
public interface IConnectionHandler
{
    /// <summary>The connection is open: write the greeting (or nothing, to wait for a timeout first).</summary>
    HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output);

    /// <summary>
    /// Bytes arrived. <paramref name="input"/> starts with what was left unconsumed last time.
    /// Set <paramref name="consumed"/> to the bytes fully handled (0..input.Length); the rest is kept and
    /// offered again with more. While the handler consumes something and answers Continue, the remaining
    /// bytes are offered again at once, within the same pass (and the same send).
    /// </summary>
    HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed);

    /// <summary>Called once after the handler answered Pause and then <see cref="ConnectionInfo.Resume"/> was called.
    /// Input kept while paused is offered through OnReceived right after, if this answers Continue.</summary>
    HandlerStatus OnResumed(IBufferWriter<byte> output);

    /// <summary>Nothing arrived for the handler's current idle timeout (<see cref="ConnectionInfo.SetIdleTimeout"/>), or
    /// the request deadline (<see cref="ConnectionInfo.SetRequestDeadline"/>) ran out, whichever came first. Never
    /// called while paused or while a send is pending. The request deadline is spent (cleared) by then; Continue
    /// re-arms the idle timeout only.</summary>
    HandlerStatus OnTimedOut(IBufferWriter<byte> output);

    /// <summary>The server is stopping. Called at most once, between other callbacks, never while paused.
    /// Answer Close when the session may go now, Continue to finish what it is doing first (and answer
    /// Close later); the transport closes whatever is left when the stop deadline passes.</summary>
    HandlerStatus OnShutdown(IBufferWriter<byte> output);

    /// <summary>The TLS handshake asked for with <see cref="HandlerStatus.StartTls"/> succeeded (RFC 3207 §4.2:
    /// the protocol starts over). Nothing has been read since the handler's StartTls. The default does
    /// nothing, for handlers that never ask for TLS.</summary>
    HandlerStatus OnTlsEstablished(IBufferWriter<byte> output) => HandlerStatus.Continue;

    /// <summary>Always called exactly once, last, after the socket is closed. Release resources here.</summary>
    void OnClosed();
}

/// <summary>Makes handlers and answers for connections turned away.</summary>
public interface IConnectionHandlerFactory
{
    /// <summary>A handler for a new connection (new or from the factory's own pool).</summary>
    IConnectionHandler Create();

    /// <summary>Gives back a handler after its <see cref="IConnectionHandler.OnClosed"/>.</summary>
    void Return(IConnectionHandler handler);

    /// <summary>Writes the reply for a connection over a limit (e.g. "421 4.7.0 ..."); the transport
    /// sends it and closes. Must not block.</summary>
    void WriteRejection(ConnectionInfo info, ConnectionRejection reason, IBufferWriter<byte> output);
}

/// <summary>
/// What a <see cref="ConnectionInfo"/> controls: the transport's <c>Connection</c>, or a test kit's in-memory
/// one (tests/EdgeMta.TestKit), so that a handler can be driven with no socket. Calls carry the generation
/// the info was made with; a control ignores one that is not its current generation.
/// </summary>
internal interface IConnectionControl
{
    bool RequestResume(int generation);

    void SetIdleTimeout(int generation, TimeSpan timeout);

    void SetRequestDeadline(int generation, RequestDeadline deadline);

    bool TryGetTls(int generation, out SslProtocols protocol, out TlsCipherSuite cipherSuite);
}

/// <summary>
/// The handler's view of its connection: who is on the other end, and the two controls it has
/// (Resume, idle timeout). A small copyable value; it carries the connection's generation, so a
/// Resume() that arrives after the connection closed (and its pooled object was reused) is ignored.
/// </summary>
public readonly struct ConnectionInfo
{
    // An interface, not the sealed Connection, so that a test kit can stand in for the socket: one
    // interface call per Resume (per message) and per changed timeout, nothing per byte.
    private readonly IConnectionControl? _connection;
    private readonly int _generation;

    internal ConnectionInfo(IConnectionControl connection, int generation, long id, IPEndPoint? remote, IPEndPoint? local,
        IPEndPoint? client = null, IPEndPoint? proxy = null)
    {
        _connection = connection;
        _generation = generation;
        Id = id;
        RemoteEndPoint = remote;
        LocalEndPoint = local;
        ClientEndPoint = client ?? remote;
        ProxyEndPoint = proxy;
    }

    /// <summary>A number unique within this server's lifetime, for logs and queue ids.</summary>
    public long Id { get; }

    /// <summary>The socket peer's address and port (the proxy's, behind a PROXY listener).</summary>
    public IPEndPoint? RemoteEndPoint { get; }

    /// <summary>The client: the one a PROXY header named, else the socket peer (also for a v2 LOCAL health
    /// check). Every per-client decision, the log's client= and the Received: header use this
    /// (docs/SCREENING.md, "PROXY protocol").</summary>
    public IPEndPoint? ClientEndPoint { get; }

    /// <summary>The proxy (the socket peer) when a PROXY header named the client; null otherwise.</summary>
    public IPEndPoint? ProxyEndPoint { get; }

    /// <summary>The address and port the client connected to.</summary>
    public IPEndPoint? LocalEndPoint { get; }

    /// <summary>
    /// Ends a Pause: the transport will call OnResumed. Safe from any thread, and before the callback
    /// that answered Pause has returned. When no other thread is driving the connection, OnResumed and
    /// the send that follows run on the calling thread, before Resume returns: call it from a thread that
    /// may do that work (never while holding a lock the handler takes). Returns false if this connection
    /// has already closed.
    /// </summary>
    public bool Resume() => _connection is not null && _connection.RequestResume(_generation);

    /// <summary>
    /// The idle timeout from the next wait for input on (RFC 5321 §4.5.3.2: 5 minutes for commands,
    /// 10 minutes inside DATA). Resolution is one second. Call it from within a callback.
    /// </summary>
    public void SetIdleTimeout(TimeSpan timeout) => _connection?.SetIdleTimeout(_generation, timeout);

    /// <summary>
    /// Arms the request deadline from now (RequestDeadline.cs), replacing the one before; <see cref="RequestDeadline.None"/>
    /// clears it. Received bytes never restart it (a transfer's only earn time at its minimum rate), so a client
    /// trickling a byte at a time is cut when it runs out, however often it sends. Arm it when the handler starts
    /// waiting for a new request; the transport stops it while paused, ends it with OnTimedOut, and forgets it then.
    /// Call it from within a callback.
    /// </summary>
    public void SetRequestDeadline(RequestDeadline deadline) => _connection?.SetRequestDeadline(_generation, deadline);

    /// <summary>
    /// The TLS version and cipher suite the handshake negotiated, from OnTlsEstablished on (rspamd's TLS-Version and
    /// TLS-Cipher, docs/SCREENING.md); false in plaintext, before the handshake, and once the connection closed.
    /// Call it from within a callback (it reads the connection's own state, unsynchronised).
    /// </summary>
    public bool TryGetTls(out SslProtocols protocol, out TlsCipherSuite cipherSuite)
    {
        if (_connection is not null)
        {
            return _connection.TryGetTls(_generation, out protocol, out cipherSuite);
        }
        protocol = SslProtocols.None;
        cipherSuite = default;
        return false;
    }
}
