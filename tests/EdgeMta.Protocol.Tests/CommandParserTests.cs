// Command line framing: every prefix Incomplete, limits, NUL, bare LF, empty lines; and the fast parser
// fuzzed against a slow, obvious reference on random input (fixed seed, bounded iterations).
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class CommandParserTests
{
    public static TheoryData<string> ValidLines => new()
    {
        "EHLO bar.com\r\n", "MAIL FROM:<Smith@bar.com> SIZE=1000 BODY=8BITMIME\r\n", "RCPT TO:<@foo.com:Jones@XYZ.COM>\r\n",
        "DATA\r\n", "QUIT\r\n", "STARTTLS\r\n", "BDAT 1000 LAST\r\n", ".\r\n", "VRFY Crispin\r\n",
        "MAIL FROM:<" + new string('a', 64) + "@" + new string('b', 180) + ".com>\r\n",
    };

    [Theory]
    [MemberData(nameof(ValidLines))]
    public void EveryPrefixOfAValidCommandLineIsIncompleteAndConsumesNothing(string line)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(line);
        for (int n = 0; n < bytes.Length; n++)
        {
            Assert.Equal(ParseStatus.Incomplete, CommandParser.TryParse(bytes.AsSpan(0, n), 512, out SmtpCommand c));
            Assert.Equal(0, c.Consumed);
        }
        Assert.Equal(ParseStatus.Complete, CommandParser.TryParse(bytes, 512, out SmtpCommand whole));
        Assert.Equal(LineError.None, whole.Error);
        Assert.Equal(bytes.Length, whole.Consumed);
        Assert.NotEqual(SmtpVerb.Unknown, whole.Verb);
    }

    [Fact]
    public void ParseCommandDoesNotConsumeTheNextLine()
    {
        Assert.Equal(ParseStatus.Complete, CommandParser.TryParse("NOOP\r\nQUIT\r\n"u8, 512, out SmtpCommand c));
        Assert.Equal(SmtpVerb.Noop, c.Verb);
        Assert.Equal(6, c.Consumed);
    }

    [Fact]
    public void ALineOfExactlyTheLimitWithItsCrlfIsAccepted()
    {
        byte[] line = Encoding.ASCII.GetBytes("NOOP " + new string('x', 512 - 7) + "\r\n");
        Assert.Equal(512, line.Length);
        Assert.Equal(ParseStatus.Complete, CommandParser.TryParse(line, 512, out SmtpCommand c));
        Assert.Equal(LineError.None, c.Error);
    }

    [Fact]
    public void ALineOneOctetOverTheLimitIsTooLongEvenWhenItsEndHasArrived()
    {
        byte[] line = Encoding.ASCII.GetBytes("NOOP " + new string('x', 512 - 6) + "\r\nQUIT\r\n");
        Assert.Equal(ParseStatus.Complete, CommandParser.TryParse(line, 512, out SmtpCommand c));
        Assert.Equal(LineError.TooLong, c.Error);
        Assert.Equal(513, c.Consumed);
        Assert.True(c.LineEnded);
    }

    [Fact]
    public void LimitOctetsWithNoLineFeedAreAnErrorThatConsumesThemAll()
    {
        byte[] junk = new byte[512];
        junk.AsSpan().Fill((byte)'a');
        Assert.Equal(ParseStatus.Error, CommandParser.TryParse(junk, 512, out SmtpCommand c));
        Assert.Equal(LineError.TooLong, c.Error);
        Assert.Equal(512, c.Consumed);
        Assert.False(c.LineEnded);
        Assert.Equal(ParseStatus.Incomplete, CommandParser.TryParse(junk.AsSpan(0, 511), 512, out _));
    }

    [Theory]
    [InlineData("QUIT\n", LineError.BareLineFeed)]
    [InlineData("\n", LineError.BareLineFeed)]
    [InlineData("RSET\r\r\n", LineError.None)]
    [InlineData("QU\0IT\r\n", LineError.Nul)]
    [InlineData("\r\n", LineError.Empty)]
    public void LinesThatCannotBeTrustedAreErrorsWithNothingInterpreted(string line, LineError error)
    {
        Assert.Equal(ParseStatus.Complete, CommandParser.TryParse(Encoding.Latin1.GetBytes(line), 512, out SmtpCommand c));
        Assert.Equal(error, c.Error);
        Assert.Equal(line.Length, c.Consumed);
        if (error != LineError.None)
        {
            Assert.Equal(SmtpVerb.Unknown, c.Verb);
        }
    }

    [Fact]
    public void TrailingSpacesAreNotPartOfTheArgument()
    {
        Assert.Equal(ParseStatus.Complete, CommandParser.TryParse("DATA  \r\n"u8, 512, out SmtpCommand c));
        Assert.Equal(SmtpVerb.Data, c.Verb);
        Assert.Equal(4, c.LineLength);
        Assert.Equal(4, c.ArgumentStart);
    }

    /// <summary>The slow, obvious reference: strings, Split, IndexOf, no cleverness.</summary>
    private static (ParseStatus Status, SmtpVerb Verb, string Argument, int Consumed, LineError Error) Reference(byte[] input, int limit)
    {
        string s = Encoding.Latin1.GetString(input);
        int lf = s.IndexOf('\n');
        if (lf < 0 || lf + 1 > limit)
        {
            if (lf < 0 && s.Length < limit)
            {
                return (ParseStatus.Incomplete, SmtpVerb.Unknown, "", 0, LineError.None);
            }
            return lf < 0 ? (ParseStatus.Error, SmtpVerb.Unknown, "", s.Length, LineError.TooLong) : (ParseStatus.Complete, SmtpVerb.Unknown, "", lf + 1, LineError.TooLong);
        }
        if (lf == 0 || s[lf - 1] != '\r')
        {
            return (ParseStatus.Complete, SmtpVerb.Unknown, "", lf + 1, LineError.BareLineFeed);
        }
        string line = s[..(lf - 1)];
        if (line.Length == 0)
        {
            return (ParseStatus.Complete, SmtpVerb.Unknown, "", lf + 1, LineError.Empty);
        }
        if (line.Contains('\0'))
        {
            return (ParseStatus.Complete, SmtpVerb.Unknown, "", lf + 1, LineError.Nul);
        }
        line = line.TrimEnd(' ');
        if (line == ".")
        {
            return (ParseStatus.Complete, SmtpVerb.Dot, "", lf + 1, LineError.None);
        }
        string[] verbs = ["HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "TURN", "SEND", "SOML", "SAML", "STARTTLS"];
        SmtpVerb[] values = [SmtpVerb.Helo, SmtpVerb.Ehlo, SmtpVerb.Mail, SmtpVerb.Rcpt, SmtpVerb.Data, SmtpVerb.Bdat, SmtpVerb.Rset, SmtpVerb.Noop, SmtpVerb.Quit, SmtpVerb.Vrfy, SmtpVerb.Expn, SmtpVerb.Help, SmtpVerb.Turn, SmtpVerb.Send, SmtpVerb.Soml, SmtpVerb.Saml, SmtpVerb.StartTls];
        int space = line.IndexOf(' ');
        string word = space < 0 ? line : line[..space];
        int k = Array.FindIndex(verbs, v => string.Equals(v, word, StringComparison.OrdinalIgnoreCase) && word.All(char.IsAsciiLetter));
        if (k < 0)
        {
            return (ParseStatus.Complete, SmtpVerb.Unknown, "", lf + 1, LineError.None);
        }
        return (ParseStatus.Complete, values[k], space < 0 ? "" : line[(space + 1)..].TrimStart(' '), lf + 1, LineError.None);
    }

    [Fact]
    public void TheFastParserAgreesWithTheReferenceOnRandomInput()
    {
        var random = new Random(20261122);
        string[] pieces = ["MAIL", "mail", "RCPT", "DATA", "STARTTLS", "starttl", "QUIT", "ehlo", "HeLo", " ", "  ", "\r", "\n", "\r\n", "\0", ".", "FROM:", "<a@b.c>", "x", "\u00e9", "\u00ff", "BDAT", "NOOP", "TURN"];
        for (int iteration = 0; iteration < 20000; iteration++)
        {
            var sb = new StringBuilder();
            int parts = random.Next(1, 12);
            for (int p = 0; p < parts; p++)
            {
                sb.Append(random.Next(10) == 0 ? ((char)random.Next(256)).ToString() : pieces[random.Next(pieces.Length)]);
            }
            byte[] input = Encoding.Latin1.GetBytes(sb.ToString());
            int limit = random.Next(2) == 0 ? 512 : random.Next(16, 40);
            var expected = Reference(input, limit);
            ParseStatus status = CommandParser.TryParse(input, limit, out SmtpCommand c);
            string context = $"input '{sb.ToString().Replace("\r", "\\r").Replace("\n", "\\n")}' limit {limit}";
            Assert.True(expected.Status == status, context);
            if (status == ParseStatus.Incomplete)
            {
                continue;
            }
            Assert.True(expected.Consumed == c.Consumed, context + $" consumed {c.Consumed}");
            Assert.True(expected.Error == c.Error, context + $" error {c.Error}");
            Assert.True(expected.Verb == c.Verb, context + $" verb {c.Verb}");
            if (c.Error == LineError.None && c.Verb != SmtpVerb.Unknown)
            {
                string argument = Encoding.Latin1.GetString(input.AsSpan(c.ArgumentStart, c.LineLength - c.ArgumentStart));
                Assert.True(expected.Argument == argument, context + $" argument '{argument}'");
            }
        }
    }
}
