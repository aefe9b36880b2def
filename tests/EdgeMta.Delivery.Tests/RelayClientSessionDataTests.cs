// The message octets and the parameters carried on: dot-stuffing (RFC 5321 §4.5.2) and BDAT chunks (RFC 3030)
// byte for byte, writes of at most 64 KiB, DSN parameters only to a hop that offers DSN (RFC 3461), and the
// extensions a message needs (docs/DELIVERY.md: 5.6.7, 5.6.3, 5.3.4) decided before anything is sent.
using System.Text;
using EdgeMta.Delivery;
using static EdgeMta.Delivery.Tests.RelayHarness;

namespace EdgeMta.Delivery.Tests;

public class RelayClientSessionDataTests
{
    [Fact]
    public void DataIsDotStuffedAndEndedWithACrlfWhenItHasNone()
    {
        const string data = ".first\r\nSubject: a\r\n\r\n..two\r\nmid.dot\r\n.";
        using var h = Ready(Options(), ["PIPELINING"], To(data, "a@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        Assert.Equal("..first\r\nSubject: a\r\n\r\n...two\r\nmid.dot\r\n..\r\n.\r\n", h.Take());
    }

    [Fact]
    public void AnEmptyMessageIsOnlyTheFinalDot()
    {
        using var h = Ready(Options(), ["PIPELINING"], To("", "a@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        Assert.Equal(".\r\n", h.Take());
    }

    [Fact]
    public void ALargeMessageLeavesInBlocksOfAtMost64KiBAndUnstuffsToTheOriginal()
    {
        var random = new Random(7);
        var text = new StringBuilder();
        while (text.Length < 300_000)
        {
            // Lines of every length, many starting with a dot, so that block edges fall everywhere.
            text.Append(random.Next(3) == 0 ? "." : "").Append('x', random.Next(0, 2000)).Append("\r\n");
        }
        string data = text.ToString();
        using var h = Ready(Options(), ["PIPELINING"], To(data, "a@x.net"));
        h.Take();
        int before = h.Connection.Sends.Count;
        h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
        var blocks = h.Connection.Sends.Skip(before).ToList();
        Assert.True(blocks.Count >= 5, $"{blocks.Count} blocks");
        Assert.All(blocks, b => Assert.InRange(b.Length, 1, 64 * 1024));
        Assert.Equal(Stuff(data) + ".\r\n", string.Concat(blocks));
    }

    [Fact]
    public void BdatSendsChunksOfOneMebibyteEachAnswered()
    {
        string data = new string('a', 1024 * 1024) + "tail\r\n.x\r\n";
        using var h = Ready(Options(), ["CHUNKING", "PIPELINING"], To(data, "a@x.net"));
        // RFC 2920 with CHUNKING: MAIL and RCPT in one write, BDAT after their replies.
        Assert.Equal("MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@x.net>\r\n", h.Take());
        int before = h.Connection.Sends.Count;
        h.Reply("250 ok\r\n250 ok\r\n");
        var first = h.Connection.Sends.Skip(before).ToList();
        Assert.All(first, b => Assert.InRange(b.Length, 1, 64 * 1024));
        Assert.Equal("BDAT 1048576\r\n" + data[..(1024 * 1024)], string.Concat(first));
        h.Take();
        h.Reply("250 2.0.0 1048576 octets received\r\n");
        Assert.Equal("BDAT 10 LAST\r\ntail\r\n.x\r\n", h.Take());
        h.Reply("250 2.0.0 message ok\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        var o = Assert.Single(h.Work.Only());
        Assert.Equal((OutcomeKind.Delivered, "250 2.0.0 message ok"), (o.Kind, o.Reply));
    }

    [Fact]
    public void BdatOfAnEmptyMessageIsOneEmptyLastChunk()
    {
        using var h = Ready(Options(), ["CHUNKING"], To("", "a@x.net"));
        h.Take();
        h.Reply("250 ok\r\n");
        h.Take();
        h.Reply("250 ok\r\n");
        Assert.Equal("BDAT 0 LAST\r\n", h.Take());
    }

    [Fact]
    public void ARefusedBdatChunkDecidesTheAcceptedRecipientsAndTheNextTransactionResets()
    {
        string data = new string('b', 1024 * 1024 + 1);
        using var h = Ready(Options(), ["CHUNKING", "PIPELINING"], To(data, "a@x.net"), To("x\r\n", "b@x.net"));
        h.Take();
        h.Reply("250 ok\r\n250 ok\r\n");
        h.Take();
        h.Reply("552 5.3.4 too big\r\n");
        Assert.Equal("RSET\r\n", h.Take());
        Assert.Equal(OutcomeKind.Failed, Assert.Single(h.Work.Completed[0].Outcomes).Kind);
    }

    [Fact]
    public void DsnParametersAreCarriedToAHopThatOffersDsn()
    {
        var tx = Transaction("x\r\n", "s@example.com", "SIZE=999 BODY=8BITMIME RET=HDRS ENVID=abc AUTH=<>",
            ("a@x.net", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@x.net"));
        using var h = Ready(Options(), ["DSN", "8BITMIME", "SIZE"], tx);
        // SIZE is the octets sent (RFC 1870 §3), not what the sender said; AUTH= is for this hop only.
        Assert.Equal("MAIL FROM:<s@example.com> SIZE=3 BODY=8BITMIME RET=HDRS ENVID=abc\r\n", h.Take());
        h.Reply("250 ok\r\n");
        Assert.Equal("RCPT TO:<a@x.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@x.net\r\n", h.Take());
        h.Reply("250 ok\r\n");
        h.Reply("354 go\r\n");
        h.Reply("250 ok\r\n");
        Assert.False(Assert.Single(h.Work.Only()).RelayedWithoutDsn);
    }

    [Fact]
    public void WithoutDsnNothingIsCarriedAndNotifySuccessIsMarkedRelayed()
    {
        var tx = Transaction("x\r\n", "s@example.com", "RET=FULL ENVID=abc",
            ("a@x.net", "NOTIFY=FAILURE,success ORCPT=rfc822;a@x.net"), ("b@x.net", "NOTIFY=FAILURE"));
        using var h = Ready(Options(), ["PIPELINING"], tx);
        Assert.Equal("MAIL FROM:<s@example.com>\r\nRCPT TO:<a@x.net>\r\nRCPT TO:<b@x.net>\r\nDATA\r\n", h.Take());
        h.Reply("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n");
        var o = h.Work.Only();
        Assert.Equal([true, false], o.Select(x => x.RelayedWithoutDsn));
    }

    [Fact]
    public void TheNullSenderIsSentAsEmptyBrackets()
    {
        using var h = Ready(Options(), [], Transaction("x\r\n", "", "", ("a@x.net", "")));
        Assert.Equal("MAIL FROM:<>\r\n", h.Take());
    }

    [Theory]
    [InlineData("SMTPUTF8", new[] { "8BITMIME" }, "5.6.7")]
    [InlineData("BODY=BINARYMIME", new[] { "BINARYMIME", "8BITMIME" }, "5.6.3")]
    [InlineData("BODY=BINARYMIME", new[] { "CHUNKING" }, "5.6.3")]
    [InlineData("BODY=8BITMIME", new[] { "CHUNKING" }, "5.6.3")]
    [InlineData("", new[] { "SIZE 10" }, "5.3.4")]
    public void AMessageTheHopCannotTakeFailsWithoutBeingSent(string parameters, string[] extensions, string status)
    {
        var tx = Transaction("twenty octets long\r\n", "s@example.com", parameters, ("a@x.net", ""), ("b@x.net", ""));
        using var h = Ready(Options(), extensions, tx);
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.All(h.Work.Only(), o =>
        {
            Assert.Equal(OutcomeKind.Failed, o.Kind);
            Assert.Equal(status, o.Status.ToString());
            Assert.StartsWith(status, o.Reply);
            Assert.Equal(0, o.Code);
        });
    }

    [Fact]
    public void SmtpUtf8AndBinaryMimeGoToAHopThatOffersThem()
    {
        var tx = Transaction("x\r\n", "s@example.com", "SMTPUTF8 BODY=BINARYMIME", ("a@x.net", ""));
        using var h = Ready(Options(), ["SMTPUTF8", "BINARYMIME", "CHUNKING"], tx);
        Assert.Equal("MAIL FROM:<s@example.com> SMTPUTF8 BODY=BINARYMIME\r\n", h.Take());
    }

    /// <summary>The slow, obvious reference: a dot more at the start of every line that starts with one.</summary>
    private static string Stuff(string data)
    {
        var lines = data.Split("\r\n");
        var text = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) text.Append("\r\n");
            text.Append(lines[i].StartsWith('.') ? "." + lines[i] : lines[i]);
        }
        return text.ToString();
    }
}
