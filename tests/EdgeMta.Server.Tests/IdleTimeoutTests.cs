// The handler's timeouts on the fake clock through the in-memory transport (RFC 5321 §4.5.3.2: 5 minutes
// for a command, 10 minutes inside DATA): time is advanced, never waited for.
namespace EdgeMta.Server.Tests;

public sealed class IdleTimeoutTests : IDisposable
{
    private readonly ServerHarness _server = new(verbose: false);

    public void Dispose() => _server.Dispose();

    [Fact]
    public void AnIdleSessionIsClosedWith421AfterTheCommandTimeoutAndNotBefore()
    {
        InMemoryConnection c = _server.Transport.Connect();
        c.TakeReplies();
        _server.Clock.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(2));
        Assert.False(c.IsClosed);
        _server.Clock.Advance(TimeSpan.FromSeconds(3));
        Assert.True(c.IsClosed);
        Assert.StartsWith("421 4.4.2 ", c.TakeReplies());
        Assert.Equal(1, _server.Context.HandlersPooled);
    }

    [Fact]
    public void InsideDataTheTimeoutIsTheDataTimeoutEarnedOnlyAtTheMinimumRate()
    {
        InMemoryConnection c = _server.OpenTransaction();
        c.Send("DATA\r\n");
        c.TakeReplies();
        Assert.Equal(TimeSpan.FromMinutes(10), c.IdleTimeout);
        _server.Clock.Advance(TimeSpan.FromMinutes(9));
        Assert.False(c.IsClosed);
        // 11 bytes earn 11 / 500 s (docs/SCREENING.md "Slow clients"): input no longer restarts the data timeout.
        c.Send("more text\r\n");
        _server.Clock.Advance(TimeSpan.FromSeconds(59));
        Assert.False(c.IsClosed);
        _server.Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(c.IsClosed);
        Assert.StartsWith("421 4.4.2 ", c.TakeReplies());
    }

    [Fact]
    public void AHeldCommitIsNeverCutByTheIdleTimeout()
    {
        // The spool's own deadline set far away: only the transport's idle timeout could act in this hour.
        using var server = new ServerHarness(verbose: false, spoolTimeout: TimeSpan.FromHours(2));
        InMemoryConnection c = server.OpenTransaction();
        server.HoldFlushes();
        c.Send("DATA\r\n");
        c.Send("body\r\n.\r\n");
        Assert.True(server.WaitForHeldFlush());
        server.Clock.Advance(TimeSpan.FromHours(1)); // the data phase waits for the spool, not the idle clock
        Assert.False(c.IsClosed);
        server.ReleaseFlushes();
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.0.0 OK queued as "), ServerHarness.Bound), c.Replies);
    }

    [Fact]
    public void AHeldCommitPastTheSpoolDeadlineGets451AndTheSessionGoesOn()
    {
        InMemoryConnection c = _server.OpenTransaction();
        _server.HoldFlushes();
        c.Send("DATA\r\n");
        c.Send("body\r\n.\r\n");
        Assert.True(_server.WaitForHeldFlush());
        c.TakeReplies();
        // A disk that does not answer: the spool's deadline (30 s) answers for it; nobody waits 10 minutes.
        _server.Clock.Advance(TimeSpan.FromSeconds(29));
        Assert.DoesNotContain("451", c.Replies);
        _server.Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(c.WaitFor(x => x.Replies.Contains("451 4.3.0 "), ServerHarness.Bound), c.Replies);
        Assert.False(c.IsClosed);
        _server.ReleaseFlushes();
        c.Send("NOOP\r\n");
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.0.0 "), ServerHarness.Bound), c.Replies);
    }
}
