// Contract: what each command does: the reply and the next state of every cell of PROTOCOL.md's table.
//
// Execute applies, in order: line errors (500 5.5.6 / 5.5.2), unknown verbs (500 5.5.2; a web client
// gets 221 2.7.0 and is dropped), commands not implemented (502 5.5.1), the state's mask (503 5.5.1),
// then the argument rule of the verb's flags (501), and only then the verb's handler.
using System.Buffers;
using System.Text;

namespace EdgeMta.Protocol;

public sealed partial class SmtpSession
{
    /// <param name="count">False for a line offered again after AwaitingVerdict: it was counted the first time.</param>
    private SessionStatus Execute(in SmtpCommand command, ReadOnlySpan<byte> line, IBufferWriter<byte> output, bool count)
    {
        if (count)
        {
            _options.Commands?.Count(command.Error == LineError.None ? command.Verb : SmtpVerb.Unknown); // metrics: one per line answered
        }
        switch (command.Error)
        {
            case LineError.None:
                break;
            case LineError.TooLong:
                return RefuseStatus(Replies.LineTooLong, output);
            case LineError.Nul:
                return RefuseStatus(Replies.NulInLine, output);
            case LineError.BareLineFeed:
                return RefuseStatus(Replies.BareLineFeed, output);
            default:
                return RefuseStatus(Replies.EmptyLine, output);
        }

        SmtpVerb verb = command.Verb;
        if (verb == SmtpVerb.Unknown)
        {
            if (IsWebClient(line))
            {
                output.Write(Replies.WebClientGoodbye);
                _screenedOut = ScreenedOut.NonSmtp;
                return Close();
            }
            return RefuseStatus(Replies.CommandUnrecognized, output);
        }

        VerbFlags flags = VerbTable.Of(verb);
        ReadOnlySpan<byte> argument = line[command.ArgumentStart..];
        if ((flags & VerbFlags.NotImplemented) != 0)
        {
            if ((flags & VerbFlags.LegacySend) == 0 || !_options.LegacySend)
            {
                return RefuseStatus(Replies.NotImplemented, output);
            }
            verb = SmtpVerb.Mail; // --legacy-send: SEND/SOML/SAML FROM:<path> deliver as MAIL does
        }
        if (verb == SmtpVerb.Bdat)
        {
            return Bdat(argument, output); // BDAT skips its octets even when refused: it checks sequence itself
        }
        if (!StateTable.Allows(_state, verb))
        {
            return RefuseStatus(Replies.BadSequence, output);
        }
        if ((flags & VerbFlags.NoArguments) != 0 && !argument.IsEmpty)
        {
            return RefuseStatus(Replies.NoArgumentsAllowed, output);
        }

        return verb switch
        {
            SmtpVerb.Ehlo => Hello(argument, extended: true, output),
            SmtpVerb.Helo => Hello(argument, extended: false, output),
            SmtpVerb.Mail => Mail(argument, output),
            SmtpVerb.Rcpt => Rcpt(argument, output),
            SmtpVerb.Data => Data(output),
            SmtpVerb.Rset => Rset(output),
            SmtpVerb.Noop => Write(Replies.Ok, output),
            SmtpVerb.Quit => Quit(output),
            SmtpVerb.Vrfy => Vrfy(argument, output),
            SmtpVerb.Expn => Expn(argument, output),
            SmtpVerb.Help => Help(argument, output),
            SmtpVerb.StartTls => StartTls(output),
            _ => RefuseStatus(Replies.BadSequence, output), // Dot: a lone "." outside DATA (docs/seeds/000: 503)
        };
    }

    private static SessionStatus Write(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        output.Write(reply);
        return SessionStatus.Continue;
    }

    /// <summary>
    /// ehlo = "EHLO" SP ( Domain / address-literal ) CRLF     ; RFC 5321 §4.1.1.1
    /// helo = "HELO" SP Domain CRLF
    /// 250 → 3 in every state 2-7, resetting any transaction (D1, RFC 5321 §4.1.4). The name is kept as
    /// given (sanitised), not judged: Postfix likewise accepts any name unless told otherwise.
    /// </summary>
    private SessionStatus Hello(ReadOnlySpan<byte> argument, bool extended, IBufferWriter<byte> output)
    {
        if (argument.IsEmpty || argument.Length > PathGrammar.MaxDomain)
        {
            return RefuseStatus(extended ? Replies.EhloSyntax : Replies.HeloSyntax, output);
        }
        if (_screening is not null && Ask(_screening.OnHello(output), output, out SessionStatus screened))
        {
            return screened;
        }
        AbortMessage();
        EndTransaction();
        _envelope.SetHelo(argument, extended);
        _state = SmtpState.Wait;
        output.Write(extended ? _prepared.EhloPrefix : _prepared.HeloPrefix);
        output.Write(_envelope.HeloName);
        output.Write(Replies.Crlf);
        if (extended)
        {
            output.Write(_tls ? _prepared.ExtensionsWithoutStartTls : _prepared.ExtensionsWithStartTls);
        }
        return SessionStatus.Continue;
    }

    /// <summary>
    /// mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF     ; RFC 5321 §4.1.1.2
    /// States 3 and 7 (docs/seeds/000): 250 → 4; a policy refusal 550 5.7.1 stays (D3, D5).
    /// </summary>
    private SessionStatus Mail(ReadOnlySpan<byte> argument, IBufferWriter<byte> output)
    {
        if (_options.RequireTls && !_tls)
        {
            return RefuseStatus(Replies.TlsRequired, output);
        }
        if (!TryKeyword(argument, "FROM:"u8, out ReadOnlySpan<byte> s))
        {
            return RefuseStatus(Replies.MailSyntax, output);
        }
        if (PathGrammar.TryParseReversePath(s, out ParsedPath path, out PathError pathError) != ParseStatus.Complete)
        {
            return RefuseStatus(pathError switch
            {
                PathError.PathTooLong => Replies.SenderPathTooLong,
                PathError.NameTooLong => Replies.SenderNotAllowed,
                _ => Replies.BadSenderSyntax,
            }, output);
        }
        if (!TryParametersAfter(s, path.End, out ReadOnlySpan<byte> parameters))
        {
            return RefuseStatus(Replies.BadSenderSyntax, output);
        }
        if (EsmtpParameters.TryParseMail(parameters, _options.MaxMessageSize, out MailParameters parsed, out ParameterError error) != ParseStatus.Complete)
        {
            return RefuseStatus(ParameterReply(error), output);
        }
        if (path.HasUtf8 && !parsed.SmtpUtf8)
        {
            return RefuseStatus(Replies.Utf8NeedsSmtpUtf8, output);
        }
        ReadOnlySpan<byte> mailbox = s.Slice(path.MailboxStart, path.MailboxLength);
        if (!path.IsNull && IsRefusedSender(mailbox, path.AtIndex))
        {
            return RefuseStatus(Replies.SenderRefused, output);
        }
        StoreReadiness readiness = _store!.Readiness;
        if (readiness != StoreReadiness.Ready)
        {
            // RFC 5321 §4.2.5, RFC 3463 4.3.1 / 4.3.0: a temporary local condition, not the client's error (not
            // counted toward the error limit). Said now, before the client sends a message the spool would refuse.
            output.Write(readiness == StoreReadiness.Full ? Replies.StoreFull : Replies.StoreFailed);
            return SessionStatus.Continue;
        }
        if (_screening is not null && Ask(_screening.OnMail(output), output, out SessionStatus screened))
        {
            return screened;
        }
        _envelope.BeginTransaction(mailbox, parameters, in parsed);
        _recipientTried = false;
        _state = SmtpState.SenderApproved;
        output.Write(Replies.SenderOk);
        return SessionStatus.Continue;
    }

    /// <summary>
    /// rcpt = "RCPT TO:" ( "&lt;Postmaster@" Domain "&gt;" / "&lt;Postmaster&gt;" / Forward-path ) [SP Rcpt-parameters] CRLF
    /// ; RFC 5321 §4.1.1.3. States 4 and 5: 250/251 → 5; 550/551/452 leave the state as it was.
    /// </summary>
    private SessionStatus Rcpt(ReadOnlySpan<byte> argument, IBufferWriter<byte> output)
    {
        if (_chunking)
        {
            return RefuseStatus(Replies.BadSequence, output); // RFC 3030 §2: no RCPT between BDAT chunks
        }
        _recipientTried = true;
        if (!TryKeyword(argument, "TO:"u8, out ReadOnlySpan<byte> s))
        {
            return RefuseStatus(Replies.RcptSyntax, output);
        }
        if (PathGrammar.TryParseForwardPath(s, out ParsedPath path, out PathError pathError) != ParseStatus.Complete)
        {
            return RefuseStatus(pathError switch
            {
                PathError.NullPath => Replies.NullRecipient,
                PathError.PathTooLong => Replies.RecipientPathTooLong,
                PathError.NameTooLong => Replies.RecipientNotAllowed,
                _ => Replies.BadRecipientSyntax,
            }, output);
        }
        if (!TryParametersAfter(s, path.End, out ReadOnlySpan<byte> parameters))
        {
            return RefuseStatus(Replies.BadRecipientSyntax, output);
        }
        if (EsmtpParameters.TryParseRcpt(parameters, out ParameterError error) != ParseStatus.Complete)
        {
            return RefuseStatus(ParameterReply(error), output);
        }
        if (path.HasUtf8 && !_envelope.SmtpUtf8)
        {
            return RefuseStatus(Replies.Utf8NeedsSmtpUtf8, output);
        }
        if (_envelope.RecipientCount >= _options.MaxRecipients)
        {
            // RFC 5321 §4.5.3.1.10: the client sends the rest in a later transaction. A list split a little
            // badly is not an error; a client that keeps going past the overshoot allowance is (Postfix).
            if (++_recipientOvershoot <= _options.RecipientOvershootLimit)
            {
                output.Write(Replies.TooManyRecipients);
                return SessionStatus.Continue;
            }
            return RefuseStatus(Replies.TooManyRecipients, output);
        }
        if (_screening is not null && Ask(_screening.OnRecipient(output), output, out SessionStatus screened))
        {
            return screened;
        }
        ReadOnlySpan<byte> mailbox = s.Slice(path.MailboxStart, path.MailboxLength);
        switch (_directory.Lookup(mailbox, path.AtIndex, out ReadOnlySpan<byte> target))
        {
            case RecipientVerdict.Accept:
                output.Write(Replies.RecipientOk);
                break;
            case RecipientVerdict.Forward:
                output.Write(Replies.WillForwardPrefix);
                output.Write(target);
                output.Write(">\r\n"u8);
                break;
            case RecipientVerdict.Moved:
                output.Write(Replies.TryInsteadPrefix);
                output.Write(target);
                output.Write(">\r\n"u8);
                return CountError(output);
            case RecipientVerdict.RelayDenied:
                return RefuseStatus(Replies.RelayDenied, output);
            default:
                return RefuseStatus(Replies.UserUnknown, output);
        }
        _envelope.AddRecipient(mailbox, parameters);
        _state = SmtpState.RecipientApproved;
        return SessionStatus.Continue;
    }

    /// <summary>rset = "RSET" CRLF (RFC 5321 §4.1.1.5): 250 in every state (D2); 2 stays 2, the others → 3.</summary>
    private SessionStatus Rset(IBufferWriter<byte> output)
    {
        AbortMessage();
        EndTransaction();
        if (_state != SmtpState.Connected)
        {
            _state = SmtpState.Wait;
        }
        output.Write(Replies.ResetOk);
        return SessionStatus.Continue;
    }

    /// <summary>quit = "QUIT" CRLF (RFC 5321 §4.1.1.10): 221 → 1 in every state.</summary>
    private SessionStatus Quit(IBufferWriter<byte> output)
    {
        output.Write(_prepared.Goodbye);
        return Close();
    }

    /// <summary>
    /// STARTTLS (RFC 3207 §4): 502 5.5.1 without a certificate (as Postfix), 503 once under TLS or inside a
    /// transaction, else 220 and the host switches; the session then starts over in state 2.
    /// </summary>
    private SessionStatus StartTls(IBufferWriter<byte> output)
    {
        if (!_options.TlsAvailable)
        {
            return RefuseStatus(Replies.NotImplemented, output);
        }
        if (_tls)
        {
            return RefuseStatus(Replies.AlreadyTls, output);
        }
        if (_state is SmtpState.SenderApproved or SmtpState.RecipientApproved)
        {
            return RefuseStatus(Replies.BadSequence, output);
        }
        output.Write(Replies.ReadyToStartTls);
        return SessionStatus.StartTls;
    }

    private SessionStatus CountError(IBufferWriter<byte> output)
    {
        if (++_errors >= _errorLimit)
        {
            output.Write(_prepared.TooManyErrors);
            return Close();
        }
        return SessionStatus.Continue;
    }

    private static ReadOnlySpan<byte> ParameterReply(ParameterError error) => error switch
    {
        ParameterError.Unknown => Replies.UnknownParameter,
        ParameterError.SizeExceeded => Replies.MessageTooBig,
        _ => Replies.BadParameterValue,
    };

    /// <summary>"FROM:" or "TO:", case-insensitive; spaces after the colon are tolerated (RFC 5321 §4.1.1.2 has none; many clients send one).</summary>
    private static bool TryKeyword(ReadOnlySpan<byte> argument, ReadOnlySpan<byte> keyword, out ReadOnlySpan<byte> rest)
    {
        rest = default;
        if (argument.Length <= keyword.Length || !Ascii.EqualsIgnoreCase(argument[..keyword.Length], keyword))
        {
            return false;
        }
        int i = keyword.Length;
        while (i < argument.Length && argument[i] == (byte)' ')
        {
            i++;
        }
        rest = argument[i..];
        return !rest.IsEmpty;
    }

    /// <summary>After the path: nothing, or SP and the parameters.</summary>
    private static bool TryParametersAfter(ReadOnlySpan<byte> s, int pathEnd, out ReadOnlySpan<byte> parameters)
    {
        parameters = default;
        if (pathEnd == s.Length)
        {
            return true;
        }
        if (s[pathEnd] != (byte)' ')
        {
            return false;
        }
        parameters = s[(pathEnd + 1)..];
        return true;
    }

    private bool IsRefusedSender(ReadOnlySpan<byte> mailbox, int atIndex)
    {
        if (atIndex < 0)
        {
            return false;
        }
        ReadOnlySpan<byte> domain = mailbox[(atIndex + 1)..];
        foreach (byte[] refused in _prepared.RefusedSenderDomains)
        {
            if (Ascii.EqualsIgnoreCase(domain, refused))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>A browser or proxy probe: "GET", "POST", "CONNECT" as the first word, or a "Host:" header line (as Postfix).</summary>
    private static bool IsWebClient(ReadOnlySpan<byte> line)
    {
        return StartsWithWord(line, "GET"u8) || StartsWithWord(line, "POST"u8) || StartsWithWord(line, "CONNECT"u8)
            || (line.Length >= 5 && Ascii.EqualsIgnoreCase(line[..5], "Host:"u8));

        static bool StartsWithWord(ReadOnlySpan<byte> line, ReadOnlySpan<byte> word) =>
            line.Length >= word.Length && Ascii.EqualsIgnoreCase(line[..word.Length], word)
            && (line.Length == word.Length || line[word.Length] == (byte)' ');
    }
}
