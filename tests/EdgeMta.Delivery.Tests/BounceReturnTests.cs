// Contract: what the third part returns (docs/DELIVERY.md "Bounces": the whole message under RET=FULL, or with
// no RET up to 50,000 bytes; else the header as text/rfc822-headers, RFC 6522), how it is labelled (RFC 2045
// §6.2), and that the boundary never occurs inside any part (RFC 2046 §5.1.1).

using System.Text;
using static EdgeMta.Delivery.Tests.BounceHarness;

namespace EdgeMta.Delivery.Tests;

public sealed class BounceReturnTests
{
    [Fact]
    public void MessageOfExactlyTheLimitIsReturnedWhole()
    {
        byte[] message = Message(BounceComposer.FullReturnLimit);
        ReadNotice n = Compose(Envelope(), message, Failed());
        Assert.Equal("message/rfc822", n.Returned.Field("Content-Type"));
        Assert.Equal(message, n.Returned.Body);
    }

    [Fact]
    public void MessageOneByteOverTheLimitIsReturnedAsItsHeader()
    {
        byte[] message = Message(BounceComposer.FullReturnLimit + 1);
        ReadNotice n = Compose(Envelope(), message, Failed());
        Assert.Equal("text/rfc822-headers", n.Returned.Field("Content-Type"));
        int blank = message.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.Equal(message[..(blank + 2)], n.Returned.Body);
        Assert.True(n.Raw.Length < 2000);
    }

    [Fact]
    public void RetFullReturnsALargeMessageWhole()
    {
        byte[] message = Message(3 * BounceComposer.FullReturnLimit);
        ReadNotice n = Compose(Envelope(DsnReturn.Full), message, Failed());
        Assert.Equal("message/rfc822", n.Returned.Field("Content-Type"));
        Assert.Equal(message, n.Returned.Body);
    }

    [Fact]
    public void RetHdrsReturnsOnlyTheHeaderOfASmallMessage()
    {
        byte[] message = Message(300);
        ReadNotice n = Compose(Envelope(DsnReturn.Headers), message, Failed());
        Assert.Equal("text/rfc822-headers", n.Returned.Field("Content-Type"));
        Assert.Equal("From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hi\r\n", n.Returned.BodyText);
    }

    [Fact]
    public void EightBitMessageIsLabelledEightBitAndReturnedUnchanged()
    {
        byte[] message = Encoding.UTF8.GetBytes("Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n");
        ReadNotice n = Compose(Envelope(), message, Failed());
        Assert.Equal("8bit", n.Returned.Field("Content-Transfer-Encoding"));
        Assert.Equal(message, n.Returned.Body);
    }

    [Theory]
    [InlineData("Subject: a\r\n\r\nbare\nLF\r\n")]
    [InlineData("Subject: a\r\n\r\nNUL\0\r\n")]
    public void ContentThatIsNotCrlfTextIsLabelledBinary(string text)
    {
        Assert.Equal("binary", BounceComposer.TransferEncoding(Encoding.ASCII.GetBytes(text)));
    }

    [Fact]
    public void LineOver998OctetsIsBinaryAndAt998IsNot()
    {
        Assert.Null(BounceComposer.TransferEncoding(Encoding.ASCII.GetBytes(new string('a', 998) + "\r\n")));
        Assert.Equal("binary", BounceComposer.TransferEncoding(Encoding.ASCII.GetBytes(new string('a', 999) + "\r\n")));
    }

    [Fact]
    public void MessageWithoutFinalCrlfIsReturnedWhole()
    {
        byte[] message = Encoding.ASCII.GetBytes("Subject: a\r\n\r\nno newline at the end");
        ReadNotice n = Compose(Envelope(), message, Failed());
        Assert.Equal(message, n.Returned.Body);
    }

    [Fact]
    public void HeaderOfAMessageWithNoBodyIsTheWholeMessage()
    {
        byte[] message = Encoding.ASCII.GetBytes("Subject: a\r\nX: b\r\n");
        Assert.Equal(message, BounceComposer.HeaderOf(message).ToArray());
    }

    [Fact]
    public void BoundaryThatTheContentHoldsIsNotUsed()
    {
        // The boundary the composer picks for this clock, learnt from a first notice, is then planted in the
        // returned message as a delimiter line, a closing line and mid-line.
        string first = Compose(Envelope(), Message(300), Failed()).Boundary;
        byte[] hostile = Encoding.ASCII.GetBytes(
            "Subject: a\r\n\r\n--" + first + "\r\nx" + first + "y\r\n--" + first + "--\r\n");
        ReadNotice n = Compose(Envelope(), hostile, Failed());

        Assert.NotEqual(first, n.Boundary);
        Assert.DoesNotContain(n.Boundary, Encoding.ASCII.GetString(hostile), StringComparison.Ordinal);
        Assert.Equal(hostile, n.Returned.Body);
    }

    [Fact]
    public void BoundaryThatTheDiagnosticHoldsIsNotUsed()
    {
        string first = Compose(Envelope(), Message(300), Failed()).Boundary;
        ReadNotice n = Compose(Envelope(), Message(300), Failed(reply: "550 5.0.0 --" + first));
        Assert.NotEqual(first, n.Boundary);
        Assert.Equal("smtp; 550 5.0.0 --" + first, Value(n.Groups[1], "Diagnostic-Code"));
    }

    [Fact]
    public void BoundaryAvoidsManyPlantedCandidates()
    {
        // Plant the first candidate and guesses of the ones after it: whatever is chosen is absent.
        string first = Compose(Envelope(), Message(300), Failed()).Boundary;
        string stem = first[..first.LastIndexOf('_')];
        var text = new StringBuilder("Subject: a\r\n\r\n");
        for (int i = 0; i < 50; i++)
        {
            text.Append("--").Append(stem).Append('_').Append(i).Append("\r\n");
        }

        byte[] hostile = Encoding.ASCII.GetBytes(text.ToString());
        ReadNotice n = Compose(Envelope(), hostile, Failed());
        Assert.DoesNotContain(n.Boundary, text.ToString(), StringComparison.Ordinal);
        Assert.Equal(hostile, n.Returned.Body);
    }
}
