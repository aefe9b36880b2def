// A spool that fails a write shuts the MAIL gate: for SpoolOptions.FailingWindowMs the next transactions hear
// 451 4.3.0 at MAIL (or at DATA, when MAIL came before the failure) instead of sending a whole message to be
// refused at its dot, and the refusal's log line names the errno. Time is the harness's fake clock.
using EdgeMta.Spool.Native;

namespace EdgeMta.Server.Tests;

public sealed class SpoolFailureTests : IDisposable
{
    private readonly ServerHarness _server = new(verbose: false);

    public void Dispose() => _server.Dispose();

    [Fact]
    public void AfterAFailedFlushMailIs451UntilTheWindowPassesAndTheLogNamesTheErrno()
    {
        InMemoryConnection c = _server.OpenTransaction();
        _server.Spool.InjectFlushError = () => LibC.EROFS;
        c.Send("DATA\r\n");
        Assert.StartsWith("354 ", c.TakeReplies());
        c.Send("Subject: x\r\n\r\nbody\r\n.\r\n");
        Assert.True(c.WaitFor(x => x.Replies.Contains("451 4.3.0"), ServerHarness.Bound), c.Replies);
        Assert.Equal("451 4.3.0 Error: queue file write error\r\n", c.TakeReplies());
        _server.Spool.InjectFlushError = null;

        c.Send("MAIL FROM:<sender@example.org>\r\n");
        Assert.Equal("451 4.3.0 Error: queue file write error\r\n", c.TakeReplies());

        _server.Clock.Advance(TimeSpan.FromSeconds(5));
        c.Send("MAIL FROM:<sender@example.org>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n");
        Assert.Equal("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n", c.TakeReplies());
        c.Send("Subject: y\r\n\r\nbody\r\n.\r\n");
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.0.0 OK queued as "), ServerHarness.Bound), c.Replies);

        string log = _server.LogText();
        Assert.Contains(" spool=error errno=EROFS", log);
    }

    [Fact]
    public void AnErrnoWithNoNameIsLoggedAsItsNumber()
    {
        InMemoryConnection c = _server.OpenTransaction();
        _server.Spool.InjectFlushError = () => 200;   // past every Linux errno: Errno.Name has none
        c.Send("DATA\r\n");
        Assert.StartsWith("354 ", c.TakeReplies());
        c.Send("Subject: x\r\n\r\nbody\r\n.\r\n");
        Assert.True(c.WaitFor(x => x.Replies.Contains("451 4.3.0"), ServerHarness.Bound), c.Replies);
        Assert.Contains(" spool=error errno=200", _server.LogText());
    }

    [Fact]
    public void AFailureBetweenMailAndDataIs451AtDataNot354()
    {
        InMemoryConnection first = _server.OpenTransaction();
        InMemoryConnection second = _server.OpenTransaction();   // MAIL and RCPT accepted before the failure
        _server.Spool.InjectFlushError = () => LibC.EIO;
        first.Send("DATA\r\n");
        Assert.StartsWith("354 ", first.TakeReplies());
        first.Send("Subject: x\r\n\r\nbody\r\n.\r\n");
        Assert.True(first.WaitFor(x => x.Replies.Contains("451 4.3.0"), ServerHarness.Bound), first.Replies);
        _server.Spool.InjectFlushError = null;

        second.Send("DATA\r\n");
        Assert.Equal("451 4.3.0 Error: queue file write error\r\n", second.TakeReplies());
    }
}
