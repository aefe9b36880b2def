// The SMTP transaction as the next hop sees it: the exact bytes and how they are grouped into writes (RFC 2920),
// the replies turned into outcomes per recipient (docs/DELIVERY.md "Replies, per recipient"), and connection
// reuse with RSET after a transaction that stopped half-way.
using EdgeMta.Delivery;
using static EdgeMta.Delivery.Tests.RelayHarness;

namespace EdgeMta.Delivery.Tests;

public class RelayClientSessionSmtpTests
{
    private const string Message = "Subject: test\r\n\r\nhello\r\n";

    [Fact]
    public void WithoutPipeliningEachCommandWaitsForItsReply()
    {
        using var h = Ready(Options(), ["8BITMIME", "SIZE 1000000"], To(Message, "a@example.net", "b@example.net"));
        Assert.Equal($"MAIL FROM:<sender@example.com> SIZE={Message.Length}\r\n", h.Take());
        h.Reply("250 2.1.0 ok\r\n");
        Assert.Equal("RCPT TO:<a@example.net>\r\n", h.Take());
        h.Reply("250 2.1.5 ok\r\n");
        Assert.Equal("RCPT TO:<b@example.net>\r\n", h.Take());
        h.Reply("250 2.1.5 ok\r\n");
        Assert.Equal("DATA\r\n", h.Take());
        h.Reply("354 go ahead\r\n");
        Assert.Equal(Message + ".\r\n", h.Take());
        h.Reply("250 2.0.0 queued as X1\r\n");
        Assert.Equal("QUIT\r\n", h.Take());

        var sends = h.Connection.Sends;
        Assert.Equal(["EHLO edge.example.org\r\n", $"MAIL FROM:<sender@example.com> SIZE={Message.Length}\r\n",
            "RCPT TO:<a@example.net>\r\n", "RCPT TO:<b@example.net>\r\n", "DATA\r\n", Message + ".\r\n", "QUIT\r\n"], sends);
        var outcomes = h.Work.Only();
        Assert.All(outcomes, o =>
        {
            Assert.Equal(OutcomeKind.Delivered, o.Kind);
            Assert.Equal(250, o.Code);
            Assert.Equal("250 2.0.0 queued as X1", o.Reply);
            // No ENHANCEDSTATUSCODES advertised: the code in the text is not trusted (RFC 2034 §3).
            Assert.Equal(new EnhancedStatusCode(2, 0, 0), o.Status);
        });
        Assert.Equal(SessionEnd.Normal, h.Work.End().End);
        Assert.True(h.Connection.IsClosed);
    }

    [Fact]
    public void WithPipeliningMailRcptAndDataLeaveInOneWrite()
    {
        using var h = Ready(Options(), ["PIPELINING", "ENHANCEDSTATUSCODES"], To(Message, "a@example.net", "b@example.net"));
        Assert.Equal("MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", h.Take());
        h.Reply("250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
        Assert.Equal("", h.Take());
        h.Reply("250 2.1.5 ok\r\n354 go\r\n");
        Assert.Equal(Message + ".\r\n", h.Take());
        h.Reply("250 2.0.0 ok\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Equal(["EHLO edge.example.org\r\n",
            "MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
            Message + ".\r\n", "QUIT\r\n"], h.Connection.Sends);
        Assert.All(h.Work.Only(), o => Assert.Equal(OutcomeKind.Delivered, o.Kind));
    }

    [Fact]
    public void ATemporaryFailureIsDeferredAndTheNextTransactionUsesTheSameConnection()
    {
        using var h = Ready(Options(), ["PIPELINING", "ENHANCEDSTATUSCODES"], To(Message, "a@example.net"), To(Message, "b@example.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        h.Take();
        h.Reply("451 4.3.0 try again later\r\n");
        // The final reply ended the transaction on both sides: no RSET is needed (RFC 5321 §4.1.1.4).
        Assert.Equal("MAIL FROM:<sender@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", h.Take());
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        h.Take();
        h.Reply("250 2.0.0 ok\r\n");
        Assert.Equal("QUIT\r\n", h.Take());

        Assert.Equal(2, h.Work.Completed.Count);
        var first = Assert.Single(h.Work.Completed[0].Outcomes);
        Assert.Equal((OutcomeKind.Deferred, (ushort)451, new EnhancedStatusCode(4, 3, 0)), (first.Kind, first.Code, first.Status));
        Assert.Equal("451 4.3.0 try again later", first.Reply);
        Assert.Equal(OutcomeKind.Delivered, Assert.Single(h.Work.Completed[1].Outcomes).Kind);
        Assert.Equal(SessionEnd.Normal, h.Work.End().End);
    }

    [Fact]
    public void OneRecipientOfThreeRefusedFailsAndTheOthersAreDelivered()
    {
        using var h = Ready(Options(), ["ENHANCEDSTATUSCODES"], To(Message, "a@x.net", "b@x.net", "c@x.net"));
        h.Take();
        h.Reply("250 ok\r\n");
        h.Reply("250 ok\r\n");
        h.Reply("550 5.1.1 no such user\r\n");
        Assert.Equal("RCPT TO:<a@x.net>\r\nRCPT TO:<b@x.net>\r\nRCPT TO:<c@x.net>\r\n", h.Take());
        h.Reply("250 ok\r\n");
        Assert.Equal("DATA\r\n", h.Take());
        h.Reply("354 go\r\n");
        h.Reply("250 2.0.0 ok\r\n");
        var o = h.Work.Only();
        Assert.Equal([OutcomeKind.Delivered, OutcomeKind.Failed, OutcomeKind.Delivered], o.Select(x => x.Kind));
        Assert.Equal((ushort)550, o[1].Code);
        Assert.Equal(new EnhancedStatusCode(5, 1, 1), o[1].Status);
        Assert.Equal("550 5.1.1 no such user", o[1].Reply);
    }

    [Fact]
    public void FourFiftyTwoDefersTheLastRecipientsWithTheirCode()
    {
        using var h = Ready(Options(), ["PIPELINING", "ENHANCEDSTATUSCODES"], To(Message, "a@x.net", "b@x.net", "c@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n452 4.5.3 too many recipients\r\n452 4.5.3 too many recipients\r\n354 go\r\n");
        h.Reply("250 2.0.0 ok\r\n");
        var o = h.Work.Only();
        Assert.Equal(OutcomeKind.Delivered, o[0].Kind);
        Assert.All(o[1..], x => Assert.Equal((OutcomeKind.Deferred, (ushort)452), (x.Kind, x.Code)));
    }

    [Fact]
    public void AllRecipientsRefusedSkipsDataAndTheNextTransactionStartsWithRset()
    {
        using var h = Ready(Options(), [], To(Message, "a@x.net"), To(Message, "b@x.net"));
        h.Take();
        h.Reply("250 ok\r\n");
        h.Take();
        h.Reply("550 5.1.1 unknown\r\n");
        Assert.Equal("RSET\r\n", h.Take());
        Assert.Equal(OutcomeKind.Failed, Assert.Single(h.Work.Completed[0].Outcomes).Kind);
        h.Reply("250 ok\r\n");
        Assert.Equal("MAIL FROM:<sender@example.com>\r\n", h.Take());
    }

    [Fact]
    public void AllRecipientsRefusedWithPipeliningReadsTheDataRefusalAndGoesOn()
    {
        using var h = Ready(Options(), ["PIPELINING"], To(Message, "a@x.net"));
        h.Take();
        h.Reply("250 ok\r\n550 no\r\n554 no valid recipients\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        var o = Assert.Single(h.Work.Only());
        Assert.Equal(("550 no", OutcomeKind.Failed), (o.Reply, o.Kind));
    }

    [Fact]
    public void ARefusedMailCommandDecidesEveryRecipient()
    {
        using var h = Ready(Options(), [], To(Message, "a@x.net", "b@x.net"));
        h.Take();
        h.Reply("452 4.3.1 insufficient storage\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.All(h.Work.Only(), o => Assert.Equal((OutcomeKind.Deferred, (ushort)452), (o.Kind, o.Code)));
    }

    [Fact]
    public void ABrokenReplyDefersAndEndsTheSession()
    {
        using var h = Ready(Options(), [], To(Message, "a@x.net"));
        h.Take();
        h.Reply("250-ok\r\n251 changed code\r\n");
        var o = Assert.Single(h.Work.Only());
        Assert.Equal((OutcomeKind.Deferred, false), (o.Kind, o.PossiblyDelivered));
        var end = h.Work.End();
        Assert.Equal(SessionEnd.Broken, end.End);
        Assert.Contains("multi-line reply changes its code", end.Reason);
        Assert.True(h.Connection.IsClosed);
    }

    [Fact]
    public void A421InTheMiddleDefersWithItsWordsAndClosesWithoutQuit()
    {
        using var h = Ready(Options(), [], To(Message, "a@x.net"));
        h.Take();
        h.Reply("250 ok\r\n");
        h.Take();
        h.Reply("421 4.3.2 shutting down\r\n");
        Assert.Equal("", h.Take());
        var o = Assert.Single(h.Work.Only());
        Assert.Equal((OutcomeKind.Deferred, (ushort)421, "421 4.3.2 shutting down"), (o.Kind, o.Code, o.Reply));
        Assert.Equal(SessionEnd.Broken, h.Work.End().End);
        Assert.True(h.Connection.IsClosed);
    }
}
