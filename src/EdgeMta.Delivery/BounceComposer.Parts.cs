// The parts of the notice, in order (RFC 6522 §3: text first, then the report, then the returned message).
// Each part's header names its type and, when its bytes are not 7-bit, the identity transfer encoding
// (RFC 2045 §6.2; RFC 2046 §5.2.1 forbids any other on message/rfc822). Inputs were checked in TryWrite.

using System.Buffers;
using System.Globalization;

namespace EdgeMta.Delivery;

public sealed partial class BounceComposer
{
    // RFC 2046 §5.1.1: a delimiter line is "--" boundary; it must not occur in any encapsulated part.
    // The first candidate almost always holds: its digits come from the clock at the moment of writing,
    // which the content's author cannot know. Each candidate is checked; content of n bytes can hold at most
    // n of them, so the loop ends.
    private static string ChooseBoundary(
        DateTimeOffset now,
        ReadOnlySpan<byte> returned,
        in BounceEnvelope envelope,
        string? envelopeId,
        ReadOnlySpan<BounceRecipient> recipients)
    {
        Span<byte> bytes = stackalloc byte[64];
        for (long n = 0; ; n++)
        {
            string boundary = string.Create(
                CultureInfo.InvariantCulture, $"=_EdgeMta_{now.UtcTicks:x}_{n}");
            int length = System.Text.Encoding.ASCII.GetBytes(boundary, bytes);
            if (returned.IndexOf(bytes[..length]) < 0 && !InFields(boundary, envelope, envelopeId, recipients))
            {
                return boundary;
            }
        }
    }

    private static bool InFields(
        string boundary, in BounceEnvelope envelope, string? envelopeId, ReadOnlySpan<BounceRecipient> recipients)
    {
        if (envelope.Sender.Contains(boundary, StringComparison.Ordinal)
            || (envelopeId?.Contains(boundary, StringComparison.Ordinal) ?? false))
        {
            return true;
        }

        foreach (ref readonly BounceRecipient r in recipients)
        {
            if (r.FinalRecipient.Contains(boundary, StringComparison.Ordinal)
                || (r.OriginalRecipient?.Contains(boundary, StringComparison.Ordinal) ?? false)
                || (r.DiagnosticReply?.Contains(boundary, StringComparison.Ordinal) ?? false))
            {
                return true;
            }
        }

        return false;
    }

    private void WriteHeader(
        IBufferWriter<byte> o,
        DateTimeOffset now,
        in BounceEnvelope envelope,
        ReadOnlySpan<BounceRecipient> recipients,
        string messageId,
        string boundary)
    {
        // docs/DELIVERY.md "Bounces": the header fields in this order. Auto-Submitted (RFC 3834 §5) keeps
        // auto-responders from answering the notice.
        Line(o, "From: MAILER-DAEMON@", _host);
        Line(o, "To: <", envelope.Sender, ">");
        Line(o, "Subject: ", SubjectFor(recipients));
        BounceText.Bytes(o, "Date: "u8);
        BounceText.Date(o, now);
        BounceText.Crlf(o);
        Line(o, "Message-ID: <", messageId, ">");
        BounceText.Bytes(o, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"u8);
        BounceText.Bytes(o, "Content-Type: multipart/report; report-type=delivery-status;\r\n"u8);
        // "=" is a tspecial (RFC 2045 §5.1), so the boundary is quoted.
        Line(o, "\tboundary=\"", boundary, "\"");
        BounceText.Bytes(o, "\r\nThis is a MIME-encapsulated message.\r\n\r\n"u8);
    }

    private void WriteWords(
        IBufferWriter<byte> o, in BounceEnvelope envelope, ReadOnlySpan<BounceRecipient> recipients, string boundary)
    {
        bool utf8 = envelope.SmtpUtf8;
        Line(o, "--", boundary);
        BounceText.Bytes(o, "Content-Description: Notification\r\n"u8);
        BounceText.Bytes(o, utf8
            ? "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"u8
            : "Content-Type: text/plain; charset=us-ascii\r\n\r\n"u8);
        Line(o, "This is the mail system at host ", _host, ".");
        BounceText.Crlf(o);
        ReadOnlySpan<byte> sentence = Worst(recipients) switch
        {
            DsnAction.Failed =>
                "Your message could not be delivered to one or more recipients. The reasons are below;\r\n"u8
                + "the delivery report and the message, or its header, are attached.\r\n"u8,
            DsnAction.Delayed =>
                "Your message could not be delivered yet. It is still being retried; you need not\r\n"u8
                + "send it again. The reasons for the delay are below.\r\n"u8,
            _ =>
                "Your message was passed on to a system that does not send delivery notices itself;\r\n"u8
                + "this is the last notice you will receive about it.\r\n"u8,
        };
        BounceText.Bytes(o, sentence);
        foreach (ref readonly BounceRecipient r in recipients)
        {
            BounceText.Crlf(o);
            Line(o, "<", r.FinalRecipient, ">: ", ActionWord(r.Action));
            ReadOnlySpan<char> why = string.IsNullOrWhiteSpace(r.DiagnosticReply) ? "status " + r.Status
                : r.RemoteMta is null ? r.DiagnosticReply : "host " + r.RemoteMta + " said: " + r.DiagnosticReply;
            BounceText.Bytes(o, "    "u8);
            BounceText.Folded(o, 4, why, utf8, "    "u8);
            BounceText.Crlf(o);
        }
    }

    private void WriteReport(
        IBufferWriter<byte> o,
        in BounceEnvelope envelope,
        string? envelopeId,
        ReadOnlySpan<BounceRecipient> recipients,
        string boundary)
    {
        bool utf8 = envelope.SmtpUtf8;
        Line(o, "--", boundary);
        BounceText.Bytes(o, "Content-Description: Delivery report\r\n"u8);
        // RFC 6533 §6: the UTF-8 form of the report for SMTPUTF8 mail, 8-bit content allowed.
        BounceText.Bytes(o, utf8
            ? "Content-Type: message/global-delivery-status\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"u8
            : "Content-Type: message/delivery-status\r\n\r\n"u8);

        // Per-message fields, RFC 3464 §2.2.
        Line(o, "Reporting-MTA: dns; ", _host);
        if (envelopeId is not null)
        {
            Line(o, "Original-Envelope-Id: ", envelopeId);
        }

        BounceText.Bytes(o, "Arrival-Date: "u8);
        BounceText.Date(o, envelope.ArrivalDate);
        BounceText.Crlf(o);

        // Per-recipient fields, RFC 3464 §2.3, each group after an empty line (§2.1).
        foreach (ref readonly BounceRecipient r in recipients)
        {
            BounceText.Crlf(o);
            if (r.OriginalRecipient is not null)
            {
                int semi = r.OriginalRecipient.IndexOf(';');
                BounceText.TryDecodeXtext(r.OriginalRecipient.AsSpan(semi + 1), utf8, out string original);
                Line(o, "Original-Recipient: ", r.OriginalRecipient[..semi], ";", original);
            }

            // RFC 6533 §3: an address with non-ASCII characters has the address type "utf-8".
            Line(o, "Final-Recipient: ", System.Text.Ascii.IsValid(r.FinalRecipient) ? "rfc822; " : "utf-8; ", r.FinalRecipient);
            Line(o, "Action: ", ActionWord(r.Action));
            Line(o, "Status: ", r.Status);
            if (r.RemoteMta is not null)
            {
                Line(o, "Remote-MTA: dns; ", r.RemoteMta);
            }

            if (!string.IsNullOrWhiteSpace(r.DiagnosticReply))
            {
                // RFC 3464 §2.1.1: long field values are folded as RFC 5322 headers are.
                BounceText.Bytes(o, "Diagnostic-Code: smtp; "u8);
                BounceText.Folded(o, "Diagnostic-Code: smtp; ".Length, r.DiagnosticReply, utf8, " "u8);
                BounceText.Crlf(o);
            }

            BounceText.Bytes(o, "Last-Attempt-Date: "u8);
            BounceText.Date(o, r.LastAttemptDate);
            BounceText.Crlf(o);
        }
    }

    private static void WriteReturned(IBufferWriter<byte> o, ReadOnlySpan<byte> returned, bool full, string boundary)
    {
        Line(o, "--", boundary);
        BounceText.Bytes(o, full
            ? "Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n"u8
            : "Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n"u8);
        string? encoding = TransferEncoding(returned);
        if (encoding is not null)
        {
            Line(o, "Content-Transfer-Encoding: ", encoding);
        }

        BounceText.Crlf(o);
        BounceText.Bytes(o, returned);
        // The CRLF before "--" belongs to the delimiter (RFC 2046 §5.1.1), so the content keeps its own last
        // CRLF; content without one gains this one as its end.
        BounceText.Crlf(o);
        Line(o, "--", boundary, "--");
    }

    /// <summary>
    /// Null for 7-bit content; "8bit" for octets over 127 in CRLF lines of at most 998 octets; "binary" for NUL,
    /// a bare CR or LF, or a longer line (RFC 2045 §2.7, §2.8, §2.9).
    /// </summary>
    internal static string? TransferEncoding(ReadOnlySpan<byte> content)
    {
        bool eight = false;
        while (!content.IsEmpty)
        {
            int end = content.IndexOfAny((byte)'\r', (byte)'\n');
            ReadOnlySpan<byte> line = end < 0 ? content : content[..end];
            if (line.Length > 998 || line.Contains((byte)0))
            {
                return "binary";
            }

            eight |= line.ContainsAnyInRange((byte)0x80, (byte)0xFF);
            if (end < 0)
            {
                break;
            }

            if (content[end] != '\r' || end + 1 >= content.Length || content[end + 1] != '\n')
            {
                return "binary";
            }

            content = content[(end + 2)..];
        }

        return eight ? "8bit" : null;
    }

    private static string ActionWord(DsnAction action) => action switch
    {
        DsnAction.Failed => "failed",
        DsnAction.Delayed => "delayed",
        _ => "relayed",
    };

    private static void Line(IBufferWriter<byte> o, string a, string b, string c = "", string d = "", string e = "")
    {
        BounceText.Text(o, a);
        BounceText.Text(o, b);
        BounceText.Text(o, c);
        BounceText.Text(o, d);
        BounceText.Text(o, e);
        BounceText.Crlf(o);
    }
}
