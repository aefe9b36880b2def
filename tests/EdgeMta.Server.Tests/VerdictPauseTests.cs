// The handler's wait for a screening verdict (SmtpConnectionHandler.Verdict.cs) over the in-memory transport:
// Pending pauses the connection with nothing answered; a verdict reported from any thread resumes it on the
// thread pool, never on the reporting thread; the greeting waits for a pending OnConnect (and for a greet
// delay too); a verdict reported before the pause is not lost; a close or a stop while waiting ends the
// wait; a report while the handler waits for its spool commit does not cut that wait short.
using System.Buffers;
using System.Net;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Server.Screening;

namespace EdgeMta.Server.Tests;

public sealed class VerdictPauseTests : IDisposable
{
    /// <summary>A screening whose answer at each point is set by the test (Pending until decided).</summary>
    private sealed class HeldScreening(IVerdictListener listener) : IConnectionScreening
    {
        private readonly Lock _gate = new();
        private readonly ScreeningAnswer[] _answers = new ScreeningAnswer[4];

        public IVerdictListener Listener { get; } = listener;
        public List<(int Point, int Thread, bool Pool)> Asked { get; } = [];
        public int Opened;
        public int Closed;
        /// <summary>Called inside a question that answers Pending, before it returns (a verdict racing the pause).</summary>
        public Action? DuringPending;

        public void Set(int point, ScreeningAnswer answer)
        {
            lock (_gate) _answers[point] = answer;
        }

        /// <summary>Decides, then reports from the calling thread as a DNS thread would.</summary>
        public void Decide(int point, ScreeningAnswer answer)
        {
            Set(point, answer);
            Listener.OnVerdictKnown();
        }

        public void Open(IPAddress? client, long connection) => Interlocked.Increment(ref Opened);
        public void Close() => Interlocked.Increment(ref Closed);
        public ScreeningAnswer OnConnect(IBufferWriter<byte> output) => Answer(0, output);
        public ScreeningAnswer OnHello(IBufferWriter<byte> output) => Answer(1, output);
        public ScreeningAnswer OnMail(IBufferWriter<byte> output) => Answer(2, output);
        public ScreeningAnswer OnRecipient(IBufferWriter<byte> output) => Answer(3, output);

        private ScreeningAnswer Answer(int point, IBufferWriter<byte> output)
        {
            ScreeningAnswer answer;
            lock (_gate)
            {
                answer = _answers[point];
                Asked.Add((point, Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
            }
            if (answer is ScreeningAnswer.Refuse or ScreeningAnswer.RefuseAndClose)
            {
                output.Write(Encoding.ASCII.GetBytes("450 4.7.1 Error: refused\r\n"));
            }
            if (answer == ScreeningAnswer.Pending)
            {
                DuringPending?.Invoke();
            }
            return answer;
        }
    }

    private const int Connect = 0, Recipient = 3;

    private HeldScreening? _screening;
    private readonly ServerHarness _server;

    public VerdictPauseTests()
    {
        _server = new ServerHarness(verbose: false, screening: listener => _screening = new HeldScreening(listener));
    }

    public void Dispose() => _server.Dispose();

    private HeldScreening Screening => _screening!;

    /// <summary>Reports the verdict from a new, non-pool thread, as a DNS or timer thread would; returns its id.</summary>
    private static int ReportFromAnotherThread(Action report)
    {
        var thread = new Thread(() => report()) { IsBackground = true };
        thread.Start();
        Assert.True(thread.Join(ServerHarness.Bound));
        return thread.ManagedThreadId;
    }

    [Fact]
    public void APendingRecipientPausesWithPipelinedCommandsBehindItAndAVerdictResumesOnThePool()
    {
        InMemoryConnection c = _server.Transport.Connect();
        Assert.StartsWith("220 ", c.TakeReplies());
        c.Send("EHLO client.example\r\n");
        c.TakeReplies();
        Screening.Set(Recipient, ScreeningAnswer.Pending);
        c.Send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n");
        Assert.Equal("250 2.1.0 Ok\r\n", c.TakeReplies());
        Assert.True(c.IsPaused);
        Assert.True(c.PendingInput > 0);

        int reporter = ReportFromAnotherThread(() => Screening.Decide(Recipient, ScreeningAnswer.Accept));
        Assert.True(c.WaitFor(x => x.Replies.Contains("354 "), ServerHarness.Bound));
        Assert.Equal("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n", c.TakeReplies());
        (int _, int thread, bool pool) = Screening.Asked[^2]; // the first RCPT, asked again
        Assert.NotEqual(reporter, thread);
        Assert.True(pool, "the resumed session ran on the thread pool");
        Assert.False(c.IsPaused);
    }

    [Fact]
    public void AVerdictReportedBeforeThePauseIsNotLost()
    {
        InMemoryConnection c = _server.Transport.Connect();
        c.Send("EHLO client.example\r\n");
        c.Send("MAIL FROM:<a@example.org>\r\n");
        c.TakeReplies();
        Screening.Set(Recipient, ScreeningAnswer.Pending);
        // The verdict lands between the Pending answer and the handler's Pause.
        Screening.DuringPending = () => { Screening.DuringPending = null; Screening.Decide(Recipient, ScreeningAnswer.Refuse); };
        c.Send("RCPT TO:<b@example.com>\r\n");
        Assert.True(c.WaitFor(x => x.Replies.Contains("450 "), ServerHarness.Bound));
        Assert.Equal("450 4.7.1 Error: refused\r\n", c.TakeReplies());
        c.Send("NOOP\r\n");
        Assert.Equal("250 2.0.0 Ok\r\n", c.TakeReplies());
    }

    [Fact]
    public void APendingConnectHoldsTheGreetingUntilTheVerdict()
    {
        InMemoryConnection c = ConnectWithConnectAnswer(ScreeningAnswer.Pending);
        Assert.Equal("", c.TakeReplies());
        Assert.True(c.IsPaused);
        ReportFromAnotherThread(() => Screening.Decide(Connect, ScreeningAnswer.Accept));
        Assert.True(c.WaitFor(x => x.Replies.StartsWith("220 ", StringComparison.Ordinal), ServerHarness.Bound));
        c.Send("EHLO client.example\r\n");
        Assert.Contains("250-", c.TakeReplies());
    }

    [Fact]
    public void ARefusalAtConnectAfterAPendingOneClosesWithItsReply()
    {
        InMemoryConnection c = ConnectWithConnectAnswer(ScreeningAnswer.Pending);
        ReportFromAnotherThread(() => Screening.Decide(Connect, ScreeningAnswer.RefuseAndClose));
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound));
        Assert.Equal("450 4.7.1 Error: refused\r\n", c.TakeReplies());
        Assert.Equal(1, Screening.Closed);
    }

    [Fact]
    public void AClientThatLeavesWhileAwaitingAVerdictIsClosedAndALateVerdictTouchesNothing()
    {
        InMemoryConnection c = ConnectWithConnectAnswer(ScreeningAnswer.Pending);
        HeldScreening screening = Screening;
        c.Disconnect();
        Assert.True(c.IsClosed && c.HandlerReturned);
        Assert.Equal(1, screening.Closed);
        ReportFromAnotherThread(() => screening.Decide(Connect, ScreeningAnswer.Accept));
        Assert.Equal("", c.TakeReplies());
        Assert.Null(c.Fault);

        // The pooled handler serves the next client; the stale report costs at most one more question.
        InMemoryConnection next = _server.Transport.Connect();
        Assert.StartsWith("220 ", next.TakeReplies());
    }

    [Fact]
    public void AStopWhileAwaitingAVerdictAnswers421AndCloses()
    {
        InMemoryConnection c = _server.Transport.Connect();
        c.Send("EHLO client.example\r\n");
        c.TakeReplies();
        Screening.Set(2, ScreeningAnswer.Pending);
        c.Send("MAIL FROM:<a@example.org>\r\n");
        Assert.True(c.IsPaused);
        _server.Context.BeginStop();
        _server.Transport.Shutdown();
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound));
        Assert.StartsWith("421 4.3.2", c.TakeReplies());
    }

    [Fact]
    public void AQuestionLeftPendingAfterTheStopBeganEndsAt421AtOnce()
    {
        InMemoryConnection c = _server.Transport.Connect();
        c.Send("EHLO client.example\r\n");
        c.TakeReplies();
        _server.Context.BeginStop(); // the transport has not yet told this connection (its OnShutdown comes later)
        Screening.Set(2, ScreeningAnswer.Pending);
        c.Send("MAIL FROM:<a@example.org>\r\n");
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound));
        Assert.StartsWith("421 4.3.2", c.TakeReplies());
    }

    [Fact]
    public void AReportDuringTheSpoolCommitDoesNotCutTheCommitsPauseShort()
    {
        InMemoryConnection c = _server.OpenTransaction();
        _server.HoldFlushes();
        c.Send("DATA\r\n");
        c.TakeReplies();
        c.Send("Subject: x\r\n\r\nbody\r\n.\r\n");
        Assert.True(_server.WaitForHeldFlush());
        Assert.True(c.IsPaused);
        ReportFromAnotherThread(Screening.Listener.OnVerdictKnown); // a spurious report: nobody waits for a verdict
        Assert.False(c.WaitFor(x => !x.IsPaused, TimeSpan.FromMilliseconds(200)), "still waiting for the commit");
        Assert.Equal("", c.TakeReplies());
        _server.ReleaseFlushes();
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.0.0"), ServerHarness.Bound));
    }

    [Fact]
    public void WithAGreetDelayThePendingConnectIsAskedAfterTheDelayAndTheGreetingWaitsForBoth()
    {
        using var server = new ServerHarness(verbose: false,
            options: new SmtpSessionOptions { HostName = "mx.example", GreetDelay = TimeSpan.FromSeconds(3) },
            screening: listener => _screening = new HeldScreening(listener));
        InMemoryConnection c = ConnectWithConnectAnswer(server, ScreeningAnswer.Pending);
        Assert.Empty(Screening.Asked); // the delay runs first
        server.Clock.Advance(TimeSpan.FromSeconds(4));
        Assert.True(c.WaitFor(x => x.IsPaused, ServerHarness.Bound));
        Assert.Single(Screening.Asked);
        Assert.DoesNotContain("220 ", c.TakeReplies(), StringComparison.Ordinal); // at most the teaser line, 220-
        ReportFromAnotherThread(() => Screening.Decide(Connect, ScreeningAnswer.Accept));
        Assert.True(c.WaitFor(x => x.Replies.Contains("220 mx.example", StringComparison.Ordinal), ServerHarness.Bound));
    }

    [Fact]
    public void ALineOfferedAgainAfterAVerdictIsLoggedAndCountedOnce()
    {
        var counters = new CommandCounters();
        using var server = new ServerHarness(verbose: true,
            options: new SmtpSessionOptions { HostName = "mx.example", Commands = counters },
            screening: listener => _screening = new HeldScreening(listener));
        InMemoryConnection c = server.Transport.Connect();
        c.Send("EHLO client.example\r\n");
        c.Send("MAIL FROM:<a@example.org>\r\n");
        Screening.Set(Recipient, ScreeningAnswer.Pending);
        c.Send("RCPT TO:<b@example.com>\r\n");
        Assert.True(c.IsPaused);
        ReportFromAnotherThread(() => Screening.Decide(Recipient, ScreeningAnswer.Accept));
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.1.5"), ServerHarness.Bound));
        Assert.Equal(1, counters[SmtpVerb.Rcpt]);
        string log = server.LogText();
        Assert.Single(log.Split('\n'), l => l.Contains(" command ", StringComparison.Ordinal) && l.Contains("RCPT", StringComparison.Ordinal));
    }

    private InMemoryConnection ConnectWithConnectAnswer(ScreeningAnswer answer) => ConnectWithConnectAnswer(_server, answer);

    private InMemoryConnection ConnectWithConnectAnswer(ServerHarness server, ScreeningAnswer answer)
    {
        // The factory makes the screening with the handler: take one from the pool first, set it, give it back.
        var handler = (SmtpConnectionHandler)server.Context.Create();
        Screening.Set(Connect, answer);
        server.Context.Return(handler);
        return server.Transport.Connect();
    }
}
