// The error limit the host may lower (a server under stress, docs/SCREENING.md "Slow clients": Postfix's
// smtpd_hard_error_limit ${stress?{1}:{20}}), and whether message text or a command line is expected next,
// which tells the host which deadline to arm.
namespace EdgeMta.Protocol.Tests;

public sealed class ErrorLimitTests
{
    [Fact]
    public void ALoweredErrorLimitClosesAtTheFirstErrorAndResetRestoresTheOptionsLimit()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", ErrorLimit = 20 });
        d.Start();
        d.Session.ErrorLimit = 1;
        Assert.Equal("500 5.5.2 Error: command not recognized\r\n421 4.7.0 foo.com Error: too many errors\r\n", d.Send("BOGUS\r\n"));
        Assert.True(d.Closed);

        d.Session.Reset();
        Assert.Equal(20, d.Session.ErrorLimit);
        d.Start();
        Assert.Equal("500 5.5.2 Error: command not recognized\r\n", d.Send("BOGUS\r\n"));
        Assert.False(d.Closed);
        d.Session.ErrorLimit = 0; // never below 1: a session must be able to close on its errors
        Assert.Equal(1, d.Session.ErrorLimit);
    }

    [Fact]
    public void MessageTextIsExpectedAfter354AndInsideABdatChunkOnly()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com" });
        d.Start();
        d.Send("EHLO client.example\r\n");
        d.Send("MAIL FROM:<a@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\n");
        Assert.False(d.Session.ReadingMessageText);
        Assert.StartsWith("354 ", d.Send("DATA\r\n"));
        Assert.True(d.Session.ReadingMessageText);
        d.Send("text\r\n.\r\n");
        Assert.False(d.Session.ReadingMessageText);
        d.Send("MAIL FROM:<a@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nBDAT 10\r\nhalf");
        Assert.True(d.Session.ReadingMessageText); // the chunk began without a reply: still text
        d.Send("-chunk");
        Assert.False(d.Session.ReadingMessageText);
    }
}
