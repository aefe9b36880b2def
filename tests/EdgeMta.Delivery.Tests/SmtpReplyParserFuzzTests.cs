// The reply framer against a slow reference written plainly from RFC 5321 §4.2 and §4.5.3.1.5, on seeded,
// bounded random inputs; and fed one octet at a time the way a socket may deliver them, it must frame the
// same replies as when fed everything at once.
using System.Text;
using EdgeMta.Delivery;

namespace EdgeMta.Delivery.Tests;

public class SmtpReplyParserFuzzTests
{
    private readonly record struct Outcome(ReplyParseStatus Status, ReplyError Error, int Consumed, int Code, int Lines, string Enhanced);

    private static Outcome Fast(ReadOnlySpan<byte> input)
    {
        var status = SmtpReplyParser.TryParse(input, out var reply, out int consumed, out var error);
        return new Outcome(status, error, consumed, reply.Code, reply.LineCount, reply.Enhanced.ToString());
    }

    // The reference: one string, one line at a time, each rule as the RFC states it.
    private static Outcome Reference(string s)
    {
        int position = 0;
        int code = 0;
        for (int lines = 0; ; lines++)
        {
            if (lines == 100)
                return Failed(ReplyError.TooManyLines);
            string rest = s[position..];
            int valid = 0;
            while (valid < 3 && valid < rest.Length && CodeDigitFits(rest[valid], valid))
                valid++;
            if (valid < 3)
                return valid < rest.Length ? Failed(ReplyError.BadCode) : NeedMore();
            int lineCode = int.Parse(rest[..3]);
            if (code != 0 && lineCode != code)
                return Failed(ReplyError.CodeMismatch);
            code = lineCode;
            if (rest.Length == 3)
                return NeedMore();
            char separator = rest[3];
            if (separator == '\n')
                return Failed(ReplyError.BareLineFeed);
            if (separator is not (' ' or '-' or '\r'))
                return Failed(ReplyError.BadSeparator);
            int end = rest.IndexOfAny(['\r', '\n'], separator == '\r' ? 3 : 4);
            if (end < 0 || end >= 512)
                return rest.Length >= 512 ? Failed(ReplyError.LineTooLong) : NeedMore();
            if (rest[end] == '\n')
                return Failed(ReplyError.BareLineFeed);
            // A line is at most 512 octets with its CRLF, so its CR is at most at offset 510.
            if (end > 510)
                return Failed(ReplyError.LineTooLong);
            if (end + 1 == rest.Length)
                return NeedMore();
            if (rest[end + 1] != '\n')
                return Failed(ReplyError.BareCarriageReturn);
            position += end + 2;
            if (separator != '-')
                return new Outcome(ReplyParseStatus.Complete, ReplyError.None, position, code, lines + 1, ReferenceEnhanced(s, code));
        }
    }

    private static bool CodeDigitFits(char c, int index) => index switch
    {
        0 => c is >= '2' and <= '5',
        1 => c is >= '0' and <= '5',
        _ => c is >= '0' and <= '9',
    };

    private static string ReferenceEnhanced(string s, int code)
    {
        string first = s[..s.IndexOf('\r')];
        string text = first.Length > 4 ? first[4..] : "";
        string word = text.Split(' ')[0];
        string[] parts = word.Split('.');
        if (parts.Length != 3 || code / 100 == 3 || parts[0] != (code / 100).ToString())
            return "";
        foreach (var part in parts[1..])
        {
            if (part.Length is < 1 or > 3 || !part.All(char.IsAsciiDigit))
                return "";
        }

        return $"{parts[0]}.{int.Parse(parts[1])}.{int.Parse(parts[2])}";
    }

    private static Outcome Failed(ReplyError error) => new(ReplyParseStatus.Error, error, 0, 0, 0, "");

    private static Outcome NeedMore() => new(ReplyParseStatus.NeedMore, ReplyError.None, 0, 0, 0, "");

    private static readonly string[] Codes = ["250", "220", "354", "421", "452", "550", "554", "251", "150", "650", "2x0", "25"];
    private static readonly string[] Texts = ["", "ok", "2.1.5 Ok", "5.1.1 User unknown", "4.7.1", "2.0.0x", "5.1234.1 x", "SIZE 1000", "\u00e9t\u00e9", " "];
    private static readonly string[] Separators = ["-", "-", " ", " ", "", "_", "\t"];
    private static readonly string[] Endings = ["\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r", "\rx", ""];

    private static string RandomInput(Random random)
    {
        var sb = new StringBuilder();
        int replies = random.Next(1, 4);
        for (int r = 0; r < replies; r++)
        {
            string code = Codes[random.Next(Codes.Length)];
            int lines = random.Next(8) == 0 ? random.Next(95, 105) : random.Next(1, 6);
            // Long replies are mostly left clean, so that some reach the line limit instead of an earlier error.
            int mutate = lines > 6 ? 2000 : 1;
            for (int l = 0; l < lines; l++)
            {
                string lineCode = random.Next(30 * mutate) == 0 ? Codes[random.Next(Codes.Length)] : code;
                string separator = l == lines - 1 ? (random.Next(6) == 0 ? "-" : " ") : (random.Next(6 * mutate) == 0 ? Separators[random.Next(Separators.Length)] : "-");
                string text = random.Next(15 * mutate) == 0 ? new string('a', random.Next(500, 515)) : Texts[random.Next(Texts.Length)];
                string ending = random.Next(10 * mutate) == 0 ? Endings[random.Next(Endings.Length)] : "\r\n";
                sb.Append(lineCode).Append(separator).Append(text).Append(ending);
            }
        }

        var s = sb.ToString();
        return random.Next(4) == 0 ? s[..random.Next(s.Length + 1)] : s;
    }

    [Fact]
    public void AgreesWithTheReferenceOnRandomInput()
    {
        var random = new Random(5321);
        var seen = new HashSet<(ReplyParseStatus, ReplyError)>();
        for (int i = 0; i < 4000; i++)
        {
            string input = RandomInput(random);
            var expected = Reference(input);
            var actual = Fast(Encoding.Latin1.GetBytes(input));
            Assert.True(expected == actual, $"case {i}: expected {expected}, got {actual} for {input.ReplaceLineEndings("\\n")}");
            seen.Add((actual.Status, actual.Error));
        }

        // The generator must reach every outcome, or the agreement above proves less than it seems.
        Assert.Contains((ReplyParseStatus.Complete, ReplyError.None), seen);
        Assert.Contains((ReplyParseStatus.NeedMore, ReplyError.None), seen);
        foreach (var error in Enum.GetValues<ReplyError>().Where(e => e != ReplyError.None))
            Assert.True(seen.Contains((ReplyParseStatus.Error, error)), $"no case ended in {error}");
    }

    [Fact]
    public void FramesTheSameRepliesFedOneOctetAtATimeAsFedAtOnce()
    {
        var random = new Random(2033);
        for (int i = 0; i < 400; i++)
        {
            var bytes = Encoding.Latin1.GetBytes(RandomInput(random));
            Assert.Equal(FrameAll(bytes, bytes.Length), FrameAll(bytes, 1));
        }
    }

    // What a receive loop does: append what arrived, frame every complete reply, keep the rest; stop at an Error.
    private static List<Outcome> FrameAll(byte[] stream, int chunk)
    {
        var outcomes = new List<Outcome>();
        var buffer = new List<byte>();
        for (int sent = 0; sent < stream.Length;)
        {
            int n = Math.Min(chunk, stream.Length - sent);
            buffer.AddRange(stream.AsSpan(sent, n));
            sent += n;
            while (true)
            {
                var outcome = Fast(buffer.ToArray());
                if (outcome.Status == ReplyParseStatus.NeedMore)
                    break;
                outcomes.Add(outcome);
                if (outcome.Status == ReplyParseStatus.Error)
                    return outcomes;
                buffer.RemoveRange(0, outcome.Consumed);
            }
        }

        outcomes.Add(Fast(buffer.ToArray()));
        return outcomes;
    }
}
