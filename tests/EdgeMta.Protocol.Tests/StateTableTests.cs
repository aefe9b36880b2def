// Every cell of PROTOCOL.md's table (states 2-7, deviations D1-D6 included), driven through a real session.
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class StateTableTests
{
    public static SmtpSessionOptions Options => new() { HostName = "foo.com", RefusedSenderDomains = ["refused.example"] };

    /// <summary>Drives a fresh session into <paramref name="state"/> the way a client would.</summary>
    internal static SessionDriver InState(SmtpState state, SmtpSessionOptions? options = null)
    {
        var d = new SessionDriver(options ?? Options);
        Assert.StartsWith("220 ", d.Start());
        if (state == SmtpState.Connected)
        {
            return d;
        }
        Assert.StartsWith("250", d.Send("EHLO bar.com\r\n"));
        if (state == SmtpState.Wait)
        {
            return d;
        }
        Assert.StartsWith("250", d.Send("MAIL FROM:<Smith@bar.com>\r\n"));
        if (state == SmtpState.SenderApproved)
        {
            return d;
        }
        Assert.StartsWith("250", d.Send("RCPT TO:<Jones@foo.com>\r\n"));
        if (state == SmtpState.RecipientApproved)
        {
            return d;
        }
        Assert.StartsWith("354", d.Send("DATA\r\n"));
        if (state == SmtpState.WritingMail)
        {
            return d;
        }
        Assert.StartsWith("250 2.0.0 OK queued as ", d.Send("Subject: hi\r\n\r\nbody\r\n.\r\n"));
        Assert.Equal(SmtpState.ReadyToDeliver, d.Session.State);
        return d;
    }

    private static readonly Dictionary<string, string> Events = new()
    {
        ["EHLO"] = "EHLO bar.com\r\n",
        ["HELO"] = "HELO bar.com\r\n",
        ["MAIL FROM valid"] = "MAIL FROM:<Smith@bar.com>\r\n",
        ["MAIL FROM refused by policy"] = "MAIL FROM:<spammer@refused.example>\r\n",
        ["RCPT TO valid"] = "RCPT TO:<Jones@foo.com>\r\n",
        ["RCPT TO unknown user"] = "RCPT TO:<Green@foo.com>\r\n",
        ["DATA"] = "DATA\r\n",
        ["a line holding only ."] = ".\r\n",
        ["RSET"] = "RSET\r\n",
        ["NOOP"] = "NOOP\r\n",
        ["QUIT"] = "QUIT\r\n",
    };

    // event, state, expected reply code, next state: PROTOCOL.md "The table (default behaviour)".
    public static TheoryData<string, int, string, int> Cells => new()
    {
        { "EHLO", 2, "250", 3 }, { "EHLO", 3, "250", 3 }, { "EHLO", 4, "250", 3 }, { "EHLO", 5, "250", 3 }, { "EHLO", 7, "250", 3 },
        { "HELO", 2, "250", 3 }, { "HELO", 3, "250", 3 }, { "HELO", 4, "250", 3 }, { "HELO", 5, "250", 3 }, { "HELO", 7, "250", 3 },
        { "MAIL FROM valid", 2, "503", 2 }, { "MAIL FROM valid", 3, "250", 4 }, { "MAIL FROM valid", 4, "503", 4 }, { "MAIL FROM valid", 5, "503", 5 }, { "MAIL FROM valid", 7, "250", 4 },
        { "MAIL FROM refused by policy", 2, "503", 2 }, { "MAIL FROM refused by policy", 3, "550", 3 }, { "MAIL FROM refused by policy", 4, "503", 4 }, { "MAIL FROM refused by policy", 5, "503", 5 }, { "MAIL FROM refused by policy", 7, "550", 7 },
        { "RCPT TO valid", 2, "503", 2 }, { "RCPT TO valid", 3, "503", 3 }, { "RCPT TO valid", 4, "250", 5 }, { "RCPT TO valid", 5, "250", 5 }, { "RCPT TO valid", 7, "503", 7 },
        { "RCPT TO unknown user", 2, "503", 2 }, { "RCPT TO unknown user", 3, "503", 3 }, { "RCPT TO unknown user", 4, "550", 4 }, { "RCPT TO unknown user", 5, "550", 5 }, { "RCPT TO unknown user", 7, "503", 7 },
        { "DATA", 2, "503", 2 }, { "DATA", 3, "503", 3 }, { "DATA", 4, "503", 4 }, { "DATA", 5, "354", 6 }, { "DATA", 7, "503", 7 },
        { "a line holding only .", 2, "503", 2 }, { "a line holding only .", 3, "503", 3 }, { "a line holding only .", 4, "503", 4 }, { "a line holding only .", 5, "503", 5 }, { "a line holding only .", 7, "503", 7 },
        { "RSET", 2, "250", 2 }, { "RSET", 3, "250", 3 }, { "RSET", 4, "250", 3 }, { "RSET", 5, "250", 3 }, { "RSET", 7, "250", 3 },
        { "NOOP", 2, "250", 2 }, { "NOOP", 3, "250", 3 }, { "NOOP", 4, "250", 4 }, { "NOOP", 5, "250", 5 }, { "NOOP", 7, "250", 7 },
        { "QUIT", 2, "221", 1 }, { "QUIT", 3, "221", 1 }, { "QUIT", 4, "221", 1 }, { "QUIT", 5, "221", 1 }, { "QUIT", 7, "221", 1 },
    };

    [Theory]
    [MemberData(nameof(Cells))]
    public void EachCellOfTheTableAnswersItsCodeAndMovesToItsState(string @event, int state, string code, int next)
    {
        SessionDriver d = InState((SmtpState)state);
        string reply = d.Send(Events[@event]);
        Assert.StartsWith(code + (code == "250" && @event.StartsWith("EHLO") ? "-" : " "), reply);
        Assert.Equal((SmtpState)next, d.Session.State);
        Assert.Equal(next == 1, d.Closed);
    }

    [Fact]
    public void TheEndOfDataDotInState6Answers250QueuedAndMovesTo7()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        string reply = d.Send("Subject: x\r\n\r\nhello\r\n.\r\n");
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n", reply);
        Assert.Equal(SmtpState.ReadyToDeliver, d.Session.State);
    }

    [Theory]
    [InlineData("EHLO bar.com")]
    [InlineData("MAIL FROM:<a@b.c>")]
    [InlineData("RCPT TO:<Jones@foo.com>")]
    [InlineData("RSET")]
    [InlineData("QUIT")]
    [InlineData("DATA")]
    public void CommandsInState6AreMessageTextAndGetNoReplyD6(string line)
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        Assert.Equal("", d.Send(line + "\r\n"));
        Assert.Equal(SmtpState.WritingMail, d.Session.State);
        d.Send(".\r\n");
        Assert.Contains(line + "\r\n", System.Text.Encoding.Latin1.GetString(d.Store.Messages[0].Data));
    }

    [Fact]
    public void DataInState4AfterEveryRecipientWasRefusedAnswers554NoValidRecipients()
    {
        SessionDriver d = InState(SmtpState.SenderApproved);
        Assert.StartsWith("550 5.1.1", d.Send("RCPT TO:<Green@foo.com>\r\n"));
        Assert.Equal("554 5.5.1 Error: no valid recipients\r\n", d.Send("DATA\r\n"));
        Assert.Equal(SmtpState.SenderApproved, d.Session.State);
    }

    [Fact]
    public void ADelayedGreetingIsAnsweredOnlyWhenTheHostSaysTheDelayRanOut()
    {
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", GreetDelay = TimeSpan.FromSeconds(5) });
        Assert.Equal("220-foo.com ESMTP ready\r\n", d.Start()); // the teaser only
        Assert.True(d.Session.AwaitingGreeting);
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Continue, d.Session.OnGreetDelayElapsed(output));
        Assert.Equal("220 foo.com ESMTP ready\r\n", System.Text.Encoding.ASCII.GetString(output.WrittenSpan));
        Assert.Equal(SmtpState.Connected, d.Session.State);
    }

    [Fact]
    public void TheStateMasksAllowExactlyTheDeclaredVerbs()
    {
        Assert.True(StateTable.Allows(SmtpState.Wait, SmtpVerb.Mail));
        Assert.False(StateTable.Allows(SmtpState.Connected, SmtpVerb.Mail));
        Assert.False(StateTable.Allows(SmtpState.SenderApproved, SmtpVerb.Mail));
        Assert.True(StateTable.Allows(SmtpState.ReadyToDeliver, SmtpVerb.Mail));
        Assert.False(StateTable.Allows(SmtpState.ReadyToDeliver, SmtpVerb.Rcpt));
        Assert.True(StateTable.Allows(SmtpState.RecipientApproved, SmtpVerb.Bdat));
        foreach (SmtpState s in new[] { SmtpState.Connected, SmtpState.Wait, SmtpState.SenderApproved, SmtpState.RecipientApproved, SmtpState.ReadyToDeliver })
        {
            Assert.False(StateTable.Allows(s, SmtpVerb.Dot));
            Assert.True(StateTable.Allows(s, SmtpVerb.Rset));
            Assert.True(StateTable.Allows(s, SmtpVerb.Noop));
            Assert.True(StateTable.Allows(s, SmtpVerb.Quit));
            Assert.True(StateTable.Allows(s, SmtpVerb.Ehlo));
        }
        Assert.False(StateTable.Allows(SmtpState.WritingMail, SmtpVerb.Noop));
        Assert.False(StateTable.Allows(SmtpState.Closed, SmtpVerb.Quit));
    }
}
