// Every row of PROTOCOL.md "Other commands and replies" that needs no message data (the message rows are in MessageTests, the gates in SessionPolicyTests).
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;
using static EdgeMta.Protocol.Tests.StateTableTests;

namespace EdgeMta.Protocol.Tests;

public class OtherCommandsTests
{
    private static SessionDriver Greeted(SmtpSessionOptions? o = null) => InState(SmtpState.Wait, o);

    [Fact]
    public void OneProcessCallAnswersAtMost64PipelinedCommandsAndLeavesTheRestForTheNext()
    {
        SessionDriver d = Greeted();
        byte[] input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("HELP\r\n", 200)));
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Continue, d.Session.Process(input, output, out int consumed));
        Assert.Equal(SmtpSession.MaxCommandsPerPass * 6, consumed);
        string replies = Encoding.ASCII.GetString(output.WrittenSpan);
        Assert.Equal(SmtpSession.MaxCommandsPerPass, replies.Split("\r\n214 ").Length - 1); // each HELP reply's last line
        Assert.Equal(SessionStatus.Continue, d.Session.Process(input.AsSpan(consumed), output, out int more));
        Assert.Equal(SmtpSession.MaxCommandsPerPass * 6, more);
    }

    [Fact]
    public void APooledSessionGivesBackWhatABigEnvelopeGrewButKeepsATypicalOnesStorage()
    {
        // Audit finding: 1,000 long RCPTs grew a session's envelope to about 0.5 MB, kept by the handler pool for good.
        SessionDriver d = InState(SmtpState.RecipientApproved);
        int typical = d.Session.Envelope.StorageBytes;
        d.Session.Reset();
        Assert.Equal(typical, d.Session.Envelope.StorageBytes);

        d = InState(SmtpState.RecipientApproved);
        string rcpt = "RCPT TO:<Jones@foo.com> ORCPT=rfc822;" + new string('x', 400) + "\r\n";
        for (int i = 0; i < 999; i++)
        {
            Assert.StartsWith("250", d.Send(rcpt));
        }
        Assert.True(d.Session.Envelope.StorageBytes > 400_000, $"{d.Session.Envelope.StorageBytes}");
        d.Session.Reset();
        Assert.True(d.Session.Envelope.StorageBytes <= Envelope.KeptTransactionBytes + Envelope.KeptSessionBytes, $"{d.Session.Envelope.StorageBytes}");
    }

    [Fact]
    public void HelpNamesStartTlsOnlyWhereItIsOffered()
    {
        Assert.DoesNotContain("STARTTLS", Greeted().Send("HELP\r\n"));
        var tls = new SmtpSessionOptions { HostName = "foo.com", TlsAvailable = true };
        Assert.Contains("HELP STARTTLS\r\n", Greeted(tls).Send("HELP\r\n"));
    }

    [Fact]
    public void EhloAnswersAMultiLine250WithEveryExtensionAndTheLastLineWithASpace()
    {
        var d = new SessionDriver();
        d.Start();
        Assert.Equal(
            "250-foo.com greets bar.com\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
            + "250-CHUNKING\r\n250-BINARYMIME\r\n250-DSN\r\n250 HELP\r\n", d.Send("EHLO bar.com\r\n"));
    }

    [Fact]
    public void EhloAdvertisesStartTlsOnlyWithACertificateAndVrfyOnlyWhenEnabled()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", TlsAvailable = true, Vrfy = VrfyMode.Enabled });
        d.Start();
        string ehlo = d.Send("EHLO bar.com\r\n");
        Assert.Contains("250-STARTTLS\r\n", ehlo);
        Assert.Contains("250-VRFY\r\n", ehlo);
    }

    [Fact]
    public void HeloAnswersOneLine()
    {
        var d = new SessionDriver();
        d.Start();
        Assert.Equal("250 foo.com greets bar.com\r\n", d.Send("HELO bar.com\r\n"));
    }

    [Theory]
    [InlineData("HELO\r\n", "501 5.5.4 Syntax: HELO")]
    [InlineData("EHLO\r\n", "501 5.5.4 Syntax: EHLO")]
    [InlineData("EHLO   \r\n", "501 5.5.4 Syntax: EHLO")]
    public void HeloOrEhloWithoutAnArgumentIs501(string line, string reply)
    {
        var d = new SessionDriver();
        d.Start();
        Assert.StartsWith(reply, d.Send(line));
        Assert.Equal(SmtpState.Connected, d.Session.State);
    }

    [Theory]
    [InlineData("MAIL FROM:Smith@bar.com", "501 5.1.7")]
    [InlineData("MAIL FROM:<Smith@bar.com", "501 5.1.7")]
    [InlineData("MAIL FROM:<Smith@bar.com>x", "501 5.1.7")]
    [InlineData("MAIL FROM <Smith@bar.com>", "501 5.5.4")]
    [InlineData("MAIL TO:<Smith@bar.com>", "501 5.5.4")]
    [InlineData("MAIL FROM:", "501 5.5.4")]
    public void MailWithBadPathSyntaxIs501(string line, string reply)
    {
        SessionDriver d = Greeted();
        Assert.StartsWith(reply, d.Send(line + "\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
    }

    [Theory]
    [InlineData("RCPT TO:Jones@foo.com", "501 5.1.3")]
    [InlineData("RCPT TO:<Jones@foo..com>", "501 5.1.3")]
    [InlineData("RCPT TO:<>", "501 5.1.3")]
    [InlineData("RCPT FROM:<Jones@foo.com>", "501 5.5.4")]
    public void RcptWithBadPathSyntaxIs501(string line, string reply)
    {
        SessionDriver d = InState(SmtpState.SenderApproved);
        Assert.StartsWith(reply, d.Send(line + "\r\n"));
        Assert.Equal(SmtpState.SenderApproved, d.Session.State);
    }

    [Fact]
    public void AMailboxNameNotAllowedIs553()
    {
        SessionDriver d = Greeted();
        Assert.StartsWith("553 5.1.7", d.Send($"MAIL FROM:<{new string('a', 65)}@bar.com>\r\n"));
        d.Send("MAIL FROM:<a@bar.com>\r\n");
        Assert.StartsWith("553 5.1.3", d.Send($"RCPT TO:<{new string('a', 65)}@foo.com>\r\n"));
    }

    [Theory]
    [InlineData("MAIL FROM:<a@bar.com> XFOO=1")]
    [InlineData("MAIL FROM:<a@bar.com> NOTIFY=NEVER")]
    public void MailWithAnUnknownParameterIs555(string line)
    {
        Assert.StartsWith("555 5.5.4", Greeted().Send(line + "\r\n"));
    }

    [Fact]
    public void RcptWithAnUnknownParameterIs555()
    {
        Assert.StartsWith("555 5.5.4", InState(SmtpState.SenderApproved).Send("RCPT TO:<Jones@foo.com> SIZE=1\r\n"));
    }

    [Theory]
    [InlineData("SIZE=26214401", "552 5.3.4")]
    [InlineData("SIZE=999999999999999999999999999999", "552 5.3.4")]
    [InlineData("SIZE=12abc", "501 5.5.4")]
    [InlineData("SIZE=", "501 5.5.4")]
    public void MailSizeOverTheLimitIs552AndJunkIs501(string parameter, string reply)
    {
        SessionDriver d = Greeted();
        Assert.StartsWith(reply, d.Send($"MAIL FROM:<a@bar.com> {parameter}\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
    }

    [Fact]
    public void RcptBeyondTheRecipientLimitIs452()
    {
        SessionDriver d = InState(SmtpState.SenderApproved, new SmtpSessionOptions { HostName = "foo.com", MaxRecipients = 2 });
        Assert.StartsWith("250", d.Send("RCPT TO:<Jones@foo.com>\r\n"));
        Assert.StartsWith("250", d.Send("RCPT TO:<Brown@foo.com>\r\n"));
        Assert.Equal("452 4.5.3 Error: too many recipients\r\n", d.Send("RCPT TO:<Admin.MRC@foo.com>\r\n"));
        Assert.Equal(2, d.Session.Envelope.RecipientCount);
    }

    [Fact]
    public void MailWhenTheStoreHasNoRoomIs452AndTheSessionStaysInWait()
    {
        SessionDriver d = Greeted();
        d.Store.Readiness = StoreReadiness.Full;
        Assert.Equal("452 4.3.1 Insufficient system storage\r\n", d.Send("MAIL FROM:<a@bar.com>\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
        Assert.Equal(0, d.Session.ErrorCount);
        d.Store.Readiness = StoreReadiness.Ready;
        Assert.StartsWith("250", d.Send("MAIL FROM:<a@bar.com>\r\n"));
    }

    [Fact]
    public void MailWhenTheStoreIsFailingIs451AndNeitherCountsTowardTheErrorLimit()
    {
        SessionDriver d = Greeted(new SmtpSessionOptions { HostName = "foo.com", ErrorLimit = 2 });
        d.Store.Readiness = StoreReadiness.Failing;
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("451 4.3.0 Error: queue file write error\r\n", d.Send("MAIL FROM:<a@bar.com>\r\n"));
        }
        d.Store.Readiness = StoreReadiness.Full;
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("452 4.3.1 Insufficient system storage\r\n", d.Send("MAIL FROM:<a@bar.com>\r\n"));
        }
        Assert.Equal(SmtpState.Wait, d.Session.State);
        Assert.Equal(0, d.Session.ErrorCount);   // six refusals past a limit of 2, and the session is still open
        d.Store.Readiness = StoreReadiness.Ready;
        Assert.StartsWith("250", d.Send("MAIL FROM:<a@bar.com>\r\n"));
    }

    [Fact]
    public void RcptPastTheOvershootAllowanceCountsTowardTheErrorLimitAndCloses()
    {
        var options = new SmtpSessionOptions { HostName = "foo.com", MaxRecipients = 1, RecipientOvershootLimit = 2, ErrorLimit = 2 };
        SessionDriver d = InState(SmtpState.SenderApproved, options);
        Assert.StartsWith("250", d.Send("RCPT TO:<Jones@foo.com>\r\n"));
        Assert.StartsWith("452 4.5.3", d.Send("RCPT TO:<Brown@foo.com>\r\n"));
        Assert.StartsWith("452 4.5.3", d.Send("RCPT TO:<Brown@foo.com>\r\n"));
        Assert.Equal(0, d.Session.ErrorCount);
        Assert.StartsWith("452 4.5.3", d.Send("RCPT TO:<Brown@foo.com>\r\n"));
        Assert.Equal(1, d.Session.ErrorCount);
        string last = d.Send("RCPT TO:<Brown@foo.com>\r\n");
        Assert.StartsWith("452 4.5.3", last);
        Assert.Contains("421 4.7.0", last);
        Assert.Equal(SmtpState.Closed, d.Session.State);
    }

    [Theory]
    [InlineData("RCPT TO:<Jones@elsewhere.org>")]
    [InlineData("RCPT TO:<Jones@[192.0.2.9]>")]
    public void RcptToADomainThatIsNotOursIs550RelayDenied(string line)
    {
        Assert.Equal("550 5.7.1 Relay access denied\r\n", InState(SmtpState.SenderApproved).Send(line + "\r\n"));
    }

    [Fact]
    public void RcptToAForwardingEntryIs251AndAccepted()
    {
        SessionDriver d = InState(SmtpState.SenderApproved);
        Assert.Equal("251 2.1.5 User not local; will forward to <x@elsewhere.org>\r\n", d.Send("RCPT TO:<fwd@foo.com>\r\n"));
        Assert.Equal(SmtpState.RecipientApproved, d.Session.State);
    }

    [Fact]
    public void RcptToAMovedEntryIs551AndRefused()
    {
        SessionDriver d = InState(SmtpState.SenderApproved);
        Assert.Equal("551 5.1.6 User not local; please try <new@elsewhere.org>\r\n", d.Send("RCPT TO:<OLD@foo.com>\r\n"));
        Assert.Equal(SmtpState.SenderApproved, d.Session.State);
        Assert.Equal(1, d.Session.ErrorCount);
    }

    [Fact]
    public void ASourceRouteIsAcceptedAndIgnored()
    {
        SessionDriver d = Greeted();
        Assert.StartsWith("250 2.1.0", d.Send("MAIL FROM:<@foo.com:JQP@bar.com>\r\n"));
        Assert.StartsWith("250 2.1.5", d.Send("RCPT TO:<@foo.com,@relay.net:Jones@XYZ.COM>\r\n"));
        Assert.Equal("JQP@bar.com", Encoding.ASCII.GetString(d.Session.Envelope.ReversePath));
        Assert.Equal("Jones@XYZ.COM", Encoding.ASCII.GetString(d.Session.Envelope.GetForwardPath(0)));
    }

    [Fact]
    public void TheEnvelopeKeepsTheParametersAsSent()
    {
        SessionDriver d = Greeted();
        d.Send("MAIL FROM:<a@bar.com> SIZE=100 RET=HDRS ENVID=x+2By\r\n");
        d.Send("RCPT TO:<Jones@foo.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Jones@foo.com\r\n");
        Envelope e = d.Session.Envelope;
        Assert.Equal("SIZE=100 RET=HDRS ENVID=x+2By", Encoding.ASCII.GetString(e.MailParameters));
        Assert.Equal(100, e.DeclaredSize);
        Assert.Equal("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Jones@foo.com", Encoding.ASCII.GetString(e.GetRecipientParameters(0)));
        Assert.Equal("192.0.2.1", Encoding.ASCII.GetString(e.ClientAddress));
        Assert.Equal("bar.com", Encoding.ASCII.GetString(e.HeloName));
    }

    [Theory]
    [InlineData(VrfyMode.Ambiguous, "VRFY Crispin", "252 2.5.2")]
    [InlineData(VrfyMode.Disabled, "VRFY Crispin", "502 5.5.1")]
    [InlineData(VrfyMode.Enabled, "VRFY Crispin", "250 2.1.5 Mark Crispin <Admin.MRC@foo.com>\r\n")]
    [InlineData(VrfyMode.Enabled, "VRFY Admin.MRC", "250 2.1.5 Mark Crispin <Admin.MRC@foo.com>\r\n")]
    [InlineData(VrfyMode.Enabled, "VRFY <jones@FOO.com>", "250 2.1.5 <Jones@foo.com>\r\n")]
    [InlineData(VrfyMode.Enabled, "VRFY Green", "550 5.1.1")]
    [InlineData(VrfyMode.Enabled, "VRFY", "501 5.5.4")]
    [InlineData(VrfyMode.Ambiguous, "VRFY", "501 5.5.4")]
    public void VrfyAnswersByItsMode(VrfyMode mode, string line, string reply)
    {
        SessionDriver d = Greeted(new SmtpSessionOptions { HostName = "foo.com", Vrfy = mode });
        Assert.StartsWith(reply, d.Send(line + "\r\n"));
    }

    [Fact]
    public void VrfyMatchingSeveralEntriesIs553Ambiguous()
    {
        var dir = RecipientDirectory.Parse("a@foo.com Mark Crispin\nb@foo.com Martin Crispin\n");
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", Vrfy = VrfyMode.Enabled }, dir);
        d.Start();
        Assert.Equal("553 5.1.4 User ambiguous\r\n", d.Send("VRFY Crispin\r\n"));
        Assert.StartsWith("250 2.1.5 Martin Crispin <b@foo.com>", d.Send("VRFY Martin\r\n"));
    }

    [Theory]
    [InlineData(false, "EXPN staff", "502 5.5.1")]
    [InlineData(true, "EXPN staff", "250-2.1.5 <Jones@foo.com>\r\n250 2.1.5 Mark Crispin <Admin.MRC@foo.com>\r\n")]
    [InlineData(true, "EXPN Jones@foo.com", "550 5.1.1 Not a mailing list")]
    [InlineData(true, "EXPN nobody", "550 5.1.1")]
    [InlineData(true, "EXPN", "501 5.5.4")]
    public void ExpnIs502ByDefaultAndListsMembersWhenEnabled(bool enabled, string line, string reply)
    {
        SessionDriver d = Greeted(new SmtpSessionOptions { HostName = "foo.com", ExpnEnabled = enabled });
        Assert.StartsWith(reply, d.Send(line + "\r\n"));
    }

    [Theory]
    [InlineData("HELP", "214-2.0.0 Commands:")]
    [InlineData("HELP MAIL", "214 2.0.0 MAIL FROM:<address>")]
    [InlineData("help starttls", "214 2.0.0 STARTTLS")]
    [InlineData("HELP FOO", "504 5.5.4")]
    [InlineData("HELP MAIL FROM", "504 5.5.4")]
    public void HelpIs214MultiLineAndAnUnknownTopicIs504(string line, string reply)
    {
        string answer = Greeted().Send(line + "\r\n");
        Assert.StartsWith(reply, answer);
        if (line == "HELP")
        {
            Assert.EndsWith("214 2.0.0 End of HELP info\r\n", answer);
        }
    }

    [Fact]
    public void TurnIs502()
    {
        Assert.Equal("502 5.5.1 Error: command not implemented\r\n", Greeted().Send("TURN\r\n"));
    }

    [Theory]
    [InlineData("SEND FROM:<EAK@bar.com>")]
    [InlineData("SOML FROM:<EAK@bar.com>")]
    [InlineData("SAML FROM:<EAK@bar.com>")]
    public void SendSomlAndSamlAre502UnlessLegacySendMakesThemMail(string line)
    {
        Assert.StartsWith("502 5.5.1", Greeted().Send(line + "\r\n"));
        SessionDriver legacy = Greeted(new SmtpSessionOptions { HostName = "foo.com", LegacySend = true });
        Assert.Equal("250 2.1.0 Ok\r\n", legacy.Send(line + "\r\n"));
        Assert.Equal(SmtpState.SenderApproved, legacy.Session.State);
    }

    [Theory]
    [InlineData("FOO")]
    [InlineData("MAILFROM:<a@b.c>")]
    [InlineData("   ")]
    public void AnUnknownCommandIs500(string line)
    {
        Assert.Equal("500 5.5.2 Error: command not recognized\r\n", Greeted().Send(line + "\r\n"));
    }

    [Fact]
    public void AnEmptyLineIs500()
    {
        Assert.Equal("500 5.5.2 Error: bad syntax, empty line\r\n", Greeted().Send("\r\n"));
    }

    [Fact]
    public void ACommandWithANulByteIs500AndNothingIsActedOn()
    {
        SessionDriver d = Greeted();
        Assert.StartsWith("500 5.5.2", d.Send("QUIT\0\r\n"));
        Assert.False(d.Closed);
        Assert.StartsWith("500 5.5.2", d.Send("MAIL FROM:<a@b.c>\0\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
    }

    [Fact]
    public void ACommandEndingInABareLineFeedIs500AndNothingIsActedOn()
    {
        SessionDriver d = Greeted();
        Assert.StartsWith("500 5.5.2", d.Send("QUIT\n"));
        Assert.False(d.Closed);
        Assert.StartsWith("500 5.5.2", d.Send("MAIL FROM:<a@b.c>\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
    }

    [Fact]
    public void RcptWithANullPathIs501()
    {
        Assert.Equal("501 5.1.3 Bad recipient address syntax: null path\r\n", InState(SmtpState.SenderApproved).Send("RCPT TO:<>\r\n"));
    }

    [Fact]
    public void AUtf8AddressWithoutSmtpUtf8Is553AndWithItIsAccepted()
    {
        var d = new SessionDriver(directory: RecipientDirectory.Sink);
        d.Start();
        d.Send("EHLO bar.com\r\n");
        Assert.Equal("553 5.6.7 UTF-8 address requires SMTPUTF8\r\n", d.Send(Encoding.UTF8.GetBytes("MAIL FROM:<josé@bar.com>\r\n")));
        Assert.Equal("250 2.1.0 Ok\r\n", d.Send("MAIL FROM:<a@bar.com>\r\n"));
        Assert.Equal("553 5.6.7 UTF-8 address requires SMTPUTF8\r\n", d.Send(Encoding.UTF8.GetBytes("RCPT TO:<用户@例子.广告>\r\n")));
        d.Send("RSET\r\n");
        Assert.Equal("250 2.1.0 Ok\r\n", d.Send(Encoding.UTF8.GetBytes("MAIL FROM:<josé@bar.com> SMTPUTF8\r\n")));
        Assert.Equal("250 2.1.5 Ok\r\n", d.Send(Encoding.UTF8.GetBytes("RCPT TO:<用户@例子.广告>\r\n")));
    }

    [Theory]
    [InlineData("DATA x")]
    [InlineData("RSET x")]
    [InlineData("QUIT x")]
    [InlineData("NOOP x")]
    public void StrayArgumentsWhereNoneAreAllowedAre501(string line)
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        Assert.Equal("501 5.5.4 Syntax error: no arguments allowed\r\n", d.Send(line + "\r\n"));
        Assert.Equal(SmtpState.RecipientApproved, d.Session.State);
        Assert.False(d.Closed);
    }

    [Fact]
    public void PostmasterIsAlwaysAccepted()
    {
        SessionDriver d = InState(SmtpState.SenderApproved);
        Assert.StartsWith("250", d.Send("RCPT TO:<Postmaster>\r\n"));
        Assert.StartsWith("250", d.Send("RCPT TO:<postmaster@foo.com>\r\n"));
    }
}
