// The reply framer on RFC examples and on every malformed case it names. Every prefix of a valid reply must be
// NeedMore; the fuzz against a slow reference is in SmtpReplyParserFuzzTests.
using System.Text;
using EdgeMta.Delivery;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

public class SmtpReplyParserTests
{
    private static ReplyParseStatus Parse(string text, out int code, out int consumed, out ReplyError error, out string[] lines, out string enhanced)
    {
        var bytes = Encoding.Latin1.GetBytes(text);
        var status = SmtpReplyParser.TryParse(bytes, out var reply, out consumed, out error);
        code = reply.Code;
        enhanced = reply.Enhanced.ToString();
        var list = new List<string>();
        foreach (var line in reply.Lines)
            list.Add(Encoding.Latin1.GetString(line));
        lines = [.. list];
        return status;
    }

    [Fact]
    public void ParsesSingleLineGreetingFromRfc5321AppendixD()
    {
        // RFC 5321 Appendix D.1: "S: 220 foo.com Simple Mail Transfer Service Ready"
        var status = Parse("220 foo.com Simple Mail Transfer Service Ready\r\n", out int code, out int consumed, out var error, out var lines, out var enhanced);
        Assert.Equal(ReplyParseStatus.Complete, status);
        Assert.Equal(ReplyError.None, error);
        Assert.Equal(220, code);
        Assert.Equal(48, consumed);
        Assert.Equal(["foo.com Simple Mail Transfer Service Ready"], lines);
        Assert.Equal(string.Empty, enhanced);
    }

    [Fact]
    public void ParsesMultiLineEhloReplyFromRfc5321AppendixD()
    {
        // RFC 5321 Appendix D.1.
        const string Reply = "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n";
        var status = Parse(Reply + "220 next", out int code, out int consumed, out _, out var lines, out _);
        Assert.Equal(ReplyParseStatus.Complete, status);
        Assert.Equal(250, code);
        Assert.Equal(Reply.Length, consumed);
        Assert.Equal(["foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "HELP"], lines);
    }

    [Fact]
    public void ParsesRfc2033LmtpPerRecipientRepliesOneAtATime()
    {
        // RFC 2033 §4.2's example: after the data, one reply per accepted recipient.
        var bytes = "250 2.1.5 Ok\r\n452 <jones@XYZ.COM> is temporarily over quota\r\n"u8;
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out var first, out int used, out _));
        Assert.Equal(250, first.Code);
        Assert.Equal(new EnhancedStatusCode(2, 1, 5), first.Enhanced);
        Assert.Equal("Ok", Encoding.ASCII.GetString(first.FirstLineAfterEnhancedCode));
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes[used..], out var second, out int used2, out _));
        Assert.Equal(452, second.Code);
        Assert.False(second.Enhanced.IsPresent);
        Assert.Equal(bytes.Length, used + used2);
    }

    [Theory]
    [InlineData("550 5.1.1 User unknown\r\n", "5.1.1", "User unknown")]
    [InlineData("451 4.7.1 Try again\r\n", "4.7.1", "Try again")]
    [InlineData("250 2.0.0\r\n", "2.0.0", "")]
    [InlineData("552 5.123.999 x\r\n", "5.123.999", "x")]
    [InlineData("550 4.1.1 class differs\r\n", "", "4.1.1 class differs")]
    [InlineData("354 3.0.0 no class 3\r\n", "", "3.0.0 no class 3")]
    [InlineData("550 5.1 two parts\r\n", "", "5.1 two parts")]
    [InlineData("550 5.1.1234 long detail\r\n", "", "5.1.1234 long detail")]
    [InlineData("550 5.1.1x glued\r\n", "", "5.1.1x glued")]
    [InlineData("550 5..1 empty subject\r\n", "", "5..1 empty subject")]
    public void ReadsEnhancedCodeOnlyWhenWellFormedAndOfTheSameClass(string text, string enhanced, string rest)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out var reply, out _, out _));
        Assert.Equal(enhanced, reply.Enhanced.ToString());
        Assert.Equal(rest, Encoding.ASCII.GetString(reply.FirstLineAfterEnhancedCode));
    }

    [Theory]
    [InlineData("250\r\n", new string[] { "" })]
    [InlineData("250 \r\n", new string[] { "" })]
    [InlineData("250-\r\n250 x\r\n", new string[] { "", "x" })]
    [InlineData("250-a\r\n250\r\n", new string[] { "a", "" })]
    public void AcceptsEmptyTextWhereTheGrammarAllowsIt(string text, string[] expected)
    {
        Assert.Equal(ReplyParseStatus.Complete, Parse(text, out _, out int consumed, out _, out var lines, out _));
        Assert.Equal(text.Length, consumed);
        Assert.Equal(expected, lines);
    }

    [Theory]
    [InlineData("\r\n", ReplyError.BadCode)]
    [InlineData("abc ok\r\n", ReplyError.BadCode)]
    [InlineData("150 low\r\n", ReplyError.BadCode)]
    [InlineData("650 high\r\n", ReplyError.BadCode)]
    [InlineData("260 second digit\r\n", ReplyError.BadCode)]
    [InlineData("25x\r\n", ReplyError.BadCode)]
    [InlineData("25\r\n", ReplyError.BadCode)]
    [InlineData("2500 four digits\r\n", ReplyError.BadSeparator)]
    [InlineData("250_x\r\n", ReplyError.BadSeparator)]
    [InlineData("250\tx\r\n", ReplyError.BadSeparator)]
    [InlineData("250\n", ReplyError.BareLineFeed)]
    [InlineData("250 ok\n", ReplyError.BareLineFeed)]
    [InlineData("250-ok\n250 ok\r\n", ReplyError.BareLineFeed)]
    [InlineData("250 o\rk\r\n", ReplyError.BareCarriageReturn)]
    [InlineData("250 ok\r\r\n", ReplyError.BareCarriageReturn)]
    [InlineData("250-a\r\n251 b\r\n", ReplyError.CodeMismatch)]
    [InlineData("250-a\r\n550 b\r\n", ReplyError.CodeMismatch)]
    [InlineData("250-a\r\n250-b\r\nxyz\r\n", ReplyError.BadCode)]
    public void RefusesMalformedRepliesWithTheirReason(string text, ReplyError expected)
    {
        Assert.Equal(ReplyParseStatus.Error, Parse(text, out _, out int consumed, out var error, out _, out _));
        Assert.Equal(expected, error);
        Assert.Equal(0, consumed);
    }

    [Fact]
    public void AcceptsALineOfExactly512OctetsAndRefusesOneOf513()
    {
        var fits = "250 " + new string('a', SmtpReplyParser.MaxLineLength - 6) + "\r\n";
        Assert.Equal(512, fits.Length);
        Assert.Equal(ReplyParseStatus.Complete, Parse(fits, out _, out int consumed, out _, out _, out _));
        Assert.Equal(512, consumed);

        var over = "250 " + new string('a', SmtpReplyParser.MaxLineLength - 5) + "\r\n";
        Assert.Equal(ReplyParseStatus.Error, Parse(over, out _, out _, out var error, out _, out _));
        Assert.Equal(ReplyError.LineTooLong, error);
    }

    [Fact]
    public void RefusesAnEndlessLineAsSoonAs512OctetsHaveNoEnd()
    {
        var endless = "250-" + new string('a', SmtpReplyParser.MaxLineLength - 4);
        Assert.Equal(ReplyParseStatus.Error, Parse(endless, out _, out _, out var error, out _, out _));
        Assert.Equal(ReplyError.LineTooLong, error);
        Assert.Equal(ReplyParseStatus.NeedMore, Parse(endless[..^1], out _, out _, out _, out _, out _));
    }

    [Fact]
    public void AcceptsMaxLinesAndRefusesOneMore()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < SmtpReplyParser.MaxLines - 1; i++)
            sb.Append("250-x\r\n");
        Assert.Equal(ReplyParseStatus.NeedMore, Parse(sb.ToString(), out _, out _, out _, out _, out _));
        Assert.Equal(ReplyParseStatus.Complete, Parse(sb + "250 y\r\n", out _, out _, out _, out var lines, out _));
        Assert.Equal(SmtpReplyParser.MaxLines, lines.Length);

        Assert.Equal(ReplyParseStatus.Error, Parse(sb + "250-x\r\n250 y\r\n", out _, out _, out var error, out _, out _));
        Assert.Equal(ReplyError.TooManyLines, error);
    }

    [Theory]
    [InlineData("220 foo.com Simple Mail Transfer Service Ready\r\n")]
    [InlineData("250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n")]
    [InlineData("250\r\n")]
    [InlineData("550-5.1.1 first\r\n550 5.1.1 second\r\n")]
    public void EveryPrefixOfAValidReplyNeedsMoreAndConsumesNothing(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        for (int n = 0; n < bytes.Length; n++)
        {
            Assert.Equal(ReplyParseStatus.NeedMore, SmtpReplyParser.TryParse(bytes.AsSpan(0, n), out _, out int consumed, out var error));
            Assert.Equal(0, consumed);
            Assert.Equal(ReplyError.None, error);
        }

        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out _, out int all, out _));
        Assert.Equal(bytes.Length, all);
    }

    [Fact]
    public void KeepsTextOctetsItDoesNotJudge()
    {
        // UTF-8 in the text (RFC 6531 servers) is carried, not refused.
        var bytes = "250 café ok\r\n"u8.ToArray();
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out var reply, out _, out _));
        Assert.Equal(bytes.AsSpan(4, bytes.Length - 6).ToArray(), reply.FirstLine.ToArray());
        Assert.Equal(bytes, reply.Raw.ToArray());
    }

    private static readonly byte[] EhloReply = Encoding.ASCII.GetBytes(
        "250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
        + "550 5.1.1 <x@example.net> User unknown\r\n");

    [Fact]
    public void FramesAndReadsRepliesWithoutAllocating()
    {
        long bytes = Allocations.SteadyStateBytes(() =>
        {
            var input = EhloReply.AsSpan();
            int total = 0;
            while (SmtpReplyParser.TryParse(input, out var reply, out int consumed, out _) == ReplyParseStatus.Complete)
            {
                foreach (var line in reply.Lines)
                    total += line.Length;
                total += reply.Enhanced.Detail + reply.FirstLineAfterEnhancedCode.Length;
                input = input[consumed..];
            }

            Assert.True(total > 0);
        });
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void DescribesEveryErrorInItsOwnWords()
    {
        var seen = new HashSet<string>();
        foreach (var error in Enum.GetValues<ReplyError>())
        {
            string text = SmtpReplyParser.Describe(error);
            Assert.NotEqual("unknown reply error", text);
            Assert.True(seen.Add(text), $"{error} shares its words");
        }
    }
}
