// The rows of PROTOCOL.md "Other commands and replies" about limits, pipelining, timeouts, TLS and gates.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;
using static EdgeMta.Protocol.Tests.StateTableTests;

namespace EdgeMta.Protocol.Tests;

public class SessionPolicyTests
{
    private static SessionDriver Greeted(SmtpSessionOptions? o = null) => InState(SmtpState.Wait, o);

    [Theory]
    [InlineData("GET / HTTP/1.1")]
    [InlineData("POST /form HTTP/1.0")]
    [InlineData("CONNECT mail.example:25 HTTP/1.1")]
    [InlineData("Host: foo.com")]
    [InlineData("get /")]
    public void AWebClientGets221AndIsClosed(string line)
    {
        var d = new SessionDriver();
        d.Start();
        Assert.Equal("221 2.7.0 Error: this is an SMTP server, not a web server\r\n", d.Send(line + "\r\n"));
        Assert.True(d.Closed);
    }

    [Theory]
    [InlineData("EHLO a.b\r\nNOOP\r\n")]
    [InlineData("HELO a.b\r\nNOOP\r\n")]
    [InlineData("NOOP\r\nNOOP\r\n")]
    [InlineData("VRFY a\r\nNOOP\r\n")]
    [InlineData("EXPN a\r\nNOOP\r\n")]
    [InlineData("TURN\r\nNOOP\r\n")]
    [InlineData("NOOP\r\nN")]
    public void InputAfterACommandThatEndsAPipeliningGroupIs554AndClose(string input)
    {
        SessionDriver d = Greeted();
        string reply = d.Send(input);
        Assert.EndsWith("554 5.5.0 Error: SMTP protocol synchronization\r\n", reply);
        Assert.True(d.Closed);
    }

    [Fact]
    public void DataWithInputPipelinedBeforeThe354Is554AndClose()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        Assert.Equal("354 End data with <CR><LF>.<CR><LF>\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n", d.Send("DATA\r\nSubject: x\r\n"));
        Assert.True(d.Closed);
    }

    [Fact]
    public void MailAndRcptPipelinedTogetherAreAnsweredInOrder()
    {
        SessionDriver d = Greeted();
        Assert.Equal("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 Recipient address rejected: user unknown\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n",
            d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nRCPT TO:<Green@foo.com>\r\nRCPT TO:<Brown@foo.com>\r\nRSET\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
    }

    [Fact]
    public void BytesBeforeTheGreetingWhileTheGreetDelayRunsAre554AndClose()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", GreetDelay = TimeSpan.FromSeconds(3) });
        Assert.Equal("220-foo.com ESMTP ready\r\n", d.Start());
        Assert.Equal("554 5.5.0 Error: SMTP protocol synchronization\r\n", d.Send("EHLO bar.com\r\n"));
        Assert.True(d.Closed);
        Assert.Equal(ScreenedOut.EarlyTalker, d.Session.ScreenedOut);
    }

    [Fact]
    public void TheTeaserLineGoesAtOnceAndTheFinalLineAfterTheDelay()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", GreetDelay = TimeSpan.FromSeconds(3) });
        Assert.Equal("220-foo.com ESMTP ready\r\n", d.Start());
        Assert.Equal("", d.Send(""));
        Assert.Equal("220 foo.com ESMTP ready\r\n", d.GreetDelayElapsed());
        Assert.StartsWith("250-foo.com greets bar.com", d.Send("EHLO bar.com\r\n"), StringComparison.Ordinal);
        Assert.Equal(ScreenedOut.None, d.Session.ScreenedOut);
    }

    [Fact]
    public void WithoutAGreetDelayThereIsNoTeaser()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com" });
        Assert.Equal("220 foo.com ESMTP ready\r\n", d.Start());
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n")]
    [InlineData("CONNECT example.com:25 HTTP/1.1\r\n")]
    [InlineData("Host: example.com\r\n")]
    public void AWebClientIsScreenedOutAsNonSmtp(string line)
    {
        SessionDriver d = Greeted();
        Assert.StartsWith("221 2.7.0", d.Send(line), StringComparison.Ordinal);
        Assert.True(d.Closed);
        Assert.Equal(ScreenedOut.NonSmtp, d.Session.ScreenedOut);
        d.Session.Reset();
        Assert.Equal(ScreenedOut.None, d.Session.ScreenedOut);
    }

    [Fact]
    public void ALineLongerThanTheLimitIs500AndIsSkippedNotExecuted()
    {
        SessionDriver d = Greeted();
        string longLine = "MAIL FROM:<a@b.c> " + new string('x', 600) + "\r\n";
        Assert.Equal("500 5.5.6 Error: line too long\r\n", d.Send(longLine));
        Assert.Equal(SmtpState.Wait, d.Session.State);
        // The same line arriving in pieces: nothing answered until its end, then one 500 5.5.6.
        Assert.Equal("", d.Send(longLine[..300]));
        Assert.Equal("", d.Send(longLine[300..590]));
        Assert.Equal("500 5.5.6 Error: line too long\r\n250 2.0.0 Ok\r\n", d.Send(longLine[590..] + "RSET\r\n"));
    }

    [Fact]
    public void TooManyErrorsIs421AndClose()
    {
        SessionDriver d = Greeted();
        for (int i = 0; i < 19; i++)
        {
            Assert.StartsWith("500", d.Send("FOO\r\n"));
        }
        Assert.Equal("500 5.5.2 Error: command not recognized\r\n421 4.7.0 foo.com Error: too many errors\r\n", d.Send("FOO\r\n"));
        Assert.True(d.Closed);
    }

    [Fact]
    public void IdlePastTheTimeoutIs421AndClose()
    {
        SessionDriver d = Greeted();
        Assert.Equal(TimeSpan.FromSeconds(300), d.Session.CurrentTimeout);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Close, d.Session.OnTimeout(output));
        Assert.Equal("421 4.4.2 foo.com Error: timeout exceeded\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void ShutdownIs421ToAnIdleSession()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Close, d.Session.OnShutdown(output));
        Assert.Equal("421 4.3.2 foo.com Service shutting down\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void RefuseMailModeIs521AtConnectThenClose()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", RefuseMail = true });
        Assert.Equal("521 5.3.2 foo.com does not accept mail\r\n", d.Start());
        Assert.True(d.Closed);
    }

    [Fact]
    public void TheConnectionLimitReplyIs421()
    {
        var o = new SmtpSessionOptions { HostName = "foo.com" };
        Assert.Equal("421 4.7.0 foo.com Error: too many connections\r\n", Encoding.ASCII.GetString(o.Prepared.TooManyConnections));
    }

    [Fact]
    public void RequireTlsWithoutStartTlsIs530ToMail()
    {
        SessionDriver d = Greeted(new SmtpSessionOptions { HostName = "foo.com", TlsAvailable = true, RequireTls = true });
        Assert.Equal("530 5.7.0 Must issue a STARTTLS command first\r\n", d.Send("MAIL FROM:<a@bar.com>\r\n"));
        Assert.Equal("220 2.0.0 Ready to start TLS\r\n", d.Send("STARTTLS\r\n"));
        Assert.True(d.TlsRequested);
        d.Session.OnTlsEstablished();
        Assert.Equal(SmtpState.Connected, d.Session.State);
    }

    [Fact]
    public void StartTlsWithPipelinedPlaintextIs220AndThePlaintextIsDiscarded()
    {
        SessionDriver d = Greeted(new SmtpSessionOptions { HostName = "foo.com", TlsAvailable = true });
        var output = new ArrayBufferWriter<byte>();
        byte[] input = "STARTTLS\r\nMAIL FROM:<evil@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\n"u8.ToArray();
        Assert.Equal(SessionStatus.StartTls, d.Session.Process(input, output, out int consumed));
        Assert.Equal(input.Length, consumed);
        Assert.Equal("220 2.0.0 Ready to start TLS\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
        d.Session.OnTlsEstablished();
        Assert.Equal(0, d.Session.Envelope.RecipientCount);
        Assert.True(d.Session.Envelope.ReversePath.IsEmpty);
        output.Clear();
        d.Session.Process("EHLO bar.com\r\n"u8, output, out _);
        string ehlo = Encoding.ASCII.GetString(output.WrittenSpan);
        Assert.DoesNotContain("STARTTLS", ehlo);
        output.Clear();
        d.Session.Process("STARTTLS\r\n"u8, output, out _);
        Assert.StartsWith("503 5.5.1", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void StartTlsWithoutACertificateIs502()
    {
        Assert.Equal("502 5.5.1 Error: command not implemented\r\n", Greeted().Send("STARTTLS\r\n"));
    }
}
