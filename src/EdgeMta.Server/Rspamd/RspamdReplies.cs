// Contract: what rspamd's verdict becomes in SMTP (docs/SCREENING.md "Content check by rspamd"): the reply to the
// final dot of a refused message, and the header fields added at the top of an accepted one.
// - reject: `550 5.7.1` and rspamd's messages.smtp_message when it gives one, else rspamd's own proxy default
//   text ("Spam message rejected", its worker-proxy.inc reject_message);
// - soft reject, greylist: `451 4.7.1` and the smtp_message, else "Try again later" (rspamd's greylist text);
// - an error or timeout with --rspamd-fail tempfail: `451 4.7.1 Service unavailable - try again later`, Postfix's
//   text for a milter that failed with milter_default_action = tempfail;
// - add header, rewrite subject: `X-Spam: Yes` and `X-Spam-Score: S / R`; anything else accepted: `X-Spam-Score`.
// rspamd's text reaches the client only sanitised: printable ASCII (0x20..0x7E), whitespace runs as one space,
// at most MaxTextLength octets, so it can neither split the reply (RFC 5321 §4.2: one line, CRLF) nor carry
// 8-bit text a client did not ask for. Scores are written with two decimals, as rspamd's own milter headers do
// ("[3.70 / 15.00]"), clamped to +-999999.99 so the field has a bounded length.
namespace EdgeMta.Server.Rspamd;

internal static class RspamdReplies
{
    public const int MaxTextLength = 200;

    /// <summary>The longest reply Write produces.</summary>
    public const int MaxReplyLength = 10 + MaxTextLength + 2;

    public static ReadOnlySpan<byte> RejectDefault => "Spam message rejected"u8;
    public static ReadOnlySpan<byte> SoftRejectDefault => "Try again later"u8;
    public static ReadOnlySpan<byte> Unavailable => "451 4.7.1 Service unavailable - try again later\r\n"u8;

    /// <summary>Writes "550 5.7.1 text" (reject) or "451 4.7.1 text" into <paramref name="dest"/>; returns its length.</summary>
    public static int WriteRefusal(Span<byte> dest, bool permanent, ReadOnlySpan<byte> rspamdText)
    {
        (permanent ? "550 5.7.1 "u8 : "451 4.7.1 "u8).CopyTo(dest);
        int n = 10;
        int text = Sanitise(rspamdText, dest.Slice(n, MaxTextLength));
        if (text == 0)
        {
            ReadOnlySpan<byte> fallback = permanent ? RejectDefault : SoftRejectDefault;
            fallback.CopyTo(dest[n..]);
            text = fallback.Length;
        }
        n += text;
        "\r\n"u8.CopyTo(dest[n..]);
        return n + 2;
    }

    /// <summary>Printable ASCII only, whitespace and controls as single spaces, no leading or trailing space, at most
    /// dest.Length octets.</summary>
    public static int Sanitise(ReadOnlySpan<byte> text, Span<byte> dest)
    {
        int n = 0;
        bool space = false;
        foreach (byte b in text)
        {
            if (n == dest.Length) break;
            if (b is >= 0x21 and <= 0x7E)
            {
                if (space && n > 0 && n < dest.Length - 1) dest[n++] = (byte)' ';
                space = false;
                dest[n++] = b;
            }
            else if (b < 0x80)
            {
                space = true; // SP, HT, CR, LF and other controls
            }
            // octets of 8-bit text are dropped
        }
        return n;
    }

    /// <summary>The longest header text WriteHeaders produces.</summary>
    public const int MaxHeadersLength = 64;

    /// <summary>The fields added at the top of an accepted message (docs/SCREENING.md), each ending in CRLF.</summary>
    public static int WriteHeaders(Span<byte> dest, RspamdAction action, double score, double required)
    {
        int n = 0;
        if (action is RspamdAction.AddHeader or RspamdAction.RewriteSubject) Put(dest, ref n, "X-Spam: Yes\r\n"u8);
        Put(dest, ref n, "X-Spam-Score: "u8);
        Score(dest, ref n, score);
        Put(dest, ref n, " / "u8);
        Score(dest, ref n, required);
        Put(dest, ref n, "\r\n"u8);
        return n;
    }

    private static void Put(Span<byte> dest, ref int n, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(dest[n..]);
        n += bytes.Length;
    }

    private static void Score(Span<byte> dest, ref int n, double value)
    {
        value = Math.Clamp(double.IsFinite(value) ? value : 0, -999_999.99, 999_999.99);
        value.TryFormat(dest[n..], out int written, "0.00", System.Globalization.CultureInfo.InvariantCulture);
        n += written;
    }
}
