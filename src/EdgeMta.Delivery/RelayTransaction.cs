// What the delivery agent hands the relay client session, and what the session hands back
// (docs/DELIVERY.md "What a delivery attempt does", "Replies, per recipient").
//
// A transaction is one message to one next hop over one connection: the envelope as the spool stored it
// (reverse path and parameters exactly as received, one forward path and parameters per recipient) and the
// spooled octets, which are sent exactly (dot-stuffed for DATA, as is for BDAT). The session fills one
// RecipientOutcome per recipient and calls IRelayWork.Completed once; the agent journals and logs them.
// What it is not: a queue entry (QueueEntry.cs) or a journal record. It owns no memory: Data stays valid until
// Completed is called for it (the agent rents it and returns it then).
using System.Net.Security;

namespace EdgeMta.Delivery;

/// <summary>What became of one recipient in one attempt.</summary>
public enum OutcomeKind : byte
{
    /// <summary>No word yet (the transaction is still running, or was never started).</summary>
    None,
    /// <summary>2xx after the data (SMTP: to the final dot or last BDAT; LMTP: this recipient's own reply).</summary>
    Delivered,
    /// <summary>5xx to RCPT or to the data, or a missing extension the message needs (5.6.7, 5.6.3, 5.3.4), or a
    /// loop (5.4.6): final, a bounce is due.</summary>
    Failed,
    /// <summary>4xx, a timeout or a lost connection: tried again later.</summary>
    Deferred,
}

/// <summary>One recipient's result. <see cref="Reply"/> is the reply line(s) as received, or the session's own
/// words for a local decision ("5.6.7 next hop does not offer SMTPUTF8"), at most 512 characters.</summary>
public struct RecipientOutcome
{
    public OutcomeKind Kind;
    /// <summary>The reply code (0 when no reply caused it: a timeout or lost connection).</summary>
    public ushort Code;
    /// <summary>The enhanced status code (RFC 3463) from the reply, else the session's default for the case
    /// (5.0.0 / 4.0.0 per docs/DELIVERY.md "Bounces").</summary>
    public EnhancedStatusCode Status;
    public string Reply;
    /// <summary>The connection was lost after the final dot and before its reply (RFC 1047): deferred, and
    /// logged as possibly delivered.</summary>
    public bool PossiblyDelivered;
    /// <summary>Delivered to a next hop without DSN while the sender asked NOTIFY=SUCCESS: the agent sends the
    /// sender a "relayed" notice itself.</summary>
    public bool RelayedWithoutDsn;
}

/// <summary>One message to send over a session. Made and recycled by the agent.</summary>
public sealed class RelayTransaction
{
    /// <summary>For logs only.</summary>
    public string QueueId { get; set; } = "";
    /// <summary>The reverse path as stored (e.g. "a@b", empty for the null sender &lt;&gt;).</summary>
    public ReadOnlyMemory<byte> ReversePath { get; set; }
    /// <summary>MAIL parameters as received ("SIZE=10 BODY=8BITMIME"), empty when none.</summary>
    public ReadOnlyMemory<byte> MailParameters { get; set; }
    /// <summary>Forward paths as stored, one per recipient of this transaction.</summary>
    public List<ReadOnlyMemory<byte>> Recipients { get; } = new();
    /// <summary>RCPT parameters as received, parallel to Recipients.</summary>
    public List<ReadOnlyMemory<byte>> RecipientParameters { get; } = new();
    /// <summary>The spooled octets (header and body, Received: included), without the final dot.</summary>
    public ReadOnlyMemory<byte> Data { get; set; }
    /// <summary>Filled by the session, parallel to Recipients; the agent sizes it (Reset).</summary>
    public RecipientOutcome[] Outcomes { get; private set; } = [];
    /// <summary>The agent's own reference (its queue entry and the recipient indexes this transaction carries).</summary>
    public object? Tag { get; set; }

    /// <summary>Clears the recipients and sizes Outcomes for <paramref name="recipients"/>.</summary>
    public void Reset(int recipients)
    {
        Recipients.Clear();
        RecipientParameters.Clear();
        if (Outcomes.Length < recipients) Outcomes = new RecipientOutcome[Math.Max(recipients, 8)];
        Array.Clear(Outcomes);
        Tag = null;
    }
}

/// <summary>How a session ended, for the next hop's health (docs/DELIVERY.md "The next hop as a whole").</summary>
public enum SessionEnd : byte
{
    /// <summary>QUIT after the work ran out, or the connection reached its reuse limits.</summary>
    Normal,
    /// <summary>Connect refused or timed out.</summary>
    ConnectFailed,
    /// <summary>A 4xx/5xx or 421 greeting, or a 4xx/5xx to EHLO and HELO/LHLO.</summary>
    Refused,
    /// <summary>--relay-tls require/verify and STARTTLS was not offered, or the handshake failed.</summary>
    TlsFailed,
    /// <summary>The greeting or EHLO reply names our own hostname: recipients fail with 5.4.6.</summary>
    Loop,
    /// <summary>Lost or timed out in the middle of the dialogue (after a successful greeting).</summary>
    Broken,
    /// <summary>The server is stopping.</summary>
    Shutdown,
}

/// <summary>The agent's side of a session. Called on transport threads, never concurrently for one session;
/// implementations must not block.</summary>
public interface IRelayWork
{
    /// <summary>The next transaction for this connection, or false to say QUIT. Called after the greeting and
    /// EHLO (and STARTTLS) succeeded, and after each completed transaction while the connection's reuse limits
    /// (300 s, 1000 transactions) allow.</summary>
    bool TryNext(out RelayTransaction transaction);

    /// <summary>Every recipient of <paramref name="transaction"/> has an outcome (Deferred for the ones the
    /// session could not finish). Called once per transaction handed out, also when the connection breaks.</summary>
    void Completed(RelayTransaction transaction);

    /// <summary>TryNext said false: may the connection wait, idle, for more work (docs/DELIVERY.md: connections are
    /// reused, idle at most 10 s)? True: the session pauses until <see cref="RelayClientSession.Wake"/>, then asks
    /// TryNext again (and Park again, which the agent answers false once the idle limit has passed). False: QUIT now.
    /// </summary>
    bool Park(RelayClientSession session) => false;

    /// <summary>The session is over (the last call). <paramref name="reason"/> is one line for relay-dead logs
    /// ("connect: ConnectionRefused", "greeting: 421 4.3.2 busy").</summary>
    void Ended(SessionEnd end, string reason);
}

/// <summary>--relay-tls (docs/DELIVERY.md).</summary>
public enum RelayTlsMode : byte { None, May, Require, Verify }

/// <summary>The settings of one relay session. Timeouts are RFC 5321 §4.5.3.2's, as docs/DELIVERY.md lists.</summary>
public sealed record RelaySessionOptions
{
    public required RelayEndpoint Endpoint { get; init; }
    /// <summary>Our --hostname: said in EHLO/LHLO, and a greeting or EHLO reply naming it is a loop.</summary>
    public required string Hostname { get; init; }
    public RelayTlsMode Tls { get; init; } = RelayTlsMode.May;
    /// <summary>For Verify: an extra trust anchor (--relay-ca); null uses the system store.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? TrustAnchors { get; init; }
    public int MaxRecipients { get; init; } = 50;
    public int MaxTransactions { get; init; } = 1000;
    public TimeSpan MaxConnectionAge { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan GreetingTimeout { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan DataInitTimeout { get; init; } = TimeSpan.FromSeconds(120);
    public TimeSpan DataBlockTimeout { get; init; } = TimeSpan.FromSeconds(180);
    public TimeSpan FinalReplyTimeout { get; init; } = TimeSpan.FromSeconds(600);
    public TimeProvider Clock { get; init; } = TimeProvider.System;
    /// <summary>Built from Tls, Endpoint and TrustAnchors by the session; exposed for tests.</summary>
    public SslClientAuthenticationOptions? ClientTlsOverride { get; init; }
}
