// The slow-client defence through the in-memory transport on a fake clock (docs/SCREENING.md "Slow clients"):
// the per-request deadline that bytes do not move, the minimum data rate in DATA, and the stress mode with its
// hysteresis, short timeouts and error limit. Time is advanced, never waited for; every step is synchronous
// (the transport's sweep runs on the advancing thread).
using EdgeMta.Protocol;

namespace EdgeMta.Server.Tests;

public sealed class SlowClientTests : IDisposable
{
    private readonly List<ServerHarness> _servers = [];

    public void Dispose()
    {
        foreach (ServerHarness server in _servers) server.Dispose();
    }

    [Fact]
    public void OneByteEveryTwentySecondsIsCutAtTheCommandTimeoutOfWhenItsLineBegan()
    {
        ServerHarness server = Server();
        InMemoryConnection c = server.Transport.Connect();
        Assert.StartsWith("220 ", c.TakeReplies());
        // The greeting at 0 s arms 300 s for the first line; each byte would have restarted a naive idle timer.
        for (int second = 0; second < 300; second += 20)
        {
            c.Send("E");
            server.Clock.Advance(TimeSpan.FromSeconds(20));
            Assert.Equal(second + 20 < 300, !c.IsClosed);
        }
        Assert.Equal("421 4.4.2 mx.example Error: timeout exceeded\r\n", c.TakeReplies());
        Assert.Equal(1, server.Context.Stress.CommandTimeouts);
        Assert.Contains("request-timeout conn=1 client=192.0.2.1 phase=command stress=0", server.LogText());
    }

    [Fact]
    public void AClientThatAnswersEachCommandInTimeIsNeverCut()
    {
        ServerHarness server = Server();
        InMemoryConnection c = server.Transport.Connect();
        c.TakeReplies();
        // Ten commands, each 290 s after the last reply: 48 minutes in all, each request within its own 300 s.
        for (int i = 0; i < 10; i++)
        {
            server.Clock.Advance(TimeSpan.FromSeconds(290));
            c.Send("NOOP\r\n");
            Assert.Equal("250 2.0.0 Ok\r\n", c.TakeReplies());
        }
        Assert.False(c.IsClosed);
        Assert.Equal(0, server.Context.Stress.CommandTimeouts);
    }

    [Fact]
    public void DataAtOneHundredBytesASecondIsCutAndAtOneThousandIsNot()
    {
        // A 20 s data timeout at the default 500 B/s: 100 B/s earns 0.2 s a second, so it runs out at 25 s
        // (20 + 0.2 x 25); 1000 B/s earns 2 s a second, capped at 20 s ahead, and never does.
        ServerHarness server = Server(new SmtpSessionOptions { HostName = "mx.example", MaxMessageSize = 64 * 1024, DataTimeout = TimeSpan.FromSeconds(20) });
        string line = new string('a', 98) + "\r\n";

        InMemoryConnection slow = server.OpenTransaction();
        slow.Send("DATA\r\n");
        Assert.StartsWith("354 ", slow.TakeReplies());
        int seconds = 0;
        for (; seconds < 60 && !slow.IsClosed; seconds++)
        {
            slow.Send(line);
            server.Clock.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.Equal(25, seconds);
        Assert.Equal("421 4.4.2 mx.example Error: timeout exceeded\r\n", slow.TakeReplies());
        Assert.Equal(1, server.Context.Stress.DataTimeouts);

        InMemoryConnection fast = server.OpenTransaction();
        fast.Send("DATA\r\n");
        fast.TakeReplies();
        for (int s = 0; s < 40; s++)
        {
            for (int i = 0; i < 10; i++) fast.Send(line);
            server.Clock.Advance(TimeSpan.FromSeconds(1));
            Assert.False(fast.IsClosed, $"cut after {s + 1} s at 1000 B/s");
        }
        fast.Send(".\r\n");
        Assert.True(fast.WaitFor(x => x.Replies.Contains("250 2.0.0 OK queued as "), ServerHarness.Bound), fast.Replies);
        // The message's text is over: the next command has the command timeout again, from the 250.
        Assert.Equal(300_000, fast.RequestDeadlineLeftMs);
    }

    [Fact]
    public void StressBeginsAboveEightyPercentAndEndsOnlyBelowSeventy()
    {
        ServerHarness server = Server(maxConnections: 10);
        ConnectionStress stress = server.Context.Stress;
        var open = new List<InMemoryConnection>();
        for (int i = 0; i < 8; i++) open.Add(server.Transport.Connect());
        Assert.False(stress.Active); // 8 of 10 is not above 80%
        open.Add(server.Transport.Connect());
        Assert.True(stress.Active);
        // Down to 7: still above the lower mark's 70%, no flap at 8 or 7.
        for (int i = 0; i < 2; i++) Close(open);
        Assert.True(stress.Active);
        Close(open);
        Assert.False(stress.Active); // 6 < 7
        open.Add(server.Transport.Connect());
        open.Add(server.Transport.Connect());
        Assert.False(stress.Active); // back to 8: not above the upper mark
        open.Add(server.Transport.Connect());
        Assert.True(stress.Active);
        Assert.Equal(2, stress.Entered);
        string log = server.LogText();
        Assert.Contains("stress-on open=9 max=10", log);
        Assert.Contains("stress-off open=6 max=10", log);
    }

    [Fact]
    public void UnderStressTheWaitingAreCutAtTheStressTimeoutAndNewSessionsGetErrorLimitOne()
    {
        ServerHarness server = Server(maxConnections: 10);
        var open = new List<InMemoryConnection>();
        for (int i = 0; i < 8; i++) open.Add(server.Transport.Connect());
        open[0].Send("EH"); // half a line, begun at 0 s with 300 s to finish
        server.Clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(open[0].IsClosed);

        InMemoryConnection late = server.Transport.Connect(); // the ninth: stress
        Assert.True(server.Context.Stress.Active);
        Assert.Equal(10_000, late.RequestDeadlineLeftMs); // a new session's first command: 10 s, not 300 s
        Assert.Equal(10_000, open[1].RequestDeadlineLeftMs); // one already waiting: 10 s from the onset
        server.Clock.Advance(TimeSpan.FromSeconds(9));
        Assert.False(open[0].IsClosed);
        server.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(open.TrueForAll(x => x.IsClosed), "every session waiting at the onset is cut 10 s later");
        Assert.True(late.IsClosed);
        Assert.Equal(9, server.Context.Stress.CommandTimeouts);

        // Stress is over (0 open); refill to 9 and the error limit of a session is 1 while it lasts.
        Assert.False(server.Context.Stress.Active);
        for (int i = 0; i < 9; i++) open.Add(server.Transport.Connect());
        InMemoryConnection erring = open[^1];
        erring.TakeReplies();
        erring.Send("BOGUS\r\n");
        Assert.Equal("500 5.5.2 Error: command not recognized\r\n421 4.7.0 mx.example Error: too many errors\r\n", erring.TakeReplies());
        Assert.True(erring.IsClosed);
        // Out of stress again (8 open after that close, then 6: below 70%), a session's error limit is the normal 20.
        for (int i = 8; i < 10; i++) open[i].Disconnect();
        Assert.False(server.Context.Stress.Active);
        InMemoryConnection calm = server.Transport.Connect();
        calm.TakeReplies();
        calm.Send("BOGUS\r\n");
        Assert.Equal("500 5.5.2 Error: command not recognized\r\n", calm.TakeReplies());
        Assert.False(calm.IsClosed);
        Assert.Equal(300_000, calm.RequestDeadlineLeftMs);
    }

    private ServerHarness Server(SmtpSessionOptions? options = null, int maxConnections = 0)
    {
        var server = new ServerHarness(verbose: false, options,
            stress: log => new ConnectionStress(maxConnections, new SlowClientOptions(), log));
        _servers.Add(server);
        return server;
    }

    private static void Close(List<InMemoryConnection> open)
    {
        open[^1].Disconnect();
        open.RemoveAt(open.Count - 1);
    }
}
