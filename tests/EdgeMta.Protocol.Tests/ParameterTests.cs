// MAIL and RCPT parameters (RFC 1870, 6152, 3030, 6531, 3461): accepted values, 555 for unknown, 501 for junk, 552 for size.
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class ParameterTests
{
    private static ParameterError Mail(string s, out MailParameters p)
    {
        EsmtpParameters.TryParseMail(Encoding.UTF8.GetBytes(s), 26214400, out p, out ParameterError e);
        return e;
    }

    private static ParameterError Rcpt(string s)
    {
        EsmtpParameters.TryParseRcpt(Encoding.UTF8.GetBytes(s), out ParameterError e);
        return e;
    }

    [Fact]
    public void EveryMailParameterIsReadAndKept()
    {
        Assert.Equal(ParameterError.None, Mail("SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159", out MailParameters p));
        Assert.Equal(1000, p.DeclaredSize);
        Assert.Equal(BodyType.EightBitMime, p.Body);
        Assert.True(p.SmtpUtf8);
    }

    [Theory]
    [InlineData("")]
    [InlineData("size=0")]
    [InlineData("BODY=7BIT")]
    [InlineData("BODY=binarymime")]
    [InlineData("RET=FULL")]
    [InlineData("ENVID=a+2Bb")]
    [InlineData("SIZE=26214400")]
    [InlineData("SIZE=10  BODY=7BIT")]
    public void ValidMailParametersAreAccepted(string s) => Assert.Equal(ParameterError.None, Mail(s, out _));

    [Theory]
    [InlineData("FOO=1", ParameterError.Unknown)]
    [InlineData("AUTH=<>", ParameterError.Unknown)]
    [InlineData("NOTIFY=NEVER", ParameterError.Unknown)]
    [InlineData("SIZE=abc", ParameterError.BadValue)]
    [InlineData("SIZE=", ParameterError.BadValue)]
    [InlineData("SIZE", ParameterError.BadValue)]
    [InlineData("SIZE=-1", ParameterError.BadValue)]
    [InlineData("SIZE=1 SIZE=2", ParameterError.BadValue)]
    [InlineData("SIZE=26214401", ParameterError.SizeExceeded)]
    [InlineData("SIZE=99999999999999999999999999999999", ParameterError.SizeExceeded)]
    [InlineData("SIZE=18446744073709551616", ParameterError.SizeExceeded)]
    [InlineData("BODY=9BIT", ParameterError.BadValue)]
    [InlineData("SMTPUTF8=yes", ParameterError.BadValue)]
    [InlineData("RET=ALL", ParameterError.BadValue)]
    [InlineData("ENVID=a+0Db", ParameterError.BadValue)]
    [InlineData("ENVID=a+0ab", ParameterError.BadValue)]
    [InlineData("ENVID=a+2", ParameterError.BadValue)]
    [InlineData("ENVID=a\rb", ParameterError.BadValue)]
    [InlineData("ENVID=a\u0001b", ParameterError.BadValue)]
    [InlineData("-SIZE=1", ParameterError.BadValue)]
    [InlineData("SIZE=1=2", ParameterError.BadValue)]
    public void BadMailParametersAreRefusedWithTheRightError(string s, ParameterError error) => Assert.Equal(error, Mail(s, out _));

    [Fact]
    public void AnEnvIdOver100DecodedCharactersIsRefused()
    {
        Assert.Equal(ParameterError.None, Mail("ENVID=" + new string('x', 100), out _));
        Assert.Equal(ParameterError.BadValue, Mail("ENVID=" + new string('x', 101), out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("NOTIFY=NEVER")]
    [InlineData("NOTIFY=SUCCESS,FAILURE,DELAY")]
    [InlineData("notify=failure")]
    [InlineData("ORCPT=rfc822;Jones@foo.com")]
    [InlineData("ORCPT=rfc822;a+2Bb@foo.com NOTIFY=DELAY")]
    public void ValidRcptParametersAreAccepted(string s) => Assert.Equal(ParameterError.None, Rcpt(s));

    [Theory]
    [InlineData("SIZE=10", ParameterError.Unknown)]
    [InlineData("XFOO", ParameterError.Unknown)]
    [InlineData("NOTIFY=NEVER,SUCCESS", ParameterError.BadValue)]
    [InlineData("NOTIFY=SUCCESS,SUCCESS", ParameterError.BadValue)]
    [InlineData("NOTIFY=SUCCESS,", ParameterError.BadValue)]
    [InlineData("NOTIFY=", ParameterError.BadValue)]
    [InlineData("ORCPT=Jones@foo.com", ParameterError.BadValue)]
    [InlineData("ORCPT=rfc822;", ParameterError.BadValue)]
    [InlineData("ORCPT=rfc822;a+0Ab", ParameterError.BadValue)]
    [InlineData("ORCPT=rfc822;a\rb", ParameterError.BadValue)]
    public void BadRcptParametersAreRefusedWithTheRightError(string s, ParameterError error) => Assert.Equal(error, Rcpt(s));
}
