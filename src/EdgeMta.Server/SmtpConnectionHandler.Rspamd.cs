// The handler's content check by rspamd (docs/SCREENING.md "Content check by rspamd"), only with --rspamd.
//
// Where the octets go: without --rspamd, straight into the spool record as they arrive (Store.cs), unchanged. With
// it, into a MessageBuffer in memory instead: the verdict adds header fields at the top of the message, and a
// record that has begun to stream to the spool cannot take a line at its top (src/EdgeMta.Spool/FORMAT.md,
// "Writing"). The spool record is still opened at the start of the data (its queue id names the message in our
// Received: header and in the request), and holds only the envelope until the verdict.
//
// The pause: after the final dot (or BDAT LAST) the session stops with AwaitingCommit, as for the spool commit. The
// handler sends the octets to rspamd (RspamdClient.Check) and answers Pause; no thread waits. The verdict arrives
// on a pool thread (OnRspamdDone), which resumes the connection; OnResumed then either refuses the message (550
// 5.7.1 reject, 451 4.7.1 soft reject and greylist, 451 4.7.1 for a failure under --rspamd-fail tempfail: the spool
// record is aborted, so a refused message is never committed) or writes it into the spool and starts the commit,
// which ends as every commit does (250 only once durable, RFC 5321 §6.1).
//
// Where the added fields go: right AFTER our Received: line, not before it. RFC 5322 §3.6 lets optional fields
// follow a trace block (`*(trace *optional-field / ...)`) but not precede the first one, and RFC 5321 §4.4 wants
// the Received: line to be the first thing this hop adds; after it, `X-Spam:` and `X-Spam-Score:` read as this
// hop's verdict, above anything the client sent (a forged X-Spam-Score in the client's own header stays below).
// A message accepted unscanned (a failure under --rspamd-fail accept) gets no field: nothing was scanned.
//
// Lifetime: the check in flight is held like a commit in flight (the same _commitState): a connection that closes
// meanwhile leaves the handler out of the pool until the verdict comes, and the verdict's thread then aborts the
// spool record and pools the handler (the commit path's OnCommitted does the same).
using System.Buffers;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Server.Rspamd;
using EdgeMta.Transport;

namespace EdgeMta.Server;

internal sealed partial class SmtpConnectionHandler : IRspamdWaiter
{
    private MessageBuffer? _body;
    private RspamdOutcome? _contentVerdict;
    private bool _awaitingContentCheck;

    /// <summary>At the start of the data, with --rspamd: the octets are kept in memory until the verdict.</summary>
    private void BeginBody()
    {
        if (_context.Rspamd is null) return;
        // The session's cap plus room for our Received: header (EdgeMtaServer's TraceHeaderAllowance).
        _body = new MessageBuffer(_context.SessionOptions.MaxMessageSize + 4096);
    }

    private void DropBody()
    {
        _body?.Release();
        _body = null;
    }

    private HandlerStatus StartCheck(IBufferWriter<byte> output)
    {
        if (_message is null || _body is null) return StartCommit(output);
        RspamdOutcome verdict = _contentVerdict ??= new RspamdOutcome();
        verdict.Reset();
        _awaitingContentCheck = true;
        Volatile.Write(ref _commitState, Committing);
        // TLS-Version and TLS-Cipher under TLS (docs/SCREENING.md), as the transport's handshake negotiated them.
        ReadOnlySpan<byte> tlsVersion = default;
        Span<byte> tlsCipher = stackalloc byte[MaxCipherSuiteName];
        int cipherLength = 0;
        if (_connection.TryGetTls(out SslProtocols protocol, out TlsCipherSuite suite))
        {
            tlsVersion = TlsVersionName(protocol);
            cipherLength = CipherSuiteName(suite, tlsCipher);
        }
        _context.Rspamd!.Check(_session.Envelope, _message.QueueId, tlsVersion, tlsCipher[..cipherLength], _body, verdict, this);
        return HandlerStatus.Pause;
    }

    /// <summary>Longer than any IANA cipher suite name (the longest are under 60 characters).</summary>
    private const int MaxCipherSuiteName = 96;

    // OpenSSL's spelling, which rspamd and Postfix's tls_version use; the transport negotiates only TLS 1.2 and 1.3
    // (RFC 8996 retired 1.0 and 1.1), so anything else is left out rather than guessed.
    private static ReadOnlySpan<byte> TlsVersionName(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls13 => "TLSv1.3"u8,
        SslProtocols.Tls12 => "TLSv1.2"u8,
        _ => default,
    };

    // The IANA name (TLS_AES_256_GCM_SHA384): one enum name per message, not per byte. An unnamed value or a name
    // that does not fit is left out.
    private static int CipherSuiteName(TlsCipherSuite suite, Span<byte> dest)
    {
        string name = suite.ToString();
        if (name.Length > dest.Length || !name.StartsWith("TLS_", StringComparison.Ordinal)) return 0;
        return Encoding.ASCII.GetBytes(name, dest);
    }

    // On a pool thread, once: resume the connection (OnResumed acts on the verdict), or, if it closed meanwhile,
    // finish for it.
    void IRspamdWaiter.OnRspamdDone()
    {
        ConnectionInfo connection = _connection;
        if (Interlocked.CompareExchange(ref _commitState, Idle, Committing) == Committing)
        {
            connection.Resume();
            return;
        }
        LogVerdict();
        _awaitingContentCheck = false;
        AbortCheckedMessage();
        Recycle();
        if (Interlocked.CompareExchange(ref _commitState, Idle, ClosedWhileCommitting) == ClosedWhileCommitting)
        {
            return; // the transport has not let go yet; its Return will pool the handler
        }
        Volatile.Write(ref _commitState, Idle);
        _context.ReturnOrphan(this);
    }

    /// <summary>OnResumed after the verdict: refuse the message, or spool it and start its commit.</summary>
    private HandlerStatus AfterContentCheck(IBufferWriter<byte> output)
    {
        _awaitingContentCheck = false;
        LogVerdict();
        RspamdOutcome v = _contentVerdict!;
        Span<byte> reply = stackalloc byte[RspamdReplies.MaxReplyLength];
        int length = 0;
        ReadOnlySpan<byte> text = v.SmtpMessage.AsSpan(0, v.SmtpMessageLength);
        if (v.Failure != RspamdFailure.None)
        {
            if (_context.Rspamd!.Options.Fail == RspamdFailMode.Tempfail)
            {
                RspamdReplies.Unavailable.CopyTo(reply);
                length = RspamdReplies.Unavailable.Length;
            }
        }
        else if (v.Action == RspamdAction.Reject)
        {
            length = RspamdReplies.WriteRefusal(reply, permanent: true, text);
        }
        else if (v.Action is RspamdAction.SoftReject or RspamdAction.Greylist)
        {
            length = RspamdReplies.WriteRefusal(reply, permanent: false, text);
        }
        if (length > 0)
        {
            AbortCheckedMessage(); // a refused message is never committed
            return After(_session.CompleteMessage(CommitOutcome.Refused, output, reply[..length]), output);
        }
        SpoolCheckedMessage(v.Failure == RspamdFailure.None);
        return StartCommit(output);
    }

    // The accepted message into its spool record: our Received: line, the verdict's fields, then the rest.
    private void SpoolCheckedMessage(bool scanned)
    {
        MessageBuffer body = _body!;
        _body = null;
        Spool.SpoolMessage message = _message!;
        int received = scanned ? body.FirstFieldLength() : 0;
        Span<byte> fields = stackalloc byte[RspamdReplies.MaxHeadersLength];
        for (int i = 0; i < body.ChunkCount; i++)
        {
            ReadOnlySpan<byte> chunk = body.Chunk(i);
            if (i == 0 && scanned)
            {
                message.Append(chunk[..received]);
                int n = RspamdReplies.WriteHeaders(fields, _contentVerdict!.Action, _contentVerdict.Score, _contentVerdict.RequiredScore);
                message.Append(fields[..n]);
                chunk = chunk[received..];
            }
            message.Append(chunk);
        }
        body.Release();
    }

    private void AbortCheckedMessage()
    {
        DropBody();
        _message?.Abort();
        _message = null;
    }

    // One line per message: the verdict (`rspamd id=... action=... score=...`), or the failure and what it meant.
    private void LogVerdict()
    {
        RspamdOutcome v = _contentVerdict!;
        ReadOnlySpan<byte> id = _message is null ? default : _message.QueueId;
        if (v.Failure == RspamdFailure.None)
        {
            Span<byte> score = stackalloc byte[RspamdReplies.MaxHeadersLength];
            int n = RspamdReplies.WriteHeaders(score, RspamdAction.NoAction, v.Score, v.RequiredScore);
            // "X-Spam-Score: S / R\r\n" → S and R
            ReadOnlySpan<byte> s = score[14..(n - 2)];
            int slash = s.IndexOf(" / "u8);
            _context.Log.Begin(LogEvent.Rspamd)
                .Field("id"u8, id)
                .Field("client"u8, ClientAddress)
                .Field("action"u8, RspamdResult.LabelOf(v.Action))
                .Field("score"u8, s[..slash])
                .Field("required"u8, s[(slash + 3)..])
                .Field("ms"u8, v.Milliseconds)
                .End();
            return;
        }
        _context.Log.Begin(LogEvent.RspamdFailed)
            .Field("id"u8, id)
            .Field("client"u8, ClientAddress)
            .Field("reason"u8, FailureLabel(v.Failure))
            .Field("detail"u8, v.Detail)
            .Field("fail"u8, _context.Rspamd!.Options.Fail == RspamdFailMode.Tempfail ? "tempfail"u8 : "accept"u8)
            .Field("ms"u8, v.Milliseconds)
            .End();
    }

    private static ReadOnlySpan<byte> FailureLabel(RspamdFailure failure) => failure switch
    {
        RspamdFailure.Connect => "connect"u8,
        RspamdFailure.Timeout => "timeout"u8,
        RspamdFailure.Protocol => "protocol"u8,
        _ => "stopping"u8,
    };
}
