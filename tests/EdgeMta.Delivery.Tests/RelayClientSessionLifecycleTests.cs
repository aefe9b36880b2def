// The session as a whole: greeting and hello refusals, loops, LMTP's replies per recipient (RFC 2033 §4.2),
// lost connections before and after the final dot (RFC 1047), the idle timeout of each phase (RFC 5321
// §4.5.3.2), shutdown, reuse limits, and that Completed comes once per transaction and Ended once per session.
using System.Net.Sockets;
using EdgeMta.Delivery;
using EdgeMta.TestKit;
using static EdgeMta.Delivery.Tests.RelayHarness;

namespace EdgeMta.Delivery.Tests;

public class RelayClientSessionLifecycleTests
{
    private const string Message = "Subject: test\r\n\r\nhello\r\n";

    [Fact]
    public void AGreetingNamingOurHostnameIsALoop()
    {
        using var h = Open(Options(), To(Message, "a@x.net"));
        h.Reply("220 EDGE.example.org. ESMTP\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        var end = h.Work.End();
        Assert.Equal(SessionEnd.Loop, end.End);
        Assert.Contains("EDGE.example.org.", end.Reason);
        Assert.Equal(0, h.Work.TryNextCalls);
        Assert.Empty(h.Work.Completed);
    }

    [Fact]
    public void AnEhloReplyNamingOurHostnameIsALoop()
    {
        using var h = Open(Options(), To(Message, "a@x.net"));
        h.Reply("220 mx.example.net ESMTP\r\n");
        h.Take();
        h.Reply("250-edge.example.org hi\r\n250 PIPELINING\r\n");
        Assert.Equal(SessionEnd.Loop, h.Work.End().End);
        Assert.Equal(0, h.Work.TryNextCalls);
    }

    [Fact]
    public void A421GreetingIsRefusedWithoutAWord()
    {
        using var h = Open(Options(), To(Message, "a@x.net"));
        h.Reply("421 4.3.2 busy\r\n");
        Assert.Equal("", h.Take());
        Assert.Equal((SessionEnd.Refused, "greeting: 421 4.3.2 busy"), h.Work.End());
        Assert.True(h.Connection.IsClosed);
    }

    [Fact]
    public void A554GreetingIsRefusedAndQuit()
    {
        using var h = Open(Options(), To(Message, "a@x.net"));
        h.Reply("554 5.7.1 go away\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Equal(SessionEnd.Refused, h.Work.End().End);
    }

    [Fact]
    public void ARefusedEhloFallsBackToHeloForSmtp()
    {
        using var h = Open(Options(), To(Message, "a@x.net"));
        h.Reply("220 mx.example.net ESMTP\r\n");
        h.Take();
        h.Reply("500 what\r\n");
        Assert.Equal("HELO edge.example.org\r\n", h.Take());
        h.Reply("250 mx.example.net\r\n");
        Assert.Equal("MAIL FROM:<sender@example.com>\r\n", h.Take());
    }

    [Fact]
    public void LmtpHasNoHeloFallback()
    {
        using var h = Open(Options("lmtp://lmtp.example.net"), To(Message, "a@x.net"));
        h.Reply("220 lmtp.example.net LMTP\r\n");
        Assert.Equal("LHLO edge.example.org\r\n", h.Take());
        h.Reply("500 what\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Equal(SessionEnd.Refused, h.Work.End().End);
    }

    [Fact]
    public void LmtpGivesEachAcceptedRecipientItsOwnReply()
    {
        using var h = Ready(Options("lmtp://lmtp.example.net"), ["PIPELINING", "ENHANCEDSTATUSCODES"],
            To(Message, "a@x.net", "gone@x.net", "b@x.net", "c@x.net"));
        Assert.Equal("MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@x.net>\r\nRCPT TO:<gone@x.net>\r\nRCPT TO:<b@x.net>\r\nRCPT TO:<c@x.net>\r\nDATA\r\n", h.Take());
        h.Reply("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        Assert.Equal(Message + ".\r\n", h.Take());
        h.Reply("250 2.0.0 a saved\r\n552 5.2.2 over quota\r\n");
        Assert.Empty(h.Work.Completed);
        h.Reply("450 4.2.0 mailbox busy\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        var o = h.Work.Only();
        Assert.Equal([OutcomeKind.Delivered, OutcomeKind.Failed, OutcomeKind.Failed, OutcomeKind.Deferred], o.Select(x => x.Kind));
        Assert.Equal(["250 2.0.0 a saved", "550 5.1.1 unknown", "552 5.2.2 over quota", "450 4.2.0 mailbox busy"], o.Select(x => x.Reply));
        Assert.Equal(new EnhancedStatusCode(5, 2, 2), o[2].Status);
    }

    [Fact]
    public void ALostConnectionAfterTheFinalDotIsPossiblyDelivered()
    {
        using var h = Ready(Options(), ["PIPELINING"], To(Message, "a@x.net", "b@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n");
        Assert.Equal(Message + ".\r\n", h.Take());
        h.Connection.Disconnect();
        var o = h.Work.Only();
        Assert.Equal((OutcomeKind.Deferred, true), (o[0].Kind, o[0].PossiblyDelivered));
        Assert.Equal((OutcomeKind.Failed, false), (o[1].Kind, o[1].PossiblyDelivered));
        Assert.Equal((SessionEnd.Broken, "connection lost after the end of data"), h.Work.End());
    }

    [Fact]
    public void ALostConnectionInTheMiddleOfTheDataIsNotPossiblyDelivered()
    {
        using var h = Ready(Options(), ["PIPELINING"], To(new string('x', 100_000), "a@x.net"));
        h.Take();
        h.Connection.HoldWrites = true;
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        Assert.True(h.Connection.WritePending);
        h.Connection.ReleaseWrite(); // the first block left; the final dot is in the second
        Assert.True(h.Connection.WritePending);
        h.Connection.Disconnect();
        var o = Assert.Single(h.Work.Only());
        Assert.Equal((OutcomeKind.Deferred, false), (o.Kind, o.PossiblyDelivered));
        Assert.Equal(SessionEnd.Broken, h.Work.End().End);
    }

    [Fact]
    public void EachPhaseSetsItsOwnIdleTimeout()
    {
        var options = Options() with
        {
            GreetingTimeout = TimeSpan.FromSeconds(11),
            CommandTimeout = TimeSpan.FromSeconds(12),
            DataInitTimeout = TimeSpan.FromSeconds(13),
            DataBlockTimeout = TimeSpan.FromSeconds(14),
            FinalReplyTimeout = TimeSpan.FromSeconds(15),
        };
        using var h = Open(options, To(Message, "a@x.net"));
        Assert.Equal(TimeSpan.FromSeconds(11), h.Connection.IdleTimeout);
        h.Reply("220 mx.example.net ESMTP\r\n");
        Assert.Equal(TimeSpan.FromSeconds(12), h.Connection.IdleTimeout);
        h.Reply(Ehlo());
        h.Reply("250 ok\r\n");
        Assert.Equal(TimeSpan.FromSeconds(12), h.Connection.IdleTimeout);
        h.Reply("250 ok\r\n");
        Assert.Equal(TimeSpan.FromSeconds(13), h.Connection.IdleTimeout);
        h.Connection.HoldWrites = true;
        h.Reply("354 go\r\n");
        Assert.Equal(TimeSpan.FromSeconds(14), h.Connection.IdleTimeout);
        h.Connection.ReleaseWrite();
        Assert.Equal(TimeSpan.FromSeconds(15), h.Connection.IdleTimeout);

        h.Clock.Advance(TimeSpan.FromSeconds(14));
        Assert.Empty(h.Work.Completed);
        h.Clock.Advance(TimeSpan.FromSeconds(2));
        var o = Assert.Single(h.Work.Only());
        Assert.Equal((OutcomeKind.Deferred, true, (ushort)0), (o.Kind, o.PossiblyDelivered, o.Code));
        Assert.Equal((SessionEnd.Broken, "timed out after the end of data"), h.Work.End());
        Assert.True(h.Connection.IsClosed);
    }

    [Fact]
    public void AGreetingTimeoutIsARefusalWithNoTransactionTaken()
    {
        using var h = Open(Options() with { GreetingTimeout = TimeSpan.FromSeconds(5) }, To(Message, "a@x.net"));
        h.Clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Empty(h.Work.Ends);
        h.Clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal((SessionEnd.Refused, "timed out waiting for the greeting"), h.Work.End());
        Assert.Equal(0, h.Work.TryNextCalls);
        Assert.Empty(h.Work.Completed);
    }

    [Fact]
    public void AConnectionLostBeforeTheGreetingIsARefusal()
    {
        using var h = Open(Options(), To(Message, "a@x.net"));
        h.Connection.Disconnect();
        Assert.Equal((SessionEnd.Refused, "connection lost waiting for the greeting"), h.Work.End());
        Assert.Equal(0, h.Work.TryNextCalls);
    }

    [Fact]
    public void AConnectFailureEndsTheSessionOnce()
    {
        var work = new ScriptedWork();
        var session = new RelayClientSession(Options(), work);
        session.OnConnectFailed(SocketError.ConnectionRefused);
        Assert.Equal((SessionEnd.ConnectFailed, "connect: ConnectionRefused"), work.End());
        Assert.Equal(0, work.TryNextCalls);
    }

    [Fact]
    public void ShutdownBeforeTheFinalDotAbandonsTheTransactionAndQuits()
    {
        using var h = Ready(Options(), [], To(Message, "a@x.net"));
        h.Take();
        h.Reply("250 ok\r\n");
        h.Take();
        h.Transport.Shutdown();
        Assert.Equal("QUIT\r\n", h.Take());
        var o = Assert.Single(h.Work.Only());
        Assert.Equal((OutcomeKind.Deferred, false), (o.Kind, o.PossiblyDelivered));
        Assert.Equal(SessionEnd.Shutdown, h.Work.End().End);
        Assert.True(h.Connection.IsClosed);
    }

    [Fact]
    public void ShutdownWhileTheServerMayReadDataClosesWithoutQuit()
    {
        using var h = Ready(Options(), ["PIPELINING"], To(Message, "a@x.net"));
        h.Take(); // MAIL, RCPT and DATA: a 354 may be on its way, so "QUIT" would be message text
        h.Transport.Shutdown();
        Assert.Equal("", h.Take());
        Assert.Equal(OutcomeKind.Deferred, Assert.Single(h.Work.Only()).Kind);
        Assert.True(h.Connection.IsClosed);
    }

    [Fact]
    public void ShutdownAfterTheFinalDotWaitsForTheReply()
    {
        using var h = Ready(Options(), ["PIPELINING"], To(Message, "a@x.net"), To(Message, "b@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        h.Take();
        h.Transport.Shutdown();
        Assert.False(h.Connection.IsClosed);
        Assert.Empty(h.Work.Ends);
        h.Reply("250 2.0.0 ok\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Equal(OutcomeKind.Delivered, Assert.Single(h.Work.Only()).Kind);
        Assert.Equal(SessionEnd.Shutdown, h.Work.End().End);
        Assert.Equal(1, h.Work.TryNextCalls);
        Assert.Single(h.Work.Pending);
    }

    [Fact]
    public void MaxTransactionsEndsTheConnectionAndLeavesTheRestQueued()
    {
        using var h = Ready(Options() with { MaxTransactions = 2 }, ["PIPELINING"], To(Message, "a@x.net"), To(Message, "b@x.net"), To(Message, "c@x.net"));
        for (int i = 0; i < 2; i++)
        {
            Assert.StartsWith("MAIL FROM:", h.Take());
            h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
            h.Take();
            h.Reply("250 ok\r\n");
        }
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Equal(2, h.Work.Completed.Count);
        Assert.Single(h.Work.Pending);
        Assert.Equal(SessionEnd.Normal, h.Work.End().End);
    }

    [Fact]
    public void MaxConnectionAgeEndsTheConnectionAfterTheRunningTransaction()
    {
        var options = Options() with { MaxConnectionAge = TimeSpan.FromSeconds(10) };
        using var h = Ready(options, ["PIPELINING"], To(Message, "a@x.net"), To(Message, "b@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        h.Take();
        h.Clock.Advance(TimeSpan.FromSeconds(11));
        h.Reply("250 ok\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Single(h.Work.Pending);
        Assert.Equal((SessionEnd.Normal, "reuse limit: connection age"), h.Work.End());
    }
}
