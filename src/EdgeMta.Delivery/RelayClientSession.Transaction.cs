// Contract: one transaction (RFC 5321 §3.3): RSET when the one before stopped half-way, MAIL, one RCPT per
// recipient, then DATA (or BDAT, .Data.cs). With PIPELINING (RFC 2920 §3.1) MAIL, every RCPT and DATA leave in
// one write and the replies are matched to them in order; without it one command waits for its reply.
// Parameters carried on (docs/DELIVERY.md): SIZE (the octets actually sent, RFC 1870 §3) when the hop offers
// SIZE, BODY (RFC 6152, RFC 3030) and SMTPUTF8 (RFC 6531) as declared, RET and ENVID on MAIL and NOTIFY and ORCPT
// on RCPT only when it offers DSN (RFC 3461 §4); every other parameter stays behind (AUTH= is this hop's own).
// A message the hop cannot take as declared is not sent: its recipients fail with the session's own words
// (5.6.7, 5.6.3, 5.3.4). It does not split recipients (the agent sizes transactions) or retry (452: the agent).
using System.Buffers;
using System.Buffers.Text;
using System.Text;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

public sealed partial class RelayClientSession
{
    private static readonly EnhancedStatusCode Utf8Status = new(5, 6, 7);
    private static readonly EnhancedStatusCode MediaStatus = new(5, 6, 3);
    private const string NoSmtpUtf8 = "5.6.7 next hop does not offer SMTPUTF8 (RFC 6531 §3.4)";
    private const string NoBinaryMime = "5.6.3 next hop does not offer BINARYMIME and CHUNKING (RFC 3030 §3)";
    private const string NoEightBitMime = "5.6.3 next hop does not offer 8BITMIME (RFC 6152 §3)";

    private RelayTransaction? _tx;
    private int _recipients;
    private bool _pipelined;
    private bool _useBdat;
    private bool _mailAccepted;
    private bool _needRset;
    /// <summary>The next reply expected in Phase.Commands: 0 MAIL, 1..n RCPT, n + 1 DATA.</summary>
    private int _replyIndex;
    /// <summary>Indexes of the recipients the hop accepted, in RCPT order (LMTP replies come in this order).</summary>
    private int[] _accepted = new int[8];
    private int _acceptedCount;

    private HandlerStatus NextTransaction(IBufferWriter<byte> output)
    {
        // Bounded: each pass hands out one transaction and MaxTransactions ends the loop.
        while (true)
        {
            if (_transactions >= _options.MaxTransactions)
            {
                End(SessionEnd.Normal, "reuse limit: transactions");
                return Quit(output);
            }

            if (_options.Clock.GetElapsedTime(_openedAt) >= _options.MaxConnectionAge)
            {
                End(SessionEnd.Normal, "reuse limit: connection age");
                return Quit(output);
            }

            if (!_work.TryNext(out var transaction))
            {
                End(SessionEnd.Normal, "no more work");
                return Quit(output);
            }

            _transactions++;
            if (Begin(transaction, output))
                return HandlerStatus.Continue;
        }
    }

    /// <summary>True when commands were written; false when the transaction was decided here and completed.</summary>
    private bool Begin(RelayTransaction transaction, IBufferWriter<byte> output)
    {
        int recipients = transaction.Recipients.Count;
        // The agent's mistake, not the next hop's: the transport closes this connection and reports it.
        if (transaction.RecipientParameters.Count < recipients || transaction.Outcomes.Length < recipients)
            throw new InvalidOperationException("A relay transaction needs parameters and an outcome per recipient (RelayTransaction.Reset).");
        _tx = transaction;
        _recipients = recipients;
        _mailAccepted = false;
        _replyIndex = 0;
        _acceptedCount = 0;
        _inData = false;
        _finalWritten = false;
        _finalSent = false;
        _lmtpNext = 0;
        if (_accepted.Length < _recipients)
            _accepted = new int[Math.Max(_recipients, _accepted.Length * 2)];

        if (_recipients == 0)
        {
            CompleteTransaction();
            return false;
        }

        if (Refusal(transaction, out var status, out string words))
        {
            for (int i = 0; i < _recipients; i++)
                transaction.Outcomes[i] = new RecipientOutcome { Kind = OutcomeKind.Failed, Status = status, Reply = words };
            CompleteTransaction();
            return false;
        }

        _pipelined = Offers(SmtpExtensions.Pipelining);
        _useBdat = Offers(SmtpExtensions.Chunking);
        _phase = Phase.Commands;
        _info.SetIdleTimeout(_options.CommandTimeout);
        if (_needRset)
        {
            // RFC 5321 §4.1.1.5: the transaction before stopped after MAIL; start clean.
            _needRset = false;
            output.Write("RSET\r\n"u8);
            _phase = Phase.Rset;
            return true;
        }

        SendCommands(output);
        return true;
    }

    /// <summary>docs/DELIVERY.md "What a delivery attempt does": the extensions this message needs from the hop.</summary>
    private bool Refusal(RelayTransaction transaction, out EnhancedStatusCode status, out string words)
    {
        var rest = transaction.MailParameters.Span;
        bool utf8 = false, binary = false, eightBit = false;
        while (NextToken(ref rest, out var token))
        {
            if (IsKeyword(token, "SMTPUTF8"u8))
                utf8 = true;
            else if (IsKeyword(token, "BODY"u8))
            {
                var value = token.Length > 5 ? token[5..] : default;
                binary = Ascii.EqualsIgnoreCase(value, "BINARYMIME"u8);
                eightBit = Ascii.EqualsIgnoreCase(value, "8BITMIME"u8);
            }
        }

        status = MediaStatus;
        words = string.Empty;
        if (utf8 && !Offers(SmtpExtensions.SmtpUtf8))
        {
            status = Utf8Status;
            words = NoSmtpUtf8;
        }
        else if (binary && !Offers(SmtpExtensions.BinaryMime | SmtpExtensions.Chunking))
            words = NoBinaryMime;
        else if (eightBit && !Offers(SmtpExtensions.EightBitMime))
            words = NoEightBitMime;
        else if (_sizeLimit > 0 && transaction.Data.Length > _sizeLimit)
        {
            // RFC 1870 §6.1: a message over the hop's fixed limit is a permanent failure, 5.3.4 (RFC 3463).
            status = new EnhancedStatusCode(5, 3, 4);
            words = $"5.3.4 message of {transaction.Data.Length} octets is larger than the next hop's SIZE {_sizeLimit}";
        }

        return words.Length > 0;
    }

    private void SendCommands(IBufferWriter<byte> output)
    {
        _phase = Phase.Commands;
        _info.SetIdleTimeout(_options.CommandTimeout);
        WriteMail(output);
        if (!_pipelined)
            return;
        for (int i = 0; i < _recipients; i++)
            WriteRcpt(output, i);
        // RFC 2920 §3.1: DATA may end the group; BDAT is sent once the RCPT replies say someone takes it.
        if (!_useBdat)
        {
            output.Write("DATA\r\n"u8);
            _inData = true;
        }
    }

    private HandlerStatus OnRsetReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code / 100 == 2)
        {
            SendCommands(output);
            return HandlerStatus.Continue;
        }

        string words = ReplyText(reply);
        string reason = $"RSET: {words}";
        DeferOpen(reply, words);
        End(SessionEnd.Broken, reason);
        return Quit(output);
    }

    private HandlerStatus OnCommandReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        var tx = _tx!;
        if (_replyIndex == 0)
        {
            _replyIndex = 1;
            _mailAccepted = reply.Code / 100 == 2;
            if (!_mailAccepted)
            {
                string words = ReplyText(reply);
                for (int i = 0; i < _recipients; i++)
                    SetOutcome(ref tx.Outcomes[i], reply, words);
            }

            if (_pipelined)
                return HandlerStatus.Continue;
            if (!_mailAccepted)
                return Finish(output, rsetNeeded: false);
            WriteRcpt(output, 0);
            return HandlerStatus.Continue;
        }

        if (_replyIndex <= _recipients)
        {
            int index = _replyIndex - 1;
            _replyIndex++;
            if (_mailAccepted)
            {
                if (reply.Code / 100 == 2)
                    _accepted[_acceptedCount++] = index;
                else
                    SetOutcome(ref tx.Outcomes[index], reply, ReplyText(reply));
            }

            bool last = index == _recipients - 1;
            if (!_pipelined && !last)
            {
                WriteRcpt(output, index + 1);
                return HandlerStatus.Continue;
            }

            if (!last)
                return HandlerStatus.Continue;
            if (_pipelined && !_useBdat)
            {
                // RFC 5321 §4.5.3.2.2: the DATA reply gets 2 minutes.
                _info.SetIdleTimeout(_options.DataInitTimeout);
                return HandlerStatus.Continue;
            }

            return AfterRecipients(output);
        }

        return OnDataReply(reply, output);
    }

    /// <summary>The last RCPT reply is in, and DATA was not pipelined.</summary>
    private HandlerStatus AfterRecipients(IBufferWriter<byte> output)
    {
        if (!_mailAccepted)
            return Finish(output, rsetNeeded: false);
        if (_acceptedCount == 0)
            return Finish(output, rsetNeeded: true);
        if (_useBdat)
            return StartBdat(output);
        output.Write("DATA\r\n"u8);
        _inData = true;
        _info.SetIdleTimeout(_options.DataInitTimeout);
        return HandlerStatus.Continue;
    }

    private HandlerStatus OnDataReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code == 354)
        {
            if (_acceptedCount > 0)
                return StartData(output);
            // A server that opens the data with nobody to deliver to: end it at once and ignore what it says.
            output.Write(".\r\n"u8);
            _phase = Phase.Discard;
            return HandlerStatus.Continue;
        }

        if (reply.Code / 100 is 2 or 3)
            return Break(Lost.BadReply, $"DATA answered {reply.Code}");
        // With PIPELINING and no recipient accepted, the 503/554 here is expected (RFC 2920 §3.1) and changes
        // nothing; otherwise it is every accepted recipient's answer.
        string words = ReplyText(reply);
        for (int k = 0; k < _acceptedCount; k++)
            SetOutcome(ref _tx!.Outcomes[_accepted[k]], reply, words);
        return Finish(output, rsetNeeded: _mailAccepted);
    }

    private void WriteMail(IBufferWriter<byte> output)
    {
        var tx = _tx!;
        output.Write("MAIL FROM:<"u8);
        output.Write(tx.ReversePath.Span);
        output.Write(">"u8);
        if (Offers(SmtpExtensions.Size))
        {
            output.Write(" SIZE="u8);
            Span<byte> digits = stackalloc byte[20];
            Utf8Formatter.TryFormat((long)tx.Data.Length, digits, out int length);
            output.Write(digits[..length]);
        }

        bool dsn = Offers(SmtpExtensions.Dsn);
        bool body = Offers(SmtpExtensions.EightBitMime) || Offers(SmtpExtensions.BinaryMime);
        var rest = tx.MailParameters.Span;
        while (NextToken(ref rest, out var token))
        {
            // BODY without 8BITMIME or BINARYMIME is only BODY=7BIT (the others were refused above): a hop
            // that does not know the keyword must not see it (RFC 6152 §3).
            bool carry = (body && IsKeyword(token, "BODY"u8))
                || IsKeyword(token, "SMTPUTF8"u8)
                || (dsn && (IsKeyword(token, "RET"u8) || IsKeyword(token, "ENVID"u8)));
            if (!carry)
                continue;
            output.Write(" "u8);
            output.Write(token);
        }

        output.Write("\r\n"u8);
    }

    private void WriteRcpt(IBufferWriter<byte> output, int index)
    {
        var tx = _tx!;
        output.Write("RCPT TO:<"u8);
        output.Write(tx.Recipients[index].Span);
        output.Write(">"u8);
        if (Offers(SmtpExtensions.Dsn))
        {
            var rest = tx.RecipientParameters[index].Span;
            while (NextToken(ref rest, out var token))
            {
                if (!IsKeyword(token, "NOTIFY"u8) && !IsKeyword(token, "ORCPT"u8))
                    continue;
                output.Write(" "u8);
                output.Write(token);
            }
        }

        output.Write("\r\n"u8);
    }

    /// <summary>esmtp-param = esmtp-keyword ["=" esmtp-value], separated by SP (RFC 5321 §4.1.2).</summary>
    private static bool NextToken(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> token)
    {
        rest = rest.TrimStart((byte)' ');
        if (rest.IsEmpty)
        {
            token = default;
            return false;
        }

        int space = rest.IndexOf((byte)' ');
        token = space < 0 ? rest : rest[..space];
        rest = space < 0 ? default : rest[space..];
        return true;
    }

    /// <summary>esmtp-keywords compare without regard to case (RFC 5321 §2.4).</summary>
    private static bool IsKeyword(ReadOnlySpan<byte> token, ReadOnlySpan<byte> keyword) =>
        token.Length >= keyword.Length
        && Ascii.EqualsIgnoreCase(token[..keyword.Length], keyword)
        && (token.Length == keyword.Length || token[keyword.Length] == '=');

    /// <summary>RFC 3461 §4.1: NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ).</summary>
    private static bool AsksSuccessNotice(ReadOnlySpan<byte> parameters)
    {
        while (NextToken(ref parameters, out var token))
        {
            if (!IsKeyword(token, "NOTIFY"u8) || token.Length < 7)
                continue;
            foreach (var range in token[7..].Split((byte)','))
            {
                if (Ascii.EqualsIgnoreCase(token[7..][range], "SUCCESS"u8))
                    return true;
            }
        }

        return false;
    }
}
