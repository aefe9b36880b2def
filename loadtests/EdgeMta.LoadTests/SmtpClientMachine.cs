namespace EdgeMta.LoadTests;

/// <summary>What the runner must write next, in this order: EHLO, RSET, MAIL, RCPT, DATA, the message
/// body (with its dot), a lone dot, QUIT. Several flags at once are one pipelined group (RFC 2920).</summary>
[Flags]
public enum Commands : ushort
{
    None = 0,
    Ehlo = 1,
    Rset = 2,
    Mail = 4,
    Rcpt = 8,
    Data = 16,
    Body = 32,
    LoneDot = 64,   // ends a DATA the server accepted after the message had already failed
    Quit = 128,
}

/// <summary>What the runner does after writing: read a reply, connect, take the next message
/// (the session is idle and in sequence for MAIL), or close the connection.</summary>
public enum NextMove : byte { AwaitReply, Connect, Ready, Close }

public enum MessageOutcome : byte { None, Delivered, Failed }

public readonly record struct Decision(Commands Send, NextMove Next, MessageOutcome Outcome = MessageOutcome.None,
    SmtpStep Step = SmtpStep.Connect, int Code = 0);

/// <summary>
/// The client side of one SMTP connection as a pure state machine: it is told what happened (connected,
/// a reply with its code, the connection closed, a timeout) and answers what to send and what to do next.
/// It knows no sockets and no clock (timestamps are given), so it is tested against canned replies.
///
/// What it checks (so a server that drops mail cannot look fast): 220 to the greeting, 250 to EHLO, MAIL
/// and RSET, 250 or 251 to RCPT (RFC 5321 §3.4), 354 to DATA, and exactly 250 after the end-of-data dot;
/// only that last one delivers a message. Any other reply fails the message in flight, filed under the
/// step and the code of the first unexpected reply; a connection that closes, or a reply that does not
/// parse, while a reply is due fails it too (FailureCode.Closed / Malformed). 421 means the server is
/// closing the channel (RFC 5321 §3.8), so the machine closes too. After a failed MAIL/RCPT/DATA the
/// machine sends RSET (§4.1.1.5) so the session stays usable; after a failed greeting or EHLO it closes.
///
/// With pipelining (wanted, and advertised in the EHLO reply) MAIL, RCPT and DATA go as one group, DATA
/// last (RFC 2920 §3.1); the body and its dot go after 354; when the connection closes after the message,
/// QUIT is pipelined after the dot. Without it, one command per round trip, as smtp-source does.
/// Latency of a step runs from the moment its command was written to its reply, so a pipelined RCPT's
/// latency includes the server's work on the MAIL before it.
/// </summary>
public sealed class SmtpClientMachine
{
    static ReadOnlySpan<byte> PipeliningKeyword => "PIPELINING"u8;

    readonly RunMetrics _metrics;
    readonly bool _pipeliningWanted;

    // Replies due, in order, with the timestamp their command was written (at most 5 at once).
    readonly SmtpStep[] _pendingStep = new SmtpStep[8];
    readonly long[] _pendingSince = new long[8];
    int _head, _count;

    bool _connected;
    bool _pipelining;
    bool _inMessage;          // a message is being sent: it will end Delivered or Failed exactly once
    bool _messageFailed;      // its outcome was reported as Failed; later replies of its group are drained
    bool _closeAfter;         // QUIT after this message (one connection per message)
    long _messageStart;

    public SmtpClientMachine(RunMetrics metrics, bool pipelining)
    {
        _metrics = metrics;
        _pipeliningWanted = pipelining;
    }

    public bool Connected => _connected;
    /// <summary>True once the server advertised PIPELINING and it was wanted.</summary>
    public bool Pipelining => _pipelining;
    public int PendingReplies => _count;

    /// <summary>A message is due. Asks for a connection first when there is none.</summary>
    public Decision StartMessage(long now, bool closeAfter)
    {
        _inMessage = true;
        _messageFailed = false;
        _closeAfter = closeAfter;
        _messageStart = now;
        return _connected ? SendEnvelope(now) : new Decision(Commands.None, NextMove.Connect);
    }

    public Decision ConnectSucceeded(long connectStart, long now)
    {
        _connected = true;
        _pipelining = false;
        _head = _count = 0;
        _metrics.CountConnection();
        _metrics.RecordLatency(SmtpStep.Connect, now - connectStart);
        Expect(SmtpStep.Greeting, now);
        return new Decision(Commands.None, NextMove.AwaitReply);
    }

    public Decision ConnectFailed(long now)
    {
        _connected = false;
        return Fail(now, SmtpStep.Connect, FailureCode.ConnectError, Commands.None, NextMove.Close);
    }

    /// <summary>The connection ended (EOF, reset, or a write failed). Fails the message in flight, if any.</summary>
    public Decision ConnectionLost(long now) => Lost(now, FailureCode.Closed);

    /// <summary>No reply came within the timeout; the runner closes the socket.</summary>
    public Decision TimedOut(long now) => Lost(now, FailureCode.Timeout);

    /// <summary>The bytes received are not an SMTP reply; the runner closes the socket.</summary>
    public Decision MalformedReply(long now) => Lost(now, FailureCode.Malformed);

    /// <summary>One whole reply arrived; <paramref name="reply"/> is its bytes (read for EHLO keywords).</summary>
    public Decision OnReply(int code, ReadOnlySpan<byte> reply, long now)
    {
        if (_count == 0) return Lost(now, FailureCode.Malformed);   // a reply nobody asked for
        SmtpStep step = _pendingStep[_head];
        long since = _pendingSince[_head];
        _head = (_head + 1) & 7;
        _count--;
        _metrics.RecordLatency(step, now - since);
        _metrics.CountReply(step, code);

        if (code == 421 && step != SmtpStep.Quit)
            return Fail(now, step, code, Commands.None, NextMove.Close);

        switch (step)
        {
            case SmtpStep.Greeting:
                if (code != 220) return Fail(now, step, code, Commands.Quit, NextMove.Close);
                Expect(SmtpStep.Ehlo, now);
                return new Decision(Commands.Ehlo, NextMove.AwaitReply);

            case SmtpStep.Ehlo:
                if (code != 250) return Fail(now, step, code, Commands.Quit, NextMove.Close);
                _pipelining = _pipeliningWanted && SmtpReplyReader.HasEhloKeyword(reply, PipeliningKeyword);
                return _inMessage ? SendEnvelope(now) : new Decision(Commands.None, NextMove.Ready);

            case SmtpStep.Mail:
                if (code != 250) return Refused(now, step, code);
                if (_count > 0) return Await();                  // pipelined: RCPT and DATA replies follow
                Expect(SmtpStep.Rcpt, now);
                return new Decision(Commands.Rcpt, NextMove.AwaitReply);

            case SmtpStep.Rcpt:
                if (code is not (250 or 251)) return Refused(now, step, code);
                if (_count > 0) return Await();
                Expect(SmtpStep.Data, now);
                return new Decision(Commands.Data, NextMove.AwaitReply);

            case SmtpStep.Data:
                if (code != 354) return Refused(now, step, code);
                Expect(SmtpStep.EndOfData, now);
                if (_messageFailed)                              // e.g. RCPT refused yet DATA accepted
                    return new Decision(Commands.LoneDot, NextMove.AwaitReply);
                if (_closeAfter && _pipelining)
                {
                    Expect(SmtpStep.Quit, now);
                    return new Decision(Commands.Body | Commands.Quit, NextMove.AwaitReply);
                }
                return new Decision(Commands.Body, NextMove.AwaitReply);

            case SmtpStep.EndOfData:
                if (_messageFailed) return AfterMessage(now, MessageOutcome.None, SmtpStep.EndOfData, code);
                if (code != 250) return Refused(now, step, code);
                _inMessage = false;
                _metrics.MessageDelivered(now, now - _messageStart);
                return AfterMessage(now, MessageOutcome.Delivered, step, code);

            case SmtpStep.Rset:
                if (code != 250) return Fail(now, step, code, Commands.Quit, NextMove.Close);
                return AfterMessage(now, MessageOutcome.None, step, code);

            default: // Quit: whatever it says, the connection is done; the codes table shows a non-221
                _connected = false;
                return new Decision(Commands.None, NextMove.Close);
        }
    }

    Decision SendEnvelope(long now)
    {
        if (_pipelining)
        {
            Expect(SmtpStep.Mail, now);
            Expect(SmtpStep.Rcpt, now);
            Expect(SmtpStep.Data, now);
            return new Decision(Commands.Mail | Commands.Rcpt | Commands.Data, NextMove.AwaitReply);
        }
        Expect(SmtpStep.Mail, now);
        return new Decision(Commands.Mail, NextMove.AwaitReply);
    }

    // MAIL, RCPT, DATA or the dot refused: the message fails once; the rest of a pipelined group is
    // drained; then RSET puts the session back in sequence.
    Decision Refused(long now, SmtpStep step, int code)
    {
        MessageOutcome outcome = MessageOutcome.None;
        if (_inMessage && !_messageFailed)
        {
            _messageFailed = true;
            _metrics.MessageFailed(now, step, code);
            outcome = MessageOutcome.Failed;
        }
        if (_count > 0) return new Decision(Commands.None, NextMove.AwaitReply, outcome, step, code);
        if (step == SmtpStep.EndOfData) return AfterMessage(now, outcome, step, code);   // server is back in state 3
        Expect(SmtpStep.Rset, now);
        return new Decision(Commands.Rset, NextMove.AwaitReply, outcome, step, code);
    }

    // The transaction is over (delivered, refused, or drained): next message on this connection, or QUIT.
    Decision AfterMessage(long now, MessageOutcome outcome, SmtpStep step, int code)
    {
        _inMessage = false;
        if (_count > 0) return new Decision(Commands.None, NextMove.AwaitReply, outcome, step, code);  // pipelined QUIT
        if (_closeAfter)
        {
            Expect(SmtpStep.Quit, now);
            return new Decision(Commands.Quit, NextMove.AwaitReply, outcome, step, code);
        }
        return new Decision(Commands.None, NextMove.Ready, outcome, step, code);
    }

    Decision Lost(long now, int failure)
    {
        SmtpStep step = _count > 0 ? _pendingStep[_head] : SmtpStep.Mail;
        bool onlyQuitDue = _count > 0 && step == SmtpStep.Quit;
        if (_count > 0) _metrics.CountReply(step, failure);
        _connected = false;
        _head = _count = 0;
        if (onlyQuitDue && !_inMessage) return new Decision(Commands.None, NextMove.Close);
        return Fail(now, step, failure, Commands.None, NextMove.Close);
    }

    Decision Fail(long now, SmtpStep step, int code, Commands send, NextMove next)
    {
        if (next == NextMove.Close) { _connected = false; _head = _count = 0; }
        if (!_inMessage || _messageFailed)
        {
            _inMessage = false;
            return new Decision(send, next);
        }
        _inMessage = false;
        _messageFailed = true;
        _metrics.MessageFailed(now, step, code);
        return new Decision(send, next, MessageOutcome.Failed, step, code);
    }

    static Decision Await() => new(Commands.None, NextMove.AwaitReply);

    void Expect(SmtpStep step, long now)
    {
        int tail = (_head + _count) & 7;
        _pendingStep[tail] = step;
        _pendingSince[tail] = now;
        _count++;
    }
}
