// Writes a delivery status notification, the whole message, as docs/DELIVERY.md "Bounces" lays it out:
// RFC 5322 headers with Auto-Submitted (RFC 3834), a multipart/report (RFC 6522) of a text/plain part in
// words, a message/delivery-status part (RFC 3464 §2.2, §2.3; message/global-delivery-status for SMTPUTF8
// mail, RFC 6533) and the returned message or its header. CRLF line ends, every line under 998 octets.
// It does not decide whether a notice is due (BouncePolicy), where it goes, or put it in the spool; it does not
// convert the returned message (8-bit content is labelled 8bit or binary, never re-encoded).
// Fails by returning false with a reason, before writing a byte, for any input it cannot put into a valid
// message (a bad address, host, status, ENVID or ORCPT, or no recipients); it never throws on bad input.

using System.Buffers;

namespace EdgeMta.Delivery;

/// <summary>Composes bounce, delay and relay notices for one reporting host.</summary>
public sealed partial class BounceComposer
{
    /// <summary>Postfix's bounce_size_limit: a larger message is returned as its header only.</summary>
    public const int FullReturnLimit = 50_000;

    private readonly string _host;
    private readonly TimeProvider _clock;
    private readonly Func<string> _messageIds;

    /// <param name="reportingHost">This server's host name: From MAILER-DAEMON@host and Reporting-MTA.</param>
    /// <param name="clock">The source of the Date header.</param>
    /// <param name="messageIds">Gives "left@right" for the Message-ID header, without angle brackets.</param>
    public BounceComposer(string reportingHost, TimeProvider clock, Func<string> messageIds)
    {
        ArgumentNullException.ThrowIfNull(reportingHost);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(messageIds);
        _host = reportingHost;
        _clock = clock;
        _messageIds = messageIds;
    }

    /// <summary>
    /// Writes the notice about <paramref name="recipients"/> of the message whose envelope and bytes are given.
    /// False, with <paramref name="error"/> saying why and nothing written, when the input cannot be reported.
    /// </summary>
    public bool TryWrite(
        in BounceEnvelope envelope,
        ReadOnlySpan<byte> message,
        ReadOnlySpan<BounceRecipient> recipients,
        IBufferWriter<byte> output,
        out string? error)
    {
        ArgumentNullException.ThrowIfNull(output);
        error = Check(envelope, recipients, out string? envelopeId, out string messageId);
        if (error is not null)
        {
            return false;
        }

        bool full = envelope.Return == DsnReturn.Full
            || (envelope.Return == DsnReturn.Unspecified && message.Length <= FullReturnLimit);
        ReadOnlySpan<byte> returned = full ? message : HeaderOf(message);
        DateTimeOffset now = _clock.GetUtcNow();
        string boundary = ChooseBoundary(now, returned, envelope, envelopeId, recipients);

        WriteHeader(output, now, envelope, recipients, messageId, boundary);
        WriteWords(output, envelope, recipients, boundary);
        WriteReport(output, envelope, envelopeId, recipients, boundary);
        WriteReturned(output, returned, full, boundary);
        return true;
    }

    private string? Check(
        in BounceEnvelope envelope,
        ReadOnlySpan<BounceRecipient> recipients,
        out string? envelopeId,
        out string messageId)
    {
        envelopeId = null;
        messageId = "";
        bool utf8 = envelope.SmtpUtf8;
        if (!BounceText.IsHost(_host) || _host.Contains(':') || _host.Contains('['))
        {
            return "the reporting host is not a host name";
        }

        if (envelope.Sender is null || !BounceText.IsMailbox(envelope.Sender, utf8))
        {
            // The null reverse-path gets no notice at all (BouncePolicy); anything else unusable is an error.
            return "the sender is not a mailbox a notice can be sent to";
        }

        // RFC 3461 §4.4: ENVID is at most 100 characters of xtext, decoded to printable ASCII.
        if (envelope.EnvelopeId is not null
            && (envelope.EnvelopeId.Length > 100 || !BounceText.TryDecodeXtext(envelope.EnvelopeId, false, out envelopeId)))
        {
            return "ENVID is not valid xtext";
        }

        if (recipients.IsEmpty)
        {
            return "no recipients to report";
        }

        foreach (ref readonly BounceRecipient r in recipients)
        {
            string? problem = CheckRecipient(r, utf8);
            if (problem is not null)
            {
                return problem;
            }
        }

        messageId = _messageIds() ?? "";
        int at = messageId.IndexOf('@');
        if (at <= 0 || at == messageId.Length - 1 || messageId.Length > 250)
        {
            return "the Message-ID generator gave no left@right";
        }

        foreach (char c in messageId)
        {
            if (c is <= ' ' or > '~' or '<' or '>')
            {
                return "the Message-ID generator gave a character a msg-id cannot hold";
            }
        }

        return null;
    }

    private static string? CheckRecipient(in BounceRecipient r, bool utf8)
    {
        if (r.FinalRecipient is null || !BounceText.IsMailbox(r.FinalRecipient, utf8))
        {
            return "a final recipient is not a mailbox";
        }

        if (r.OriginalRecipient is not null)
        {
            // RFC 3461 §4.2: ORCPT = addr-type ";" xtext, at most 500 characters.
            int semi = r.OriginalRecipient.IndexOf(';');
            if (r.OriginalRecipient.Length > 500 || semi <= 0
                || !BounceText.IsHost(r.OriginalRecipient[..semi])
                || !BounceText.TryDecodeXtext(r.OriginalRecipient.AsSpan(semi + 1), utf8, out _))
            {
                return "an ORCPT is not addr-type;xtext";
            }
        }

        if (!IsStatus(r.Status, r.Action))
        {
            return "a status is not x.y.z of a class that fits the action";
        }

        if (r.RemoteMta is not null && !BounceText.IsHost(r.RemoteMta))
        {
            return "a remote MTA is not a host name or address literal";
        }

        return r.Action is DsnAction.Failed or DsnAction.Delayed or DsnAction.Relayed ? null : "an unknown action";
    }

    /// <summary>
    /// RFC 3463 §2: class "." subject "." detail, each of 1-3 digits. Failed takes 5 (or 4, for a temporary
    /// failure that outlived the queue lifetime: 4.4.7), delayed 4, relayed 2 (RFC 3464 §2.3.4).
    /// </summary>
    private static bool IsStatus(string? status, DsnAction action)
    {
        if (status is null || status.Length < 5 || status.Length > 9 || status[1] != '.')
        {
            return false;
        }

        bool classFits = action switch
        {
            DsnAction.Failed => status[0] is '4' or '5',
            DsnAction.Delayed => status[0] == '4',
            _ => status[0] == '2',
        };
        int dot = status.IndexOf('.', 2);
        return classFits && dot > 2 && dot - 2 <= 3 && Digits(status.AsSpan(2, dot - 2))
            && status.Length - dot - 1 is >= 1 and <= 3 && Digits(status.AsSpan(dot + 1));
    }

    private static bool Digits(ReadOnlySpan<char> s) => !s.ContainsAnyExceptInRange('0', '9');

    /// <summary>The header section, through the CRLF ending its last line, for text/rfc822-headers.</summary>
    internal static ReadOnlySpan<byte> HeaderOf(ReadOnlySpan<byte> message)
    {
        int crlf = message.IndexOf("\r\n\r\n"u8);
        int lf = message.IndexOf("\n\n"u8);
        if (crlf >= 0 && (lf < 0 || crlf + 1 <= lf))
        {
            return message[..(crlf + 2)];
        }

        return lf >= 0 ? message[..(lf + 1)] : message;
    }

    // Subjects follow Postfix's default bounce(5) templates: failure, delay and success (here: relayed) notices.
    private static string SubjectFor(ReadOnlySpan<BounceRecipient> recipients) => Worst(recipients) switch
    {
        DsnAction.Failed => "Undelivered Mail Returned to Sender",
        DsnAction.Delayed => "Delayed Mail (still being retried)",
        _ => "Successful Mail Delivery Report",
    };

    /// <summary>The action that names the notice: any failure makes it a bounce, else any delay.</summary>
    internal static DsnAction Worst(ReadOnlySpan<BounceRecipient> recipients)
    {
        DsnAction worst = DsnAction.Relayed;
        foreach (ref readonly BounceRecipient r in recipients)
        {
            if (r.Action == DsnAction.Failed)
            {
                return DsnAction.Failed;
            }

            if (r.Action == DsnAction.Delayed)
            {
                worst = DsnAction.Delayed;
            }
        }

        return worst;
    }
}
