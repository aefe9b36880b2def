// Contract: the commands that inform and change nothing: VRFY, EXPN (RFC 5321 §3.5, §4.1.1.6-7), HELP (§4.1.1.8).
//
// VRFY answers 252 2.5.2 by default (RFC 5321 §3.5.3: "will accept message and attempt delivery"), so
// addresses cannot be harvested; --vrfy enabled consults the directory, --vrfy disabled is 502. EXPN is
// 502 unless --expn enabled. Replies carrying a name or address are written piece by piece, no strings.
using System.Buffers;

namespace EdgeMta.Protocol;

public sealed partial class SmtpSession
{
    /// <summary>vrfy = "VRFY" SP String CRLF.</summary>
    private SessionStatus Vrfy(ReadOnlySpan<byte> argument, IBufferWriter<byte> output)
    {
        if (_options.Vrfy == VrfyMode.Disabled)
        {
            return RefuseStatus(Replies.NotImplemented, output);
        }
        if (argument.IsEmpty)
        {
            return RefuseStatus(Replies.VrfySyntax, output);
        }
        if (_options.Vrfy == VrfyMode.Ambiguous || _directory.IsSink)
        {
            output.Write(Replies.CannotVerify);
            return SessionStatus.Continue;
        }
        switch (_directory.Verify(argument, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> address))
        {
            case DirectoryMatch.One:
                WriteMailboxLine("250 2.1.5 "u8, name, address, output);
                return SessionStatus.Continue;
            case DirectoryMatch.Ambiguous:
                return RefuseStatus(Replies.VrfyAmbiguous, output);
            default:
                return RefuseStatus(Replies.VrfyUnknown, output);
        }
    }

    /// <summary>expn = "EXPN" SP String CRLF: 250 one line a member ("250-" but the last).</summary>
    private SessionStatus Expn(ReadOnlySpan<byte> argument, IBufferWriter<byte> output)
    {
        if (!_options.ExpnEnabled)
        {
            return RefuseStatus(Replies.NotImplemented, output);
        }
        if (argument.IsEmpty)
        {
            return RefuseStatus(Replies.ExpnSyntax, output);
        }
        DirectoryMatch m = _directory.Expand(argument, out bool isList, out int list, out int count);
        if (m == DirectoryMatch.Ambiguous)
        {
            return RefuseStatus(Replies.VrfyAmbiguous, output);
        }
        if (m == DirectoryMatch.None)
        {
            return RefuseStatus(Replies.VrfyUnknown, output);
        }
        if (!isList)
        {
            return RefuseStatus(Replies.ExpnNotAList, output);
        }
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> member = _directory.ListMember(list, i, out ReadOnlySpan<byte> name);
            WriteMailboxLine(i == count - 1 ? "250 2.1.5 "u8 : "250-2.1.5 "u8, name, member, output);
        }
        return SessionStatus.Continue;
    }

    /// <summary>help = "HELP" [ SP String ] CRLF: 214 multi-line; a topic that is not a command is 504.</summary>
    private SessionStatus Help(ReadOnlySpan<byte> argument, IBufferWriter<byte> output)
    {
        if (argument.IsEmpty)
        {
            // STARTTLS only where it is offered; "local recipients only" only where a directory says who is local.
            output.Write("214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"u8);
            output.Write(_options.TlsAvailable && !_tls ? " STARTTLS\r\n"u8 : "\r\n"u8);
            if (!_directory.IsSink)
            {
                output.Write("214-2.0.0 Mail is accepted for local recipients only; see RFC 5321\r\n"u8);
            }
            output.Write("214 2.0.0 End of HELP info\r\n"u8);
            return SessionStatus.Continue;
        }
        ReadOnlySpan<byte> text = VerbOpcodes.Recognise(argument, out int after) switch
        {
            _ when after != argument.Length => default,
            SmtpVerb.Helo => "214 2.0.0 HELO hostname: greet the server (SMTP)\r\n"u8,
            SmtpVerb.Ehlo => "214 2.0.0 EHLO hostname: greet the server and list its extensions\r\n"u8,
            SmtpVerb.Mail => "214 2.0.0 MAIL FROM:<address> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8] [RET=] [ENVID=]\r\n"u8,
            SmtpVerb.Rcpt => "214 2.0.0 RCPT TO:<address> [NOTIFY=] [ORCPT=]\r\n"u8,
            SmtpVerb.Data => "214 2.0.0 DATA: send the message, end with a line holding only \".\"\r\n"u8,
            SmtpVerb.Bdat => "214 2.0.0 BDAT count [LAST]: send count octets of the message\r\n"u8,
            SmtpVerb.Rset => "214 2.0.0 RSET: abandon the transaction\r\n"u8,
            SmtpVerb.Noop => "214 2.0.0 NOOP: do nothing\r\n"u8,
            SmtpVerb.Quit => "214 2.0.0 QUIT: close the session\r\n"u8,
            SmtpVerb.Vrfy => "214 2.0.0 VRFY address: verify a mailbox\r\n"u8,
            SmtpVerb.Expn => "214 2.0.0 EXPN list: expand a mailing list\r\n"u8,
            SmtpVerb.Help => "214 2.0.0 HELP [command]\r\n"u8,
            SmtpVerb.StartTls => "214 2.0.0 STARTTLS: switch to TLS\r\n"u8,
            _ => default,
        };
        if (text.IsEmpty)
        {
            return RefuseStatus(Replies.HelpTopicUnknown, output);
        }
        output.Write(text);
        return SessionStatus.Continue;
    }

    /// <summary>"&lt;code&gt; Name &lt;address&gt;" or "&lt;code&gt; &lt;address&gt;" (RFC 5321 §3.5.1).</summary>
    private static void WriteMailboxLine(ReadOnlySpan<byte> code, ReadOnlySpan<byte> name, ReadOnlySpan<byte> address, IBufferWriter<byte> output)
    {
        output.Write(code);
        if (!name.IsEmpty)
        {
            output.Write(name);
            output.Write(" "u8);
        }
        output.Write("<"u8);
        output.Write(address);
        output.Write(">\r\n"u8);
    }
}
