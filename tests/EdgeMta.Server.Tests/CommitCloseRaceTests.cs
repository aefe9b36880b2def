// The commit/close race of SmtpConnectionHandler (its states Idle, Committing, ClosedWhileCommitting,
// ReleasedWhileCommitting): two parties hold a handler whose connection closes during the commit, the
// transport (OnClosed, then the factory's Return) and the commit (its completion on the spool's flusher
// thread). Whichever lets go last pools it, exactly once, and never while the other still uses it.
// The flush is held in flight by the harness (no sleeps); every wait is bounded.
using EdgeMta.Server;

namespace EdgeMta.Server.Tests;

public sealed class CommitCloseRaceTests : IDisposable
{
    private readonly ServerHarness _server = new(verbose: false);

    public void Dispose() => _server.Dispose();

    /// <summary>Sends a whole message and checks that its commit is in flight (the handler paused).</summary>
    private SmtpConnectionHandler CommitInFlight(InMemoryConnection c)
    {
        _server.HoldFlushes();
        c.Send("DATA\r\n");
        Assert.StartsWith("354 ", c.TakeReplies());
        c.Send("Subject: race\r\n\r\nbody\r\n.\r\n");
        Assert.True(_server.WaitForHeldFlush(), "the commit reached the spool's flusher");
        Assert.True(c.IsPaused, "the handler answered Pause while its commit runs");
        Assert.Equal("", c.TakeReplies()); // no 250 before the message is durable (RFC 5321 §6.1)
        var handler = (SmtpConnectionHandler)c.Handler!;
        Assert.True(handler.CommitInFlight);
        return handler;
    }

    [Fact]
    public void AConnectionClosedDuringTheCommitIsPooledOnceAndOnlyWhenTheCommitCompletes()
    {
        InMemoryConnection c = _server.OpenTransaction();
        SmtpConnectionHandler handler = CommitInFlight(c);

        c.Disconnect(); // OnClosed, then the transport's Return, both while the flusher holds the commit
        Assert.True(c.IsClosed && c.HandlerReturned);
        Assert.Equal(0, _server.Context.HandlersPooled);
        Assert.NotSame(handler, _server.Context.Create()); // the pool cannot hand it to another connection yet

        _server.ReleaseFlushes();
        Assert.True(SpinWait.SpinUntil(() => _server.Context.HandlersPooled == 1, ServerHarness.Bound),
            "the commit's completion pools the handler");
        Assert.False(handler.CommitInFlight);
        Assert.Same(handler, _server.Context.Create());
        Assert.NotSame(handler, _server.Context.Create()); // pooled once: a second Get makes a new one
        Assert.Equal(1, _server.Context.HandlersPooled);
        Assert.Equal(1, _server.Spool.FlushCounters.Records); // the message is on disk; nobody heard 250
        Assert.Equal("", c.TakeReplies()); // the connection was gone: no reply was sent to it
    }

    [Fact]
    public void ACommitCompletingBetweenOnClosedAndTheReturnLeavesThePoolingToTheReturn()
    {
        InMemoryConnection c = _server.OpenTransaction();
        SmtpConnectionHandler handler = CommitInFlight(c);

        c.Disconnect(returnHandler: false); // OnClosed only: the transport has not let go yet
        _server.ReleaseFlushes();
        Assert.True(SpinWait.SpinUntil(() => !handler.CommitInFlight, ServerHarness.Bound), "the commit completed");
        Assert.Equal(0, _server.Context.HandlersPooled); // the completion must not pool what the transport still holds

        c.ReturnHandler();
        Assert.Equal(1, _server.Context.HandlersPooled);
        Assert.Same(handler, _server.Context.Create());
        Assert.NotSame(handler, _server.Context.Create());
    }

    [Fact]
    public void ACommitCompletingBeforeTheCloseAnswers250AndTheCloseThenPoolsTheHandlerOnce()
    {
        InMemoryConnection c = _server.OpenTransaction();
        SmtpConnectionHandler handler = CommitInFlight(c);

        _server.ReleaseFlushes(); // the flusher resumes the connection and sends the 250 itself
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.0.0 OK queued as "), ServerHarness.Bound), c.Replies);
        Assert.False(c.IsPaused);
        Assert.False(handler.CommitInFlight);
        Assert.Equal(0, _server.Context.HandlersPooled);

        c.Disconnect();
        Assert.Equal(1, _server.Context.HandlersPooled);
        Assert.Same(handler, _server.Context.Create());
        Assert.NotSame(handler, _server.Context.Create());
    }

    [Fact]
    public void AQuitPipelinedAfterTheDotIsAnsweredAfterThe250OnceTheCommitCompletes()
    {
        InMemoryConnection c = _server.OpenTransaction();
        _server.HoldFlushes();
        c.Send("DATA\r\n");
        c.TakeReplies();
        c.Send("Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        Assert.True(_server.WaitForHeldFlush());
        Assert.Equal(6, c.PendingInput); // QUIT waits with the transport while the handler is paused

        _server.ReleaseFlushes();
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound), c.Replies);
        Assert.Matches(@"^250 2\.0\.0 OK queued as \S+\r\n221 2\.0\.0 mx\.example closing connection\r\n$", c.TakeReplies());
        Assert.Equal(1, _server.Context.HandlersPooled);
    }

    [Fact]
    public void AHandlerReusedAfterAnOrphanedCommitServesTheNextConnectionFromScratch()
    {
        InMemoryConnection first = _server.OpenTransaction();
        CommitInFlight(first);
        first.Disconnect();
        _server.ReleaseFlushes();
        Assert.True(SpinWait.SpinUntil(() => _server.Context.HandlersPooled == 1, ServerHarness.Bound));

        InMemoryConnection second = _server.Transport.Connect(); // takes the recycled handler from the pool
        Assert.StartsWith("220 ", second.TakeReplies());
        second.Send("DATA\r\n"); // no transaction carried over: 503, not 354
        Assert.StartsWith("503 ", second.TakeReplies());
    }
}
