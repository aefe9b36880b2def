// Contract: the notice's header, its three parts and every report field, read back with MimeSplitter
// (docs/DELIVERY.md "Bounces"; RFC 3464 §2.2, §2.3; RFC 6522; RFC 6533).

using System.Text;
using static EdgeMta.Delivery.Tests.BounceHarness;

namespace EdgeMta.Delivery.Tests;

public sealed class BounceComposerTests
{
    [Fact]
    public void FailureNoticeHasEveryHeaderFieldTheDocumentNames()
    {
        byte[] message = Message(300);
        ReadNotice n = Compose(Envelope(), message, Failed());

        Assert.Equal("MAILER-DAEMON@" + Host, n.Top.Field("From"));
        Assert.Equal("<alice@example.org>", n.Top.Field("To"));
        Assert.Equal("Undelivered Mail Returned to Sender", n.Top.Field("Subject"));
        // RFC 5322 §3.3 date-time of the clock's instant.
        Assert.Equal("Sun, 06 Dec 2026 20:34:41 +0000", n.Top.Field("Date"));
        Assert.Equal("<" + MessageId + ">", n.Top.Field("Message-ID"));
        Assert.Equal("auto-replied", n.Top.Field("Auto-Submitted"));
        Assert.Equal("1.0", n.Top.Field("MIME-Version"));
        string contentType = n.Top.Field("Content-Type")!;
        Assert.StartsWith("multipart/report; report-type=delivery-status;", contentType);
        Assert.Contains("boundary=\"" + n.Boundary + "\"", contentType);
    }

    [Fact]
    public void PartsAreWordsThenReportThenTheWholeMessage()
    {
        byte[] message = Message(300);
        ReadNotice n = Compose(Envelope(), message, Failed());

        Assert.Equal("text/plain; charset=us-ascii", n.Words.Field("Content-Type"));
        Assert.Contains("<bob@example.com>: failed", n.Words.BodyText);
        Assert.Contains("host relay.example.net said: 550 5.1.1 <bob@example.com>: no such user", n.Words.BodyText);
        Assert.Equal("message/delivery-status", n.Report.Field("Content-Type"));
        Assert.Equal("message/rfc822", n.Returned.Field("Content-Type"));
        Assert.Null(n.Returned.Field("Content-Transfer-Encoding"));
        Assert.Equal(message, n.Returned.Body);
    }

    [Fact]
    public void ReportHasPerMessageAndPerRecipientFields()
    {
        ReadNotice n = Compose(Envelope(), Message(300), Failed());
        List<List<KeyValuePair<string, string>>> groups = n.Groups;
        Assert.Equal(2, groups.Count);

        Assert.Equal("dns; " + Host, Value(groups[0], "Reporting-MTA"));
        Assert.Equal("Sat, 05 Dec 2026 09:05:00 -0500", Value(groups[0], "Arrival-Date"));
        Assert.Null(Value(groups[0], "Original-Envelope-Id"));
        Assert.Equal(2, groups[0].Count);

        List<KeyValuePair<string, string>> r = groups[1];
        Assert.Null(Value(r, "Original-Recipient"));
        Assert.Equal("rfc822; bob@example.com", Value(r, "Final-Recipient"));
        Assert.Equal("failed", Value(r, "Action"));
        Assert.Equal("5.1.1", Value(r, "Status"));
        Assert.Equal("dns; relay.example.net", Value(r, "Remote-MTA"));
        Assert.Equal("smtp; 550 5.1.1 <bob@example.com>: no such user", Value(r, "Diagnostic-Code"));
        Assert.Equal("Sun, 06 Dec 2026 20:33:41 +0000", Value(r, "Last-Attempt-Date"));
        Assert.Equal(6, r.Count);
    }

    [Fact]
    public void EnvidAndOrcptAreWrittenDecodedFromXtext()
    {
        // RFC 3461 §4: "+2B" is "+", "+3D" is "=".
        ReadNotice n = Compose(
            Envelope(envid: "QQ314159+2Bx+3Dy"), Message(300), Failed(orcpt: "rfc822;bob+2Bold@example.com"));
        Assert.Equal("QQ314159+x=y", Value(n.Groups[0], "Original-Envelope-Id"));
        Assert.Equal("rfc822;bob+old@example.com", Value(n.Groups[1], "Original-Recipient"));
    }

    [Fact]
    public void NoReplyMeansNoRemoteMtaOrDiagnosticAndTheStatusInWords()
    {
        var expired = new BounceRecipient("bob@example.com", null, DsnAction.Failed, "4.4.7", null, null, Now);
        ReadNotice n = Compose(Envelope(), Message(300), expired);
        Assert.Null(Value(n.Groups[1], "Remote-MTA"));
        Assert.Null(Value(n.Groups[1], "Diagnostic-Code"));
        Assert.Equal("4.4.7", Value(n.Groups[1], "Status"));
        Assert.Contains("status 4.4.7", n.Words.BodyText);
    }

    [Fact]
    public void SeveralRecipientsEachGetAGroupInOrder()
    {
        ReadNotice n = Compose(
            Envelope(), Message(300), Failed("a@example.com"), Failed("b@example.com"), Failed("c@example.com"));
        Assert.Equal(4, n.Groups.Count);
        Assert.Equal("rfc822; a@example.com", Value(n.Groups[1], "Final-Recipient"));
        Assert.Equal("rfc822; b@example.com", Value(n.Groups[2], "Final-Recipient"));
        Assert.Equal("rfc822; c@example.com", Value(n.Groups[3], "Final-Recipient"));
    }

    [Fact]
    public void SmtpUtf8MailGetsTheGlobalReportAndUtf8Addresses()
    {
        BounceRecipient rcpt = Failed("josé@exemple.fr", reply: "550 5.1.1 José n'existe pas");
        ReadNotice n = Compose(Envelope(utf8: true, sender: "zoë@example.org"), Message(300), rcpt);
        Assert.Equal("message/global-delivery-status", n.Report.Field("Content-Type"));
        Assert.Equal("8bit", n.Report.Field("Content-Transfer-Encoding"));
        Assert.Equal("text/plain; charset=utf-8", n.Words.Field("Content-Type"));
        Assert.Equal("<zoë@example.org>", n.Top.Field("To"));
        // RFC 6533 §3: the "utf-8" address type for an address that is not ASCII.
        Assert.Equal("utf-8; josé@exemple.fr", Value(n.Groups[1], "Final-Recipient"));
        Assert.Equal("smtp; 550 5.1.1 José n'existe pas", Value(n.Groups[1], "Diagnostic-Code"));
    }

    [Fact]
    public void AsciiMailWithAnEightBitReplyGetsQuestionMarksNotRawOctets()
    {
        ReadNotice n = Compose(Envelope(), Message(300), Failed(reply: "550 5.1.1 Jos\u00e9\u0001 unknown"));
        Assert.Equal("smtp; 550 5.1.1 Jos?? unknown", Value(n.Groups[1], "Diagnostic-Code"));
        Assert.DoesNotContain(n.Raw[..n.Raw.AsSpan().IndexOf("Content-Description: Undelivered"u8)], b => b >= 0x80);
    }

    [Fact]
    public void DelayAndRelayNoticesHaveTheirOwnSubjectAndAction()
    {
        var delayed = new BounceRecipient("bob@example.com", null, DsnAction.Delayed, "4.4.1", null, null, Now);
        var relayed = new BounceRecipient("bob@example.com", null, DsnAction.Relayed, "2.0.0", null, null, Now);
        ReadNotice d = Compose(Envelope(), Message(300), delayed);
        ReadNotice r = Compose(Envelope(), Message(300), relayed);
        ReadNotice mixed = Compose(Envelope(), Message(300), delayed, Failed());
        Assert.Equal("Delayed Mail (still being retried)", d.Top.Field("Subject"));
        Assert.Equal("delayed", Value(d.Groups[1], "Action"));
        Assert.Equal("Successful Mail Delivery Report", r.Top.Field("Subject"));
        Assert.Equal("relayed", Value(r.Groups[1], "Action"));
        Assert.Equal("Undelivered Mail Returned to Sender", mixed.Top.Field("Subject"));
    }

    [Fact]
    public void MultiLineReplyBecomesOneDiagnosticLine()
    {
        ReadNotice n = Compose(
            Envelope(), Message(300), Failed(reply: "550-5.1.1 first line\r\n550 5.1.1 second line"));
        Assert.Equal("smtp; 550-5.1.1 first line 550 5.1.1 second line", Value(n.Groups[1], "Diagnostic-Code"));
    }

    [Fact]
    public void LongDiagnosticIsFoldedAndUnfoldsToTheReply()
    {
        var reply = new StringBuilder("550 5.7.1");
        for (int i = 0; reply.Length < 3000; i++)
        {
            reply.Append(" word").Append(i);
        }

        ReadNotice n = Compose(Envelope(), Message(300), Failed(reply: reply.ToString()));
        Assert.Equal("smtp; " + reply, Value(n.Groups[1], "Diagnostic-Code"));
        string report = n.Report.BodyText;
        int start = report.IndexOf("Diagnostic-Code:", StringComparison.Ordinal);
        int end = report.IndexOf("Last-Attempt-Date:", StringComparison.Ordinal);
        string[] lines = report[start..end].Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 30);
        foreach (string line in lines)
        {
            // RFC 5322 §2.1.1: folded to 78 where the words allow it.
            Assert.True(Encoding.UTF8.GetByteCount(line) <= 78, line);
        }
    }

    [Fact]
    public void AReplyWithNoSpacesStillMakesNoLongLine()
    {
        string word = new('z', 5000);
        ReadNotice n = Compose(Envelope(), Message(300), Failed(reply: "550 " + word));
        // AssertLines in Compose checked every line is under 998; the octets all arrive.
        string diagnostic = Value(n.Groups[1], "Diagnostic-Code")!;
        Assert.Equal(5000, diagnostic.Count(c => c == 'z'));
    }
}
