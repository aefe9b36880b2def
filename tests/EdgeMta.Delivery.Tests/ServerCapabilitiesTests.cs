// Capabilities from EHLO and LHLO replies (RFC 5321 §4.1.1.1, RFC 2033 §4.1) and the domain used for loop
// detection (docs/DELIVERY.md "Loops").
using System.Text;
using EdgeMta.Delivery;

namespace EdgeMta.Delivery.Tests;

public class ServerCapabilitiesTests
{
    private static ServerCapabilities Read(string reply)
    {
        var bytes = Encoding.Latin1.GetBytes(reply);
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out var parsed, out _, out _));
        Assert.True(ServerCapabilities.TryParse(parsed, out var capabilities, out string error), error);
        return capabilities;
    }

    [Fact]
    public void ReadsTheRfc5321AppendixDEhloReply()
    {
        var c = Read("250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n");
        Assert.Equal(SmtpExtensions.EightBitMime | SmtpExtensions.Size | SmtpExtensions.Dsn, c.Extensions);
        Assert.Equal(0, c.SizeLimit);
        Assert.Equal("foo.com", c.Domain);
    }

    [Fact]
    public void ReadsEveryKnownExtension()
    {
        var c = Read("250-mx.example.net at your service\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
            + "250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-STARTTLS\r\n250-SIZE 35882577\r\n250 ENHANCEDSTATUSCODES\r\n");
        foreach (var extension in Enum.GetValues<SmtpExtensions>())
            Assert.True(c.Has(extension), extension.ToString());
        Assert.Equal(35882577, c.SizeLimit);
        Assert.Equal("mx.example.net", c.Domain);
    }

    [Fact]
    public void ReadsKeywordsWithoutRegardToCase()
    {
        var c = Read("250-h\r\n250-pipelining\r\n250-StartTls\r\n250 size 1000\r\n");
        Assert.Equal(SmtpExtensions.Pipelining | SmtpExtensions.StartTls | SmtpExtensions.Size, c.Extensions);
        Assert.Equal(1000, c.SizeLimit);
    }

    [Fact]
    public void IgnoresUnknownKeywordsAndNearMisses()
    {
        var c = Read("250-h\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=LOGIN\r\n250-PIPELININGX\r\n250-XDSN\r\n250-DS\r\n"
            + "250-VRFY\r\n250-SIZE=100\r\n250 X-EXPS GSSAPI\r\n");
        Assert.Equal(SmtpExtensions.None, c.Extensions);
    }

    [Fact]
    public void TakesNoExtensionFromTheFirstLine()
    {
        // The first line is Domain [ SP ehlo-greet ]; a host called "PIPELINING" offers nothing by its name.
        var c = Read("250 PIPELINING\r\n");
        Assert.Equal(SmtpExtensions.None, c.Extensions);
        Assert.Equal("PIPELINING", c.Domain);
    }

    [Theory]
    [InlineData("250-h\r\n250 SIZE\r\n", 0)]
    [InlineData("250-h\r\n250 SIZE 0\r\n", 0)]
    [InlineData("250-h\r\n250 SIZE 52428800\r\n", 52428800)]
    [InlineData("250-h\r\n250 SIZE 999999999999999999\r\n", 999999999999999999)]
    [InlineData("250-h\r\n250 SIZE 9999999999999999999\r\n", 0)]
    [InlineData("250-h\r\n250 SIZE 10MB\r\n", 0)]
    [InlineData("250-h\r\n250 SIZE -5\r\n", 0)]
    [InlineData("250-h\r\n250 SIZE 100 extra\r\n", 100)]
    public void ReadsTheSizeLimitOrNoneWhenItIsNotANumber(string reply, long limit)
    {
        var c = Read(reply);
        Assert.True(c.Has(SmtpExtensions.Size));
        Assert.Equal(limit, c.SizeLimit);
    }

    [Fact]
    public void ReadsAnLhloReplyAsAnEhloReply()
    {
        // RFC 2033 §4.1's example.
        var c = Read("250-foo.edu\r\n250-PIPELINING\r\n250 SIZE\r\n");
        Assert.Equal(SmtpExtensions.Pipelining | SmtpExtensions.Size, c.Extensions);
        Assert.Equal("foo.edu", c.Domain);
    }

    [Theory]
    [InlineData("500 5.5.1 Unknown command\r\n", "500")]
    [InlineData("421 4.3.2 Going down\r\n", "421")]
    [InlineData("220 not an EHLO reply\r\n", "220")]
    public void RefusesAReplyOtherThan250(string reply, string named)
    {
        var bytes = Encoding.ASCII.GetBytes(reply);
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out var parsed, out _, out _));
        Assert.False(ServerCapabilities.TryParse(parsed, out var capabilities, out string error));
        Assert.Contains(named, error);
        Assert.Equal(SmtpExtensions.None, capabilities.Extensions);
    }

    [Theory]
    [InlineData("220 mx.example.org ESMTP\r\n", "mx.example.org")]
    [InlineData("220-mx.example.org ESMTP\r\n220 more\r\n", "mx.example.org")]
    [InlineData("220 mx.example.org\r\n", "mx.example.org")]
    [InlineData("220\r\n", "")]
    [InlineData("220 \r\n", "")]
    [InlineData("220 [192.0.2.1] hi\r\n", "[192.0.2.1]")]
    public void TakesTheDomainFromTheGreetingsFirstWord(string greeting, string domain)
    {
        var bytes = Encoding.ASCII.GetBytes(greeting);
        Assert.Equal(ReplyParseStatus.Complete, SmtpReplyParser.TryParse(bytes, out var parsed, out _, out _));
        Assert.Equal(domain, ServerCapabilities.DomainOf(parsed));
    }

    [Theory]
    [InlineData("mx.example.org", "mx.example.org", true)]
    [InlineData("MX.Example.ORG", "mx.example.org", true)]
    [InlineData("mx.example.org.", "mx.example.org", true)]
    [InlineData("mx.example.org", "MX.EXAMPLE.ORG.", true)]
    [InlineData("mx2.example.org", "mx.example.org", false)]
    [InlineData("mx.example.org.evil", "mx.example.org", false)]
    [InlineData("", "mx.example.org", false)]
    [InlineData(".", "", false)]
    [InlineData("", "", false)]
    [InlineData("m\u00c3\u00a9.example", "m\u00c3\u00a9.example", false)]
    public void RecognisesItsOwnHostNameInAnotherHostsReply(string domain, string hostname, bool loops)
    {
        Assert.Equal(loops, ServerCapabilities.NamesHost(domain, hostname));
    }
}
