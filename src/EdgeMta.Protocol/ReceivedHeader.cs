// Contract: the Received: trace header the server prepends to every message (RFC 5321 §4.4).
//
// Received: from <helo> (<client address literal>)
//         by <host> with <protocol> id <queue id>
//         [for <forward-path>]; <date-time>
// The HELO name arrives sanitised by Envelope (no CR, LF or controls); the client address is written as
// an address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]", RFC 5321 §4.1.3). "with" is ESMTP or SMTP,
// with S for TLS (RFC 3848); UTF8SMTP(S) for SMTPUTF8 (RFC 6531 §3.7.3). "for" names the recipient only when
// there is exactly one (RFC 5321 §7.2: not to disclose the others). The date is RFC 5322 §3.3 with +0000.
// It writes into a caller's span and allocates nothing; the longest header fits in MaxLength.
namespace EdgeMta.Protocol;

public static class ReceivedHeader
{
    /// <summary>An upper bound: HELO 512 + host 255 + address 64 + id 64 + path 256 + fixed text.</summary>
    public const int MaxLength = 1400;

    public static int Write(Span<byte> dest, Envelope envelope, ReadOnlySpan<byte> hostName, ReadOnlySpan<byte> queueId, DateTimeOffset now)
    {
        var w = new SpanWriter(dest);
        w.Put("Received: from "u8);
        w.Put(envelope.HeloName.IsEmpty ? "unknown"u8 : envelope.HeloName);
        w.Put(" (["u8);
        ReadOnlySpan<byte> address = envelope.ClientAddress;
        if (address.Contains((byte)':'))
        {
            w.Put("IPv6:"u8);
        }
        w.Put(address);
        w.Put("])\r\n\tby "u8);
        w.Put(hostName);
        w.Put(" with "u8);
        // RFC 6531 §3.7.3 registers UTF8SMTP and UTF8SMTPS (SMTPUTF8 is an extension, so there is no UTF8ESMTP).
        w.Put(envelope.SmtpUtf8 ? "UTF8SMTP"u8 : envelope.Extended ? "ESMTP"u8 : "SMTP"u8);
        if (envelope.Tls)
        {
            w.Put("S"u8);
        }
        w.Put(" id "u8);
        w.Put(queueId);
        if (envelope.RecipientCount == 1)
        {
            w.Put("\r\n\tfor <"u8);
            w.Put(envelope.GetForwardPath(0));
            w.Put(">"u8);
        }
        w.Put("; "u8);
        w.Date(now);
        w.Put("\r\n"u8);
        return w.Written;
    }

    private ref struct SpanWriter
    {
        private readonly Span<byte> _dest;
        public int Written;

        public SpanWriter(Span<byte> dest)
        {
            _dest = dest;
            Written = 0;
        }

        public void Put(ReadOnlySpan<byte> s)
        {
            s.CopyTo(_dest[Written..]);
            Written += s.Length;
        }

        /// <summary>date-time = [ day-of-week "," ] date time, e.g. "Sun, 22 Nov 2026 07:25:59 +0000" (RFC 5322 §3.3).</summary>
        public void Date(DateTimeOffset now)
        {
            // "R" is RFC 1123 with the obsolete zone "GMT"; the numeric zone replaces it.
            now.UtcDateTime.TryFormat(_dest[Written..], out int n, "R", System.Globalization.CultureInfo.InvariantCulture);
            Written += n - 3;
            Put("+0000"u8);
        }
    }
}
