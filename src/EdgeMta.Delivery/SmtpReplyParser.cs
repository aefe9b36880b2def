// Contract: frames one SMTP or LMTP reply (single or multi-line) out of the bytes received from a next hop and
// reads its code, its enhanced status code and its text lines.
//
// RFC 5321 §4.2 (LMTP, RFC 2033 §4, uses the same grammar):
//   Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
//   Reply-code = %x32-35 %x30-35 %x30-39
// §4.2.1: every line of a multi-line reply carries the same code. §4.5.3.1.5: a reply line is at most 512
// octets counting the code and the CRLF. The enhanced status code (RFC 3463 §2, RFC 2034 §4) is read from the
// start of the first line's text.
//
// It is strict because the client acts on what a reply says (deliver, defer, bounce): a line over 512 octets,
// a bare LF or bare CR, a code outside the ABNF, a separator other than SP or "-", lines whose codes differ,
// or more than MaxLines lines are an Error with a ReplyError naming why; the caller drops the connection and
// defers (docs/DELIVERY.md: only a 5xx reply is permanent). An Error is reported at the earliest octet that
// proves it, so feeding the bytes one at a time gives the same answer as feeding them all at once. Input with
// no complete reply yet is NeedMore and consumes nothing; the caller keeps the bytes and calls again with more.
//
// It does not check the text's characters (servers send UTF-8 and other octets there, and the text is only
// logged and quoted in bounces), does not decide whether the enhanced code may be trusted (RFC 2034 §3: only
// when ENHANCEDSTATUSCODES was advertised; see ServerCapabilities), and allocates nothing: the reply holds
// spans into the input.
namespace EdgeMta.Delivery;

/// <summary>The answer of <see cref="SmtpReplyParser.TryParse"/>.</summary>
public enum ReplyParseStatus : byte
{
    /// <summary>One whole reply was framed; <c>consumed</c> says how many octets it took.</summary>
    Complete,
    /// <summary>No complete reply yet and nothing wrong so far; nothing consumed.</summary>
    NeedMore,
    /// <summary>The bytes cannot be a reply; the reason is in the <see cref="ReplyError"/>.</summary>
    Error,
}

/// <summary>Why received bytes are not a reply (RFC 5321 §4.2, §4.5.3.1.5).</summary>
public enum ReplyError : byte
{
    None,
    /// <summary>A line reached 512 octets (its CRLF counted) without ending (§4.5.3.1.5).</summary>
    LineTooLong,
    /// <summary>An LF not preceded by CR (§2.3.8: lines end with CRLF).</summary>
    BareLineFeed,
    /// <summary>A CR not followed by LF (§2.3.8).</summary>
    BareCarriageReturn,
    /// <summary>The line does not start with Reply-code = %x32-35 %x30-35 %x30-39 (§4.2).</summary>
    BadCode,
    /// <summary>After the code comes neither SP, "-" nor the CRLF (§4.2).</summary>
    BadSeparator,
    /// <summary>A line of a multi-line reply has a code other than the first line's (§4.2.1).</summary>
    CodeMismatch,
    /// <summary>More than <see cref="SmtpReplyParser.MaxLines"/> lines in one reply.</summary>
    TooManyLines,
}

/// <summary>
/// An RFC 3463 status code, class.subject.detail. The default value (class 0) means the reply had none.
/// </summary>
public readonly record struct EnhancedStatusCode(byte Class, short Subject, short Detail)
{
    public bool IsPresent => Class != 0;

    public override string ToString() => IsPresent ? $"{Class}.{Subject}.{Detail}" : string.Empty;
}

/// <summary>One framed reply: spans into the bytes it was parsed from, valid as long as they are.</summary>
public readonly ref struct SmtpReply
{
    internal SmtpReply(ReadOnlySpan<byte> raw, int code, int lineCount, EnhancedStatusCode enhanced, int enhancedLength)
    {
        Raw = raw;
        Code = code;
        LineCount = lineCount;
        Enhanced = enhanced;
        EnhancedLength = enhancedLength;
    }

    /// <summary>The whole reply as received, every line's code and CRLF included.</summary>
    public ReadOnlySpan<byte> Raw { get; }
    /// <summary>The three-digit reply code, 200 to 559.</summary>
    public int Code { get; }
    public int LineCount { get; }
    /// <summary>The enhanced status code at the start of the first line's text; absent when not there.</summary>
    public EnhancedStatusCode Enhanced { get; }
    /// <summary>Octets of the first line's text taken by the enhanced code and the SP after it.</summary>
    public int EnhancedLength { get; }

    /// <summary>The text of each line, without code, separator and CRLF.</summary>
    public SmtpReplyLines Lines => new(Raw);

    /// <summary>The first line's text (the greeting's or EHLO reply's domain is its first word).</summary>
    public ReadOnlySpan<byte> FirstLine
    {
        get
        {
            var lines = Lines;
            lines.MoveNext();
            return lines.Current;
        }
    }

    /// <summary>The first line's text after the enhanced status code, for logs and Diagnostic-Code.</summary>
    public ReadOnlySpan<byte> FirstLineAfterEnhancedCode => FirstLine[EnhancedLength..];
}

/// <summary>Walks the text of a reply's lines; re-splits the raw reply so the reply needs no line table.</summary>
public ref struct SmtpReplyLines
{
    private ReadOnlySpan<byte> _rest;

    internal SmtpReplyLines(ReadOnlySpan<byte> raw)
    {
        _rest = raw;
        Current = default;
    }

    public ReadOnlySpan<byte> Current { get; private set; }

    public readonly SmtpReplyLines GetEnumerator() => this;

    public bool MoveNext()
    {
        int lf = _rest.IndexOf((byte)'\n');
        if (lf < 0)
            return false;
        // The framer proved each line is code, optional separator, text, CRLF: text starts at 4 ("250-x",
        // "250 x"), or is empty for a bare "250" CRLF.
        var line = _rest[..(lf - 1)];
        Current = line.Length > 4 ? line[4..] : default;
        _rest = _rest[(lf + 1)..];
        return true;
    }
}

/// <summary>The reply framer (the fast parser; the tests fuzz it against a slow reference).</summary>
public static class SmtpReplyParser
{
    /// <summary>RFC 5321 §4.5.3.1.5: "The maximum total length of a reply line including the reply code and the &lt;CRLF&gt; is 512 octets."</summary>
    public const int MaxLineLength = 512;

    /// <summary>
    /// A bound on memory and work, not an RFC number: EHLO replies, the longest in practice, run to about 15
    /// lines; 100 lines of 512 octets is 51,200 octets, the most a caller ever buffers for one reply.
    /// </summary>
    public const int MaxLines = 100;

    /// <summary>
    /// Reply = 1*MaxLines reply lines (RFC 5321 §4.2, see the file's contract). Complete: <paramref name="reply"/>
    /// and <paramref name="consumed"/> set. NeedMore: nothing consumed. Error: <paramref name="error"/> set,
    /// nothing consumed, the stream cannot be trusted past this point.
    /// </summary>
    public static ReplyParseStatus TryParse(ReadOnlySpan<byte> input, out SmtpReply reply, out int consumed, out ReplyError error)
    {
        reply = default;
        consumed = 0;
        int position = 0;
        int code = 0;
        for (int lines = 0; ; lines++)
        {
            if (lines == MaxLines)
            {
                error = ReplyError.TooManyLines;
                return ReplyParseStatus.Error;
            }

            var status = ScanLine(input[position..], code, out int lineLength, out int lineCode, out bool last, out error);
            if (status != ReplyParseStatus.Complete)
                return status;
            code = lineCode;
            position += lineLength;
            if (last)
            {
                var raw = input[..position];
                var firstText = FirstText(raw);
                var enhanced = ParseEnhancedCode(firstText, code, out int enhancedLength);
                reply = new SmtpReply(raw, code, lines + 1, enhanced, enhancedLength);
                consumed = position;
                return ReplyParseStatus.Complete;
            }
        }
    }

    /// <summary>
    /// One line: Reply-code ( "-" / SP / "" ) text CRLF. Checks run in octet order so that the first octet that
    /// proves an error decides which error it is, whatever the amount of input after it.
    /// </summary>
    private static ReplyParseStatus ScanLine(ReadOnlySpan<byte> line, int expectedCode, out int lineLength, out int code, out bool last, out ReplyError error)
    {
        lineLength = 0;
        code = 0;
        last = false;
        error = ReplyError.None;

        // Reply-code = %x32-35 %x30-35 %x30-39
        for (int i = 0; i < 3; i++)
        {
            if (i >= line.Length)
                return ReplyParseStatus.NeedMore;
            byte b = line[i];
            byte high = i == 0 ? (byte)'5' : i == 1 ? (byte)'5' : (byte)'9';
            byte low = i == 0 ? (byte)'2' : (byte)'0';
            if (b < low || b > high)
                return Fail(ReplyError.BadCode, out error);
            code = code * 10 + (b - '0');
        }

        if (expectedCode != 0 && code != expectedCode)
            return Fail(ReplyError.CodeMismatch, out error);
        if (line.Length < 4)
            return ReplyParseStatus.NeedMore;

        int textStart;
        switch (line[3])
        {
            case (byte)'-':
                textStart = 4;
                break;
            case (byte)' ':
                last = true;
                textStart = 4;
                break;
            case (byte)'\r':
                // "250" CRLF: the last line's [ SP textstring ] left out.
                last = true;
                textStart = 3;
                break;
            case (byte)'\n':
                return Fail(ReplyError.BareLineFeed, out error);
            default:
                return Fail(ReplyError.BadSeparator, out error);
        }

        int window = Math.Min(line.Length, MaxLineLength);
        for (int i = textStart; i < window; i++)
        {
            byte b = line[i];
            if (b == '\n')
                return Fail(ReplyError.BareLineFeed, out error);
            if (b != '\r')
                continue;
            // The LF would be octet 513.
            if (i + 1 >= MaxLineLength)
                return Fail(ReplyError.LineTooLong, out error);
            if (i + 1 >= line.Length)
                return ReplyParseStatus.NeedMore;
            if (line[i + 1] != '\n')
                return Fail(ReplyError.BareCarriageReturn, out error);
            lineLength = i + 2;
            return ReplyParseStatus.Complete;
        }

        return line.Length >= MaxLineLength ? Fail(ReplyError.LineTooLong, out error) : ReplyParseStatus.NeedMore;
    }

    /// <summary>The reason in words, for the reason= field of a log line (docs/DELIVERY.md, "Log lines").</summary>
    public static string Describe(ReplyError error) => error switch
    {
        ReplyError.None => "no error",
        ReplyError.LineTooLong => "reply line over 512 octets",
        ReplyError.BareLineFeed => "reply line ends in LF without CR",
        ReplyError.BareCarriageReturn => "CR without LF in a reply",
        ReplyError.BadCode => "reply does not start with a code 200-559",
        ReplyError.BadSeparator => "reply code followed by neither space nor '-'",
        ReplyError.CodeMismatch => "multi-line reply changes its code",
        ReplyError.TooManyLines => "reply of more than 100 lines",
        _ => "unknown reply error",
    };

    private static ReplyParseStatus Fail(ReplyError reason, out ReplyError error)
    {
        error = reason;
        return ReplyParseStatus.Error;
    }

    private static ReadOnlySpan<byte> FirstText(ReadOnlySpan<byte> raw)
    {
        int lf = raw.IndexOf((byte)'\n');
        var line = raw[..(lf - 1)];
        return line.Length > 4 ? line[4..] : default;
    }

    /// <summary>
    /// status-code = class "." subject "." detail   ; RFC 3463 §2, followed by SP or the end of the text (RFC 2034 §4)
    /// class = "2" / "4" / "5"; subject = 1*3digit; detail = 1*3digit
    /// RFC 3463 §2 and RFC 2034 §4 require the class to match the reply code's first digit. A code that breaks
    /// that, or any other rule here, is read as no enhanced code at all rather than as a broken reply: the
    /// three-digit code alone still says what happened, and a bounce then takes its status from the reply class
    /// (docs/DELIVERY.md, "else 5.0.0 / 4.0.0"). 3xx replies have no enhanced code (no class 3).
    /// </summary>
    internal static EnhancedStatusCode ParseEnhancedCode(ReadOnlySpan<byte> text, int code, out int length)
    {
        length = 0;
        int replyClass = code / 100;
        if (replyClass == 3 || text.Length < 5 || text[0] != '0' + replyClass || text[1] != '.')
            return default;
        int i = 2;
        if (!Number(text, ref i, out int subject) || i >= text.Length || text[i] != '.')
            return default;
        i++;
        if (!Number(text, ref i, out int detail))
            return default;
        if (i < text.Length)
        {
            if (text[i] != ' ')
                return default;
            i++;
        }

        length = i;
        return new EnhancedStatusCode((byte)replyClass, (short)subject, (short)detail);
    }

    // 1*3digit
    private static bool Number(ReadOnlySpan<byte> text, ref int i, out int value)
    {
        value = 0;
        int start = i;
        while (i < text.Length && i - start < 4 && text[i] - (uint)'0' <= 9)
        {
            value = value * 10 + (text[i] - '0');
            i++;
        }

        return i - start is >= 1 and <= 3;
    }
}
