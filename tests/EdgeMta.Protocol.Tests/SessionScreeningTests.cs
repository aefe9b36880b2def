// The session's side of the screening seam (SessionScreening.cs, SmtpSession.Screening.cs): each answer at each
// of the four points, the line kept and offered again after Pending (pipelined commands behind it wait too),
// nothing counted or reported twice, and the greeting held by a pending OnConnect with and without a greet delay.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;
using static EdgeMta.Protocol.Tests.SessionObserverTests;

namespace EdgeMta.Protocol.Tests;

public class SessionScreeningTests
{
    public enum Point { Connect, Hello, Mail, Recipient }

    /// <summary>Answers from a script per point (Accept when the script is empty), writing "REFUSED point" for refusals.</summary>
    internal sealed class ScriptedScreening : ISessionScreening
    {
        public Dictionary<Point, Queue<ScreeningAnswer>> Script { get; } = [];
        public List<string> Asked { get; } = [];

        public ScriptedScreening Then(Point point, params ScreeningAnswer[] answers)
        {
            if (!Script.TryGetValue(point, out Queue<ScreeningAnswer>? queue))
            {
                Script[point] = queue = new Queue<ScreeningAnswer>();
            }
            foreach (ScreeningAnswer a in answers) queue.Enqueue(a);
            return this;
        }

        public ScreeningAnswer OnConnect(IBufferWriter<byte> output) => Answer(Point.Connect, output);
        public ScreeningAnswer OnHello(IBufferWriter<byte> output) => Answer(Point.Hello, output);
        public ScreeningAnswer OnMail(IBufferWriter<byte> output) => Answer(Point.Mail, output);
        public ScreeningAnswer OnRecipient(IBufferWriter<byte> output) => Answer(Point.Recipient, output);

        private ScreeningAnswer Answer(Point point, IBufferWriter<byte> output)
        {
            Asked.Add(point.ToString());
            ScreeningAnswer answer = Script.TryGetValue(point, out Queue<ScreeningAnswer>? q) && q.Count > 0 ? q.Dequeue() : ScreeningAnswer.Accept;
            if (answer is ScreeningAnswer.Refuse or ScreeningAnswer.RefuseAndClose)
            {
                output.Write(Encoding.ASCII.GetBytes($"450 4.7.1 REFUSED {point}\r\n"));
            }
            return answer;
        }
    }

    private static (SessionDriver, ScriptedScreening) Open(ScriptedScreening screening, SmtpSessionOptions? options = null,
        ISessionObserver? observer = null)
    {
        var d = new SessionDriver(options ?? new SmtpSessionOptions { HostName = "foo.com" }, observer: observer);
        Assert.StartsWith("220 ", d.Start(screening));
        return (d, screening);
    }

    // The command that reaches each point, from a session past EHLO (for Hello: a second EHLO).
    private static string CommandAt(Point point) => point switch
    {
        Point.Hello => "EHLO again.example\r\n",
        Point.Mail => "MAIL FROM:<Smith@bar.com>\r\n",
        _ => "RCPT TO:<Jones@foo.com>\r\n",
    };

    private static SessionDriver UpTo(Point point, ScriptedScreening screening)
    {
        if (point == Point.Hello && screening.Script.TryGetValue(Point.Hello, out Queue<ScreeningAnswer>? script))
        {
            screening.Script[Point.Hello] = new Queue<ScreeningAnswer>([ScreeningAnswer.Accept, .. script]); // the first EHLO passes
        }
        (SessionDriver d, _) = Open(screening);
        Assert.StartsWith("250-", d.Send("EHLO bar.com\r\n"));
        if (point == Point.Recipient)
        {
            Assert.Equal("250 2.1.0 Ok\r\n", d.Send("MAIL FROM:<Smith@bar.com>\r\n"));
        }
        return d;
    }

    [Theory]
    [InlineData(Point.Hello)]
    [InlineData(Point.Mail)]
    [InlineData(Point.Recipient)]
    public void AcceptGoesOnAsWithoutScreening(Point point)
    {
        var s = new ScriptedScreening();
        SessionDriver d = UpTo(point, s);
        string reply = d.Send(CommandAt(point));
        Assert.StartsWith("250", reply);
        Assert.DoesNotContain("REFUSED", reply);
        Assert.Equal(SessionStatus.Continue, d.LastStatus);
    }

    [Theory]
    [InlineData(Point.Hello, SmtpState.RecipientApproved)]
    [InlineData(Point.Mail, SmtpState.Wait)]
    [InlineData(Point.Recipient, SmtpState.SenderApproved)]
    public void RefuseWritesOnlyTheScreeningsReplyAndLeavesTheStateAsItWas(Point point, SmtpState stateBefore)
    {
        var s = new ScriptedScreening().Then(point, ScreeningAnswer.Refuse);
        SessionDriver d = UpTo(point, s);
        if (point == Point.Hello)
        {
            // A refused EHLO must not reset a transaction in progress, as a refused one never does.
            d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\n");
        }
        Assert.Equal(stateBefore, d.Session.State);
        int recipients = d.Session.Envelope.RecipientCount;
        Assert.Equal($"450 4.7.1 REFUSED {point}\r\n", d.Send(CommandAt(point)));
        Assert.Equal(stateBefore, d.Session.State);
        Assert.Equal(recipients, d.Session.Envelope.RecipientCount);
        Assert.Equal(1, d.Session.ErrorCount);
        Assert.Equal("250 2.0.0 Ok\r\n", d.Send("NOOP\r\n")); // the session goes on
    }

    [Theory]
    [InlineData(Point.Hello)]
    [InlineData(Point.Mail)]
    [InlineData(Point.Recipient)]
    public void RefuseAndCloseWritesTheReplyThenCloses(Point point)
    {
        var s = new ScriptedScreening().Then(point, ScreeningAnswer.RefuseAndClose);
        SessionDriver d = UpTo(point, s);
        Assert.Equal($"450 4.7.1 REFUSED {point}\r\n", d.Send(CommandAt(point) + "NOOP\r\n"));
        Assert.True(d.Closed);
    }

    [Fact]
    public void RefusalsCountTowardTheErrorLimitAsPostfixCountsRefusedCommands()
    {
        var s = new ScriptedScreening().Then(Point.Mail, ScreeningAnswer.Refuse, ScreeningAnswer.Refuse);
        (SessionDriver d, _) = Open(s, new SmtpSessionOptions { HostName = "foo.com", ErrorLimit = 2 });
        d.Send("EHLO bar.com\r\n");
        d.Send("MAIL FROM:<a@bar.com>\r\n");
        string second = d.Send("MAIL FROM:<a@bar.com>\r\n");
        Assert.StartsWith("450 4.7.1 REFUSED Mail\r\n421 4.7.0", second);
        Assert.True(d.Closed);
    }

    [Fact]
    public void TheProtocolsOwnRefusalComesFirstAndTheScreeningIsNotAsked()
    {
        var s = new ScriptedScreening().Then(Point.Mail, ScreeningAnswer.RefuseAndClose);
        (SessionDriver d, _) = Open(s);
        d.Send("EHLO bar.com\r\n");
        Assert.StartsWith("501 ", d.Send("MAIL FROM:<no-brackets\r\n"));
        Assert.StartsWith("503 ", d.Send("RCPT TO:<Jones@foo.com>\r\n"));
        Assert.Equal(["Connect", "Hello"], s.Asked);
    }

    [Theory]
    [InlineData(Point.Hello)]
    [InlineData(Point.Mail)]
    [InlineData(Point.Recipient)]
    public void PendingWritesNothingKeepsTheLineAndAsksAgainWhenOffered(Point point)
    {
        var s = new ScriptedScreening().Then(point, ScreeningAnswer.Pending, ScreeningAnswer.Pending);
        SessionDriver d = UpTo(point, s);
        string line = CommandAt(point);
        Assert.Equal("", d.Send(line));
        Assert.Equal(SessionStatus.AwaitingVerdict, d.LastStatus);
        Assert.Equal(line.Length, d.Pending);
        Assert.Equal("", d.Reoffer()); // still pending: the same again
        Assert.Equal(line.Length, d.Pending);
        Assert.StartsWith("250", d.Reoffer());
        Assert.Equal(0, d.Pending);
        Assert.Equal(3, s.Asked.Count(a => a == point.ToString()) - (point == Point.Hello ? 1 : 0));
    }

    [Fact]
    public void PipelinedCommandsAfterAPendingRecipientWaitAndAreAnsweredInOrderOnce()
    {
        var counters = new CommandCounters();
        var observer = new RecordingObserver();
        var s = new ScriptedScreening().Then(Point.Recipient, ScreeningAnswer.Pending, ScreeningAnswer.Pending);
        (SessionDriver d, _) = Open(s, new SmtpSessionOptions { HostName = "foo.com", Commands = counters }, observer);
        d.Send("EHLO bar.com\r\n");
        string batch = "MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nRCPT TO:<Brown@foo.com>\r\nDATA\r\n";
        Assert.Equal("250 2.1.0 Ok\r\n", d.Send(batch)); // MAIL answered; the first RCPT waits, with all after it
        Assert.Equal(batch.Length - "MAIL FROM:<Smith@bar.com>\r\n".Length, d.Pending);
        Assert.Equal("", d.Reoffer());
        Assert.Equal("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n", d.Reoffer());
        Assert.Equal(2, d.Session.Envelope.RecipientCount);
        Assert.Equal(2, counters[SmtpVerb.Rcpt]);
        Assert.Equal(1, counters[SmtpVerb.Mail]);
        Assert.Equal(1, counters[SmtpVerb.Data]);
        Assert.Equal(["Ehlo EHLO bar.com", "Mail MAIL FROM:<Smith@bar.com>", "Rcpt RCPT TO:<Jones@foo.com>",
            "Rcpt RCPT TO:<Brown@foo.com>", "Data DATA"], observer.Lines);
        Assert.Equal(0, d.Session.ErrorCount);
    }

    [Fact]
    public void APendingEhloIsNotAPipeliningViolationWhenItsLineIsOfferedAgainAlone()
    {
        var s = new ScriptedScreening().Then(Point.Hello, ScreeningAnswer.Pending);
        (SessionDriver d, _) = Open(s);
        Assert.Equal("", d.Send("EHLO bar.com\r\n"));
        Assert.StartsWith("250-foo.com", d.Reoffer());
        Assert.False(d.Closed);
    }

    [Fact]
    public void PendingAtConnectHoldsTheGreetingUntilContinueAfterVerdictAccepts()
    {
        var s = new ScriptedScreening().Then(Point.Connect, ScreeningAnswer.Pending, ScreeningAnswer.Pending);
        var d = new SessionDriver();
        Assert.Equal("", d.Start(s));
        Assert.Equal(SessionStatus.AwaitingVerdict, d.LastStatus);
        Assert.True(d.Session.AwaitingConnectVerdict);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.AwaitingVerdict, d.Session.ContinueAfterVerdict(output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal(SessionStatus.Continue, d.Session.ContinueAfterVerdict(output));
        Assert.StartsWith("220 foo.com", Encoding.ASCII.GetString(output.WrittenSpan));
        Assert.False(d.Session.AwaitingConnectVerdict);
        Assert.Equal(["Connect", "Connect", "Connect"], s.Asked);
    }

    [Theory]
    [InlineData(ScreeningAnswer.Refuse)]
    [InlineData(ScreeningAnswer.RefuseAndClose)]
    public void ARefusalAtConnectReplacesTheGreetingAndCloses(ScreeningAnswer answer)
    {
        var s = new ScriptedScreening().Then(Point.Connect, answer);
        var d = new SessionDriver();
        Assert.Equal("450 4.7.1 REFUSED Connect\r\n", d.Start(s));
        Assert.True(d.Closed);
    }

    [Fact]
    public void WithAGreetDelayTheQuestionComesWhenTheDelayEndsAndAPendingOneHoldsTheGreetingLonger()
    {
        var s = new ScriptedScreening().Then(Point.Connect, ScreeningAnswer.Pending);
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", GreetDelay = TimeSpan.FromSeconds(5) });
        Assert.Equal("", d.Start(s));
        Assert.Empty(s.Asked); // the delay first: an early talker is dropped before anyone is asked
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.AwaitingVerdict, d.Session.OnGreetDelayElapsed(output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal(SessionStatus.Continue, d.Session.ContinueAfterVerdict(output));
        Assert.StartsWith("220 foo.com", Encoding.ASCII.GetString(output.WrittenSpan));
        Assert.Equal(["Connect", "Connect"], s.Asked);
    }

    [Fact]
    public void AnEarlyTalkerDuringTheGreetDelayIsDroppedWithoutAQuestion()
    {
        var s = new ScriptedScreening();
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", GreetDelay = TimeSpan.FromSeconds(5) });
        d.Start(s);
        Assert.StartsWith("554 5.5.0", d.Send("EHLO bar.com\r\n"));
        Assert.Empty(s.Asked);
    }

    [Fact]
    public void ALateContinueAfterVerdictChangesNothing()
    {
        var s = new ScriptedScreening();
        (SessionDriver d, _) = Open(s);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Continue, d.Session.ContinueAfterVerdict(output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal(["Connect"], s.Asked);
    }

    [Fact]
    public void ShutdownWhileAwaitingAVerdictAnswers421AndCloses()
    {
        var s = new ScriptedScreening().Then(Point.Recipient, ScreeningAnswer.Pending);
        SessionDriver d = UpTo(Point.Recipient, s);
        d.Send(CommandAt(Point.Recipient));
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Close, d.Session.OnShutdown(output));
        Assert.StartsWith("421 4.3.2", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void AResetSessionForgetsItsScreeningAndItsKeptLine()
    {
        var s = new ScriptedScreening().Then(Point.Mail, ScreeningAnswer.Pending);
        var counters = new CommandCounters();
        (SessionDriver d, _) = Open(s, new SmtpSessionOptions { HostName = "foo.com", Commands = counters });
        d.Send("EHLO bar.com\r\n");
        Assert.Equal("", d.Send("MAIL FROM:<a@bar.com>\r\n"));
        d.Session.Reset();
        var output = new ArrayBufferWriter<byte>();
        d.Session.Start(new ClientInfo("192.0.2.9"u8), d.Store, output);
        d.Session.Process("EHLO bar.com\r\n"u8, output, out _);
        d.Session.Process("MAIL FROM:<a@bar.com>\r\n"u8, output, out _);
        Assert.EndsWith("250 2.1.0 Ok\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
        Assert.Equal(2, counters[SmtpVerb.Mail]); // the kept line of the last session was counted; this one is new
        Assert.Equal(["Connect", "Hello", "Mail"], s.Asked);
    }
}
