// Contract: one SMTP or LMTP client session to a next hop, on the transport's outbound connection
// (docs/DELIVERY.md "What a delivery attempt does"). It reads the greeting, says EHLO (LHLO for LMTP, RFC 2033
// §4.1; HELO after a 5xx to EHLO for SMTP, RFC 5321 §4.1.4), runs STARTTLS per --relay-tls (RFC 3207), then
// sends the transactions IRelayWork hands it, one after another over the same connection, and reports one
// outcome per recipient (IRelayWork.Completed) and how the session ended (IRelayWork.Ended, exactly once).
//
// The parts: this file holds the transport callbacks and the reply framing; .Dialogue.cs the greeting, EHLO,
// STARTTLS and QUIT; .Transaction.cs MAIL, RCPT, DATA and RSET with the parameters carried on; .Data.cs the
// message octets (dot-stuffed DATA or BDAT chunks) and the final replies; .Outcomes.cs the outcomes and the
// ends (timeouts, lost connections, shutdown).
//
// What it does not do: resolve names, connect, choose a next hop, retry, journal or bounce (the agent's), or
// decide how long an idle connection is kept (when TryNext has nothing, the agent either grants an idle wait with
// IRelayWork.Park, ended by Wake, or lets the session say QUIT). It never
// blocks, and allocates nothing per message in the steady state (reply text is made a string only when an
// outcome needs it, and the last one is kept while the server repeats it).
//
// How it fails: every reply that breaks RFC 5321 §4.2 (SmtpReplyParser), a timeout or a lost connection ends
// the session as Broken (Refused while no greeting has come: the hop is as dead as one that refuses) with the
// transaction's open recipients Deferred; nothing throws out of a callback for anything the next hop sends.
using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

/// <summary>The relay client: one outbound SMTP or LMTP session (docs/DELIVERY.md).</summary>
public sealed partial class RelayClientSession : IOutboundHandler
{
    private readonly RelaySessionOptions _options;
    private readonly IRelayWork _work;
    private readonly SslClientAuthenticationOptions _tls;
    private readonly bool _lmtp;
    private ConnectionInfo _info;
    private Phase _phase;
    private bool _ended;
    private bool _shutdownRequested;
    private long _openedAt;
    private int _transactions;

    public RelayClientSession(RelaySessionOptions options, IRelayWork work)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(work);
        _options = options;
        _work = work;
        _lmtp = options.Endpoint.IsLmtp;
        _tls = options.ClientTlsOverride ?? BuildClientTls(options);
        _hello = BuildHello(_lmtp ? "LHLO "u8 : "EHLO "u8, options.Hostname);
        _helo = BuildHello("HELO "u8, options.Hostname);
    }

    /// <summary>What the session waits for (or does) now.</summary>
    private enum Phase : byte
    {
        /// <summary>The 220 greeting (RFC 5321 §3.1).</summary>
        Greeting,
        /// <summary>The reply to EHLO or LHLO.</summary>
        Hello,
        /// <summary>The reply to HELO (SMTP only).</summary>
        Helo,
        /// <summary>The reply to STARTTLS.</summary>
        StartTls,
        /// <summary>The client handshake runs (the transport's).</summary>
        Handshake,
        /// <summary>The reply to RSET before the next transaction.</summary>
        Rset,
        /// <summary>The replies to MAIL, RCPT and DATA (pipelined or one at a time).</summary>
        Commands,
        /// <summary>Writing the DATA octets (WriteMore after each block).</summary>
        DataStream,
        /// <summary>Writing one BDAT chunk (RFC 3030).</summary>
        BdatStream,
        /// <summary>The reply to a BDAT that is not the last.</summary>
        BdatReply,
        /// <summary>The reply (LMTP: the replies) to the final dot or to BDAT LAST.</summary>
        FinalReply,
        /// <summary>A 354 came with no recipient accepted: "." was sent, its reply is read and dropped.</summary>
        Discard,
        /// <summary>QUIT or Close was answered; nothing more is read.</summary>
        Closed,
    }

    /// <inheritdoc />
    public SslClientAuthenticationOptions ClientTlsOptions => _tls;

    /// <inheritdoc />
    public HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
    {
        _info = info;
        _openedAt = _options.Clock.GetTimestamp();
        _phase = Phase.Greeting;
        // RFC 5321 §4.5.3.2.1: wait 5 minutes for the greeting.
        _info.SetIdleTimeout(_options.GreetingTimeout);
        return HandlerStatus.Continue;
    }

    /// <inheritdoc />
    public HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        consumed = 0;
        // Bounded: every pass consumes one whole reply of at least 5 octets.
        while (consumed < input.Length)
        {
            if (_phase == Phase.Closed)
            {
                consumed = input.Length;
                return HandlerStatus.Close;
            }

            var status = SmtpReplyParser.TryParse(input[consumed..], out var reply, out int used, out var error);
            if (status == ReplyParseStatus.NeedMore)
                return HandlerStatus.Continue;
            if (status == ReplyParseStatus.Error)
            {
                consumed = input.Length;
                return Break(Lost.BadReply, SmtpReplyParser.Describe(error));
            }

            consumed += used;
            var answer = OnReply(reply, output);
            if (answer != HandlerStatus.Continue)
                return answer;
        }

        return HandlerStatus.Continue;
    }

    /// <inheritdoc />
    public HandlerStatus OnWritable(IBufferWriter<byte> output) => _phase switch
    {
        Phase.DataStream => WriteData(output),
        Phase.BdatStream => WriteBdat(output),
        // Shutdown or a break came between the WriteMore and this call: nothing more to write.
        _ => HandlerStatus.Continue,
    };

    /// <inheritdoc />
    public HandlerStatus OnResumed(IBufferWriter<byte> output)
    {
        if (!_parked) return HandlerStatus.Continue;
        _parked = false;
        return NextTransaction(output);
    }

    /// <summary>Ends an idle wait the agent granted with IRelayWork.Park: the session asks for work again, on the
    /// calling thread when no other drives the connection (call it holding no lock the agent's TryNext takes).
    /// False when the connection has closed meanwhile.</summary>
    public bool Wake() => _info.Resume();

    /// <summary>Paused between transactions, waiting for <see cref="Wake"/>.</summary>
    private bool _parked;

    /// <inheritdoc />
    public HandlerStatus OnTimedOut(IBufferWriter<byte> output) => Break(Lost.TimedOut, PhaseName());

    /// <inheritdoc />
    public HandlerStatus OnShutdown(IBufferWriter<byte> output)
    {
        _shutdownRequested = true;
        // docs/DELIVERY.md "Guarantees": a clean stop never duplicates. After the final dot the next hop holds
        // the message: wait for its reply (FinalReply), then say QUIT.
        if (_tx is not null && _finalWritten)
            return HandlerStatus.Continue;
        if (_phase == Phase.Closed)
            return HandlerStatus.Close;
        bool quit = !_inData && _phase != Phase.Handshake;
        Abandon(Lost.Shutdown);
        End(SessionEnd.Shutdown, "server stopping");
        return quit ? Quit(output) : CloseNow();
    }

    /// <inheritdoc />
    public HandlerStatus OnTlsEstablished(IBufferWriter<byte> output)
    {
        // RFC 3207 §4.2: the client forgets what it knew and says EHLO again.
        _tlsActive = true;
        _extensions = SmtpExtensions.None;
        _sizeLimit = 0;
        return SendHello(output);
    }

    /// <inheritdoc />
    public void OnTlsFailed(string reason)
    {
        Abandon(Lost.Closed);
        End(SessionEnd.TlsFailed, $"TLS handshake: {reason}");
        _phase = Phase.Closed;
    }

    /// <inheritdoc />
    public void OnConnectFailed(SocketError error)
    {
        _phase = Phase.Closed;
        End(SessionEnd.ConnectFailed, $"connect: {error}");
    }

    /// <inheritdoc />
    public void OnClosed()
    {
        if (_ended)
            return;
        string where = PhaseName();
        Abandon(Lost.Closed);
        End(EndBeforeGreeting(), $"connection lost {where}");
        _phase = Phase.Closed;
    }

    private HandlerStatus OnReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        // RFC 5321 §3.8: 421 means the server is closing the channel; whatever was in flight is deferred.
        if (reply.Code == 421 && _phase is not (Phase.Greeting or Phase.Hello or Phase.Helo))
            return ServerClosing(reply);

        return _phase switch
        {
            Phase.Greeting => OnGreeting(reply, output),
            Phase.Hello => OnHello(reply, output),
            Phase.Helo => OnHelo(reply, output),
            Phase.StartTls => OnStartTlsReply(reply, output),
            Phase.Rset => OnRsetReply(reply, output),
            Phase.Commands => OnCommandReply(reply, output),
            Phase.BdatReply => OnBdatReply(reply, output),
            Phase.FinalReply => OnFinalReply(reply, output),
            Phase.Discard => Finish(output, rsetNeeded: true),
            // A reply nobody asked for (while writing data, or during the handshake): the stream is not ours to
            // trust any more (RFC 5321 §4.1.1.4: replies come one per command).
            _ => Break(Lost.BadReply, "a reply came with no command waiting for it"),
        };
    }

    private string PhaseName() => _phase switch
    {
        Phase.Greeting => "waiting for the greeting",
        Phase.Hello => _lmtp ? "after LHLO" : "after EHLO",
        Phase.Helo => "after HELO",
        Phase.StartTls => "after STARTTLS",
        Phase.Handshake => "in the TLS handshake",
        Phase.Rset => "after RSET",
        Phase.Commands => "after MAIL/RCPT/DATA",
        Phase.DataStream => "while sending data",
        Phase.BdatStream => "while sending BDAT",
        Phase.BdatReply => "after BDAT",
        Phase.FinalReply => "after the end of data",
        Phase.Discard => "after an empty DATA",
        _ => "after QUIT",
    };
}
