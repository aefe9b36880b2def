namespace EdgeMta.LoadTests;

public enum ReplyParse : byte { Complete, Incomplete, Malformed }

/// <summary>
/// Reads one SMTP reply, single- or multi-line, from the front of a receive buffer.
/// Grammar (RFC 5321 §4.2): Reply-line = *( Reply-code "-" [ textstring ] CRLF )
///                                         Reply-code [ SP textstring ] CRLF
/// Every line of one reply must carry the same code (§4.2.1); a line that does not start with three
/// digits followed by '-', ' ' or the line end is Malformed, as is a code outside 200-599 (§4.2.1
/// "the first digit ... 2 to 5"). A bare LF ends a line too: the client is lenient in what it reads,
/// the server is the one under test for what it sends. Nothing is consumed unless the reply is whole.
/// </summary>
public static class SmtpReplyReader
{
    /// <summary>
    /// Parses the first reply in <paramref name="buffer"/>. On Complete, <paramref name="code"/> is the
    /// reply code and <paramref name="consumed"/> the bytes of the whole reply (all its lines).
    /// </summary>
    public static ReplyParse TryRead(ReadOnlySpan<byte> buffer, out int code, out int consumed)
    {
        code = 0;
        consumed = 0;
        int offset = 0;
        while (true)
        {
            ReadOnlySpan<byte> rest = buffer[offset..];
            int lf = rest.IndexOf((byte)'\n');
            if (lf < 0)
            {
                // A partial line: malformed already if its first bytes cannot start a reply line.
                return IsPlausiblePrefix(rest) ? ReplyParse.Incomplete : ReplyParse.Malformed;
            }
            ReadOnlySpan<byte> line = rest[..lf];
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            if (line.Length < 3 || !IsDigit(line[0]) || !IsDigit(line[1]) || !IsDigit(line[2]))
                return ReplyParse.Malformed;
            int lineCode = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            if (lineCode is < 200 or > 599) return ReplyParse.Malformed;
            if (code != 0 && lineCode != code) return ReplyParse.Malformed;
            code = lineCode;
            offset += lf + 1;
            if (line.Length == 3 || line[3] == (byte)' ')
            {
                consumed = offset;
                return ReplyParse.Complete;
            }
            if (line[3] != (byte)'-') return ReplyParse.Malformed;
        }
    }

    /// <summary>True when the reply's lines (of a Complete reply) advertise <paramref name="keyword"/>
    /// as an EHLO keyword (RFC 5321 §4.1.1.1: the keyword starts the text of a line after the first).</summary>
    public static bool HasEhloKeyword(ReadOnlySpan<byte> reply, ReadOnlySpan<byte> keyword)
    {
        bool first = true;
        while (!reply.IsEmpty)
        {
            int lf = reply.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = lf < 0 ? reply : reply[..lf];
            reply = lf < 0 ? default : reply[(lf + 1)..];
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            if (first) { first = false; continue; }
            if (line.Length < 4 + keyword.Length) continue;
            ReadOnlySpan<byte> text = line[4..];
            if (!AsciiEqualsIgnoreCase(text[..keyword.Length], keyword)) continue;
            if (text.Length == keyword.Length || text[keyword.Length] == (byte)' ') return true;
        }
        return false;
    }

    static bool IsPlausiblePrefix(ReadOnlySpan<byte> partial)
    {
        for (int i = 0; i < partial.Length && i < 3; i++)
            if (!IsDigit(partial[i])) return false;
        return partial.Length < 4 || partial[3] is (byte)' ' or (byte)'-' or (byte)'\r';
    }

    static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    static bool AsciiEqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
            if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
        return true;
    }
}
