using System.Text;
using EdgeMta.LoadTests;

namespace EdgeMta.LoadTests.Tests;

public class SmtpReplyReaderTests
{
    static ReplyParse Read(string s, out int code, out int consumed) =>
        SmtpReplyReader.TryRead(Encoding.ASCII.GetBytes(s), out code, out consumed);

    [Fact]
    public void ReadsASingleLineReplyAndConsumesOnlyIt()
    {
        Assert.Equal(ReplyParse.Complete, Read("250 2.1.0 Ok\r\n354 go\r\n", out int code, out int consumed));
        Assert.Equal(250, code);
        Assert.Equal(14, consumed);
    }

    [Fact]
    public void ReadsAMultiLineReplyAsOne()
    {
        string ehlo = "250-mx greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
        Assert.Equal(ReplyParse.Complete, Read(ehlo + "250 next", out int code, out int consumed));
        Assert.Equal(250, code);
        Assert.Equal(ehlo.Length, consumed);
    }

    [Fact]
    public void AcceptsACodeWithNoTextAndABareLf()
    {
        Assert.Equal(ReplyParse.Complete, Read("221\r\n", out int code, out _));
        Assert.Equal(221, code);
        Assert.Equal(ReplyParse.Complete, Read("250 ok\n", out code, out int consumed));
        Assert.Equal(7, consumed);
    }

    [Fact]
    public void EveryPrefixOfAReplyIsIncomplete()
    {
        string reply = "250-a\r\n250-PIPELINING\r\n250 b\r\n";
        for (int i = 0; i < reply.Length; i++)
            Assert.Equal(ReplyParse.Incomplete, Read(reply[..i], out _, out int consumed));
    }

    [Theory]
    [InlineData("hello\r\n")]
    [InlineData("25 short\r\n")]
    [InlineData("250x no separator\r\n")]
    [InlineData("199 not a reply code\r\n")]
    [InlineData("250-first\r\n550 code changes\r\n")]
    [InlineData("HTTP/1.1 400")]
    public void RejectsWhatIsNotAReply(string text) =>
        Assert.Equal(ReplyParse.Malformed, Read(text, out _, out _));

    [Fact]
    public void FindsPipeliningOnlyAsAKeywordAfterTheFirstLine()
    {
        static bool Has(string s) => SmtpReplyReader.HasEhloKeyword(Encoding.ASCII.GetBytes(s), "PIPELINING"u8);
        Assert.True(Has("250-mx\r\n250-SIZE 1\r\n250 pipelining\r\n"));
        Assert.True(Has("250-mx\r\n250-PIPELINING\r\n250 HELP\r\n"));
        Assert.False(Has("250 PIPELINING is not here on the greeting line\r\n"));
        Assert.False(Has("250-mx\r\n250-PIPELININGX\r\n250 HELP\r\n"));
        Assert.False(Has("250-mx\r\n250 HELP\r\n"));
    }
}
