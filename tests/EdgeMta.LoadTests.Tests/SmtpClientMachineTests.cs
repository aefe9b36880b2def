using System.Text;
using EdgeMta.LoadTests;

namespace EdgeMta.LoadTests.Tests;

/// <summary>The client state machine against canned server replies, one reply at a time.</summary>
public class SmtpClientMachineTests
{
    sealed class Script(bool pipelining = false)
    {
        long _clock = 1000;
        public RunMetrics Metrics { get; } = new(0, TimeSpan.FromSeconds(1));
        public SmtpClientMachine Machine { get; private set; } = null!;
        public Script Init() { Machine = new SmtpClientMachine(Metrics, pipelining); return this; }
        long Tick() => _clock += 10;

        public Decision Start(bool closeAfter = false) => Machine.StartMessage(Tick(), closeAfter);
        public Decision Connected() => Machine.ConnectSucceeded(Tick(), Tick());
        public Decision Reply(string text)
        {
            byte[] bytes = Encoding.ASCII.GetBytes(text.Contains('\n') ? text : text + "\r\n");
            Assert.Equal(ReplyParse.Complete, SmtpReplyReader.TryRead(bytes, out int code, out _));
            return Machine.OnReply(code, bytes, Tick());
        }
        public Decision Lost() => Machine.ConnectionLost(Tick());
        public Decision TimedOut() => Machine.TimedOut(Tick());

        /// <summary>Connect, greeting and EHLO up to the first MAIL.</summary>
        public Decision Open(string ehlo = "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n", bool closeAfter = false)
        {
            Assert.Equal(NextMove.Connect, Start(closeAfter).Next);
            Assert.Equal(new Decision(Commands.None, NextMove.AwaitReply), Connected());
            Assert.Equal(new Decision(Commands.Ehlo, NextMove.AwaitReply), Reply("220 mx ESMTP"));
            return Reply(ehlo);
        }
    }

    static void AssertSends(Commands expected, Decision d, NextMove next = NextMove.AwaitReply)
    {
        Assert.Equal(expected, d.Send);
        Assert.Equal(next, d.Next);
    }

    [Fact]
    public void AMessageIsDeliveredOnlyOn250AfterTheDot()
    {
        var s = new Script().Init();
        AssertSends(Commands.Mail, s.Open());
        AssertSends(Commands.Rcpt, s.Reply("250 2.1.0 Ok"));
        AssertSends(Commands.Data, s.Reply("250 2.1.5 Ok"));
        AssertSends(Commands.Body, s.Reply("354 End data with <CR><LF>.<CR><LF>"));
        Assert.Equal(0, s.Metrics.Delivered);
        Decision d = s.Reply("250 2.0.0 Ok: queued as 1");
        Assert.Equal(new Decision(Commands.None, NextMove.Ready, MessageOutcome.Delivered, SmtpStep.EndOfData, 250), d);
        Assert.Equal(1, s.Metrics.Delivered);
        Assert.Equal(0, s.Metrics.Failed);
        foreach (SmtpStep step in new[] { SmtpStep.Connect, SmtpStep.Greeting, SmtpStep.Ehlo, SmtpStep.Mail, SmtpStep.Rcpt, SmtpStep.Data, SmtpStep.EndOfData, SmtpStep.Message })
            Assert.Equal(1, s.Metrics.Step(step).Count);
    }

    [Fact]
    public void TheNextMessageReusesTheConnection()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250"); s.Reply("250"); s.Reply("354"); s.Reply("250");
        AssertSends(Commands.Mail, s.Start());
        Assert.Equal(1, s.Metrics.Connections);
    }

    [Fact]
    public void RecipientsMayBeAcceptedWith251()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250");
        AssertSends(Commands.Data, s.Reply("251 2.1.5 will forward"));
    }

    [Theory]
    [InlineData(451)]
    [InlineData(550)]
    public void ARefusedRecipientFailsTheMessageByItsCodeAndResetsTheSession(int code)
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250");
        Decision d = s.Reply($"{code} no");
        Assert.Equal(new Decision(Commands.Rset, NextMove.AwaitReply, MessageOutcome.Failed, SmtpStep.Rcpt, code), d);
        AssertSends(Commands.None, s.Reply("250 2.0.0 Ok"), NextMove.Ready);
        Assert.Equal(1, s.Metrics.FailuresAt(SmtpStep.Rcpt, code));
        Assert.Equal(1, s.Metrics.Failed);
        Assert.Equal(0, s.Metrics.Delivered);
    }

    [Fact]
    public void ARefusalAfterTheDotIsAFailureNotADelivery()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250"); s.Reply("250"); s.Reply("354");
        Decision d = s.Reply("554 5.7.1 rejected");
        Assert.Equal(MessageOutcome.Failed, d.Outcome);
        Assert.Equal(NextMove.Ready, d.Next);    // the transaction is over: no RSET needed
        Assert.Equal(1, s.Metrics.FailuresAt(SmtpStep.EndOfData, 554));
        Assert.Equal(0, s.Metrics.Delivered);
    }

    [Fact]
    public void AnotherSuccessCodeAfterTheDotIsNotADelivery()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250"); s.Reply("250"); s.Reply("354");
        Assert.Equal(MessageOutcome.Failed, s.Reply("251 odd").Outcome);
        Assert.Equal(0, s.Metrics.Delivered);
    }

    [Fact]
    public void AServerThatAnswersDataWith250InsteadOf354FailsTheMessage()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250"); s.Reply("250");
        Decision d = s.Reply("250 pretend");
        Assert.Equal(MessageOutcome.Failed, d.Outcome);
        Assert.Equal(1, s.Metrics.FailuresAt(SmtpStep.Data, 250));
    }

    [Fact]
    public void AServerThatClosesBeforeTheFinalReplyFailsTheMessage()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250"); s.Reply("250"); s.Reply("354");
        Decision d = s.Lost();
        Assert.Equal(new Decision(Commands.None, NextMove.Close, MessageOutcome.Failed, SmtpStep.EndOfData, FailureCode.Closed), d);
        Assert.False(s.Machine.Connected);
        Assert.Equal(0, s.Metrics.Delivered);
        Assert.Equal(1, s.Metrics.FailuresAt(SmtpStep.EndOfData, FailureCode.Closed));
        Assert.Equal(NextMove.Connect, s.Start().Next);
    }

    [Fact]
    public void AServerThatClosesInsteadOfGreetingFailsTheMessage()
    {
        var s = new Script().Init();
        s.Start();
        s.Connected();
        Assert.Equal(MessageOutcome.Failed, s.Lost().Outcome);
        Assert.Equal(1, s.Metrics.FailuresAt(SmtpStep.Greeting, FailureCode.Closed));
    }

    [Fact]
    public void ARefusedGreetingFailsTheMessageAndCloses()
    {
        var s = new Script().Init();
        s.Start();
        s.Connected();
        Decision d = s.Reply("554 5.7.1 go away");
        Assert.Equal(new Decision(Commands.Quit, NextMove.Close, MessageOutcome.Failed, SmtpStep.Greeting, 554), d);
    }

    [Fact]
    public void A421ClosesTheConnectionAndFailsTheMessage()
    {
        var s = new Script().Init();
        s.Open();
        Decision d = s.Reply("421 4.3.2 shutting down");
        Assert.Equal(new Decision(Commands.None, NextMove.Close, MessageOutcome.Failed, SmtpStep.Mail, 421), d);
        Assert.False(s.Machine.Connected);
    }

    [Fact]
    public void ATimeoutFailsTheMessageAsATimeout()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250");
        Decision d = s.TimedOut();
        Assert.Equal(new Decision(Commands.None, NextMove.Close, MessageOutcome.Failed, SmtpStep.Rcpt, FailureCode.Timeout), d);
    }

    [Fact]
    public void AFailedConnectIsAFailureAtConnect()
    {
        var s = new Script().Init();
        s.Start();
        Decision d = s.Machine.ConnectFailed(5000);
        Assert.Equal(new Decision(Commands.None, NextMove.Close, MessageOutcome.Failed, SmtpStep.Connect, FailureCode.ConnectError), d);
        Assert.Equal(1, s.Metrics.Failed);
    }

    [Fact]
    public void PipeliningSendsTheEnvelopeAsOneGroupWhenAdvertised()
    {
        var s = new Script(pipelining: true).Init();
        AssertSends(Commands.Mail | Commands.Rcpt | Commands.Data, s.Open());
        Assert.True(s.Machine.Pipelining);
        AssertSends(Commands.None, s.Reply("250 2.1.0"));
        AssertSends(Commands.None, s.Reply("250 2.1.5"));
        AssertSends(Commands.Body, s.Reply("354 go"));
        Assert.Equal(MessageOutcome.Delivered, s.Reply("250 2.0.0 queued").Outcome);
        AssertSends(Commands.Mail | Commands.Rcpt | Commands.Data, s.Start());
    }

    [Fact]
    public void PipeliningIsNotUsedWhenTheServerDoesNotAdvertiseIt()
    {
        var s = new Script(pipelining: true).Init();
        AssertSends(Commands.Mail, s.Open("250-mx\r\n250 8BITMIME\r\n"));
        Assert.False(s.Machine.Pipelining);
    }

    [Fact]
    public void APipelinedGroupWithARefusedRecipientFailsTheMessageOnce()
    {
        var s = new Script(pipelining: true).Init();
        s.Open();
        s.Reply("250 2.1.0");
        Decision d = s.Reply("550 5.1.1 unknown");
        Assert.Equal(new Decision(Commands.None, NextMove.AwaitReply, MessageOutcome.Failed, SmtpStep.Rcpt, 550), d);
        d = s.Reply("554 5.5.1 no valid recipients");
        Assert.Equal(MessageOutcome.None, d.Outcome);
        AssertSends(Commands.Rset, d);
        AssertSends(Commands.None, s.Reply("250 ok"), NextMove.Ready);
        Assert.Equal(1, s.Metrics.Failed);
        Assert.Equal(0, s.Metrics.FailuresAt(SmtpStep.Data, 554));
    }

    [Fact]
    public void DataAcceptedAfterTheOnlyRecipientWasRefusedGetsALoneDotAndNoDelivery()
    {
        var s = new Script(pipelining: true).Init();
        s.Open();
        s.Reply("250");
        s.Reply("550 no");
        AssertSends(Commands.LoneDot, s.Reply("354 go"));
        Decision d = s.Reply("250 queued an empty message");
        Assert.Equal(MessageOutcome.None, d.Outcome);
        Assert.Equal(NextMove.Ready, d.Next);
        Assert.Equal(0, s.Metrics.Delivered);
        Assert.Equal(1, s.Metrics.Failed);
    }

    [Fact]
    public void OneConnectionPerMessageQuitsAfterTheMessage()
    {
        var s = new Script().Init();
        s.Open(closeAfter: true); s.Reply("250"); s.Reply("250"); s.Reply("354");
        Decision d = s.Reply("250 queued");
        Assert.Equal(new Decision(Commands.Quit, NextMove.AwaitReply, MessageOutcome.Delivered, SmtpStep.EndOfData, 250), d);
        AssertSends(Commands.None, s.Reply("221 bye"), NextMove.Close);
        Assert.False(s.Machine.Connected);
        Assert.Equal(1, s.Metrics.Step(SmtpStep.Quit).Count);
    }

    [Fact]
    public void PipelinedOneConnectionPerMessageSendsQuitWithTheBody()
    {
        var s = new Script(pipelining: true).Init();
        s.Open(closeAfter: true); s.Reply("250"); s.Reply("250");
        AssertSends(Commands.Body | Commands.Quit, s.Reply("354"));
        Decision d = s.Reply("250 queued");
        Assert.Equal(MessageOutcome.Delivered, d.Outcome);
        Assert.Equal(NextMove.AwaitReply, d.Next);
        AssertSends(Commands.None, s.Reply("221 bye"), NextMove.Close);
    }

    [Fact]
    public void AConnectionLostWhileOnlyQuitIsDueFailsNothing()
    {
        var s = new Script().Init();
        s.Open(closeAfter: true); s.Reply("250"); s.Reply("250"); s.Reply("354"); s.Reply("250");
        Decision d = s.Lost();
        Assert.Equal(new Decision(Commands.None, NextMove.Close), d);
        Assert.Equal(0, s.Metrics.Failed);
        Assert.Equal(1, s.Metrics.Delivered);
    }

    [Fact]
    public void AReplyNobodyAskedForIsMalformedAndCloses()
    {
        var s = new Script().Init();
        s.Open(); s.Reply("250"); s.Reply("250"); s.Reply("354"); s.Reply("250");
        Decision d = s.Reply("250 extra");
        Assert.Equal(NextMove.Close, d.Next);
    }
}
