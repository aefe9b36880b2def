// Byte-level writing for BounceComposer: header dates (RFC 5322 §3.3), folded free text (RFC 5322 §2.2.3,
// RFC 3464 §2.1.1), xtext decoding (RFC 3461 §4) and the small checks on addresses and host names.
// Does no MIME structure (BounceComposer does). Writes straight into an IBufferWriter<byte>; nothing here
// throws on bad text: control characters become '?', and so does non-ASCII when only ASCII is allowed.

using System.Buffers;
using System.Text;

namespace EdgeMta.Delivery;

internal static class BounceText
{
    // RFC 5322 §2.1.1: lines SHOULD stay within 78 characters and MUST within 998. Fold near 78; break a word
    // with no space in it at 900 so that even a pathological reply never makes a line of 998.
    internal const int FoldAt = 78;
    private const int HardLimit = 900;

    private static readonly string[] Days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    private static readonly string[] Months =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

    internal static void Bytes(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        // IBufferWriter may hand out less than asked for in one go; copy in pieces.
        while (!bytes.IsEmpty)
        {
            Span<byte> span = output.GetSpan(Math.Min(bytes.Length, 4096));
            int n = Math.Min(span.Length, bytes.Length);
            bytes[..n].CopyTo(span);
            output.Advance(n);
            bytes = bytes[n..];
        }
    }

    /// <summary>Writes already-checked text as UTF-8 (pure ASCII when the checks required it).</summary>
    internal static void Text(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        Span<byte> span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        output.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    internal static void Crlf(IBufferWriter<byte> output) => Bytes(output, "\r\n"u8);

    /// <summary>RFC 5322 §3.3 date-time: "Sun, 06 Dec 2026 20:34:41 +0000", invariant names.</summary>
    internal static void Date(IBufferWriter<byte> output, DateTimeOffset when)
    {
        Span<char> buffer = stackalloc char[32];
        int offset = (int)when.Offset.TotalMinutes;
        char sign = offset < 0 ? '-' : '+';
        offset = Math.Abs(offset);
        DateTime t = when.DateTime;
        bool ok = buffer.TryWrite(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{Days[(int)t.DayOfWeek]}, {t.Day:00} {Months[t.Month - 1]} {t.Year:0000} {t.Hour:00}:{t.Minute:00}:{t.Second:00} {sign}{offset / 60:00}{offset % 60:00}",
            out int written);
        Text(output, ok ? buffer[..written] : []);
    }

    /// <summary>
    /// Writes free text (a diagnostic reply, a sentence) after <paramref name="column"/> bytes already on the
    /// line. Runs of white space, CR and LF included, become one space, so a multi-line reply reads as one
    /// (Postfix does the same); the line is folded before a space once it would pass 78 octets. Folding puts
    /// CRLF before an existing space, so unfolding (RFC 5322 §2.2.3) gives the text back exactly.
    /// <paramref name="indent"/> is the white space that starts each continuation line.
    /// </summary>
    internal static void Folded(
        IBufferWriter<byte> output, int column, ReadOnlySpan<char> text, bool utf8, ReadOnlySpan<byte> indent)
    {
        bool wordOnLine = false;
        Span<byte> rune = stackalloc byte[4];
        while (true)
        {
            int start = 0;
            while (start < text.Length && IsSpace(text[start]))
            {
                start++;
            }

            text = text[start..];
            if (text.IsEmpty)
            {
                return;
            }

            int end = 0;
            while (end < text.Length && !IsSpace(text[end]))
            {
                end++;
            }

            ReadOnlySpan<char> word = text[..end];
            text = text[end..];
            int length = 0;
            foreach (Rune r in word.EnumerateRunes())
            {
                length += Clean(r, utf8).Utf8SequenceLength;
            }

            if (wordOnLine && column + 1 + length > FoldAt)
            {
                Crlf(output);
                Bytes(output, indent);
                column = indent.Length;
            }
            else if (wordOnLine)
            {
                Bytes(output, " "u8);
                column++;
            }

            foreach (Rune r in word.EnumerateRunes())
            {
                Rune c = Clean(r, utf8);
                if (column + c.Utf8SequenceLength > HardLimit)
                {
                    // A word longer than a line: break it (RFC 5322 §2.1.1's 998 is a MUST; a space is the
                    // only way to continue a header line, so the reader sees one added space here).
                    Crlf(output);
                    Bytes(output, indent);
                    column = indent.Length;
                }

                int n = c.EncodeToUtf8(rune);
                Bytes(output, rune[..n]);
                column += n;
            }

            wordOnLine = true;
        }
    }

    private static bool IsSpace(char c) => c is ' ' or '\t' or '\r' or '\n';

    private static Rune Clean(Rune r, bool utf8) =>
        r.Value < 0x20 || r.Value == 0x7F || (r.Value >= 0x80 && !utf8) || r == Rune.ReplacementChar
            ? new Rune('?')
            : r;

    /// <summary>
    /// Decodes xtext (RFC 3461 §4: "+" and two upper-case hex digits stand for one octet; other characters are
    /// "!".."~" except "+" and "="). The decoded octets must be printable ASCII, or valid UTF-8 when allowed.
    /// </summary>
    internal static bool TryDecodeXtext(ReadOnlySpan<char> xtext, bool utf8, out string decoded)
    {
        decoded = "";
        if (xtext.Length > 1000)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[xtext.Length];
        int n = 0;
        for (int i = 0; i < xtext.Length; i++)
        {
            char c = xtext[i];
            if (c == '+')
            {
                if (i + 2 >= xtext.Length)
                {
                    return false;
                }

                int hi = HexValue(xtext[i + 1]), lo = HexValue(xtext[i + 2]);
                if (hi < 0 || lo < 0)
                {
                    return false;
                }

                bytes[n++] = (byte)((hi << 4) | lo);
                i += 2;
            }
            else if (c is > ' ' and <= '~' and not '=')
            {
                bytes[n++] = (byte)c;
            }
            else
            {
                return false;
            }
        }

        ReadOnlySpan<byte> value = bytes[..n];
        foreach (byte b in value)
        {
            if (b < 0x20 || b == 0x7F || (b >= 0x80 && !utf8))
            {
                return false;
            }
        }

        if (!System.Text.Unicode.Utf8.IsValid(value))
        {
            return false;
        }

        decoded = Encoding.UTF8.GetString(value);
        return true;
    }

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>A mailbox as the envelope carries it: no brackets, controls or spaces; ASCII unless SMTPUTF8.</summary>
    internal static bool IsMailbox(string address, bool utf8)
    {
        if (address.Length is 0 or > 512 || address.IndexOf('@') <= 0)
        {
            return false;
        }

        foreach (char c in address)
        {
            if (c <= ' ' || c == 0x7F || c is '<' or '>' || (c >= 0x80 && !utf8))
            {
                return false;
            }
        }

        return !utf8 || Utf8Valid(address);
    }

    /// <summary>A host name or address literal for "dns;" fields (RFC 3464 §2.1.2): letters, digits, ".-:[]".</summary>
    internal static bool IsHost(string host)
    {
        if (host.Length is 0 or > 255)
        {
            return false;
        }

        foreach (char c in host)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '-' or ':' or '[' or ']'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool Utf8Valid(string s)
    {
        foreach (Rune r in s.EnumerateRunes())
        {
            if (r == Rune.ReplacementChar)
            {
                return false;
            }
        }

        return true;
    }
}
