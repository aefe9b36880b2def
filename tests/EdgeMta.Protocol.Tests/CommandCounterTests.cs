// CommandCounters: one count per command line answered, by verb; message text never counts, whatever it holds.
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class CommandCounterTests
{
    private static SessionDriver Driver(CommandCounters counters) =>
        new(new SmtpSessionOptions { HostName = "foo.com", Commands = counters });

    [Fact]
    public void EachCommandLineCountsOnceByVerbWhateverItsReply()
    {
        var counters = new CommandCounters();
        var d = Driver(counters);
        d.Start();
        d.Send("EHLO bar.com\r\n");
        d.Send("RCPT TO:<Jones@foo.com>\r\n");   // out of sequence: 503, still a RCPT
        d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nRCPT TO:<Green@foo.com>\r\nNOOP\r\n");
        d.Send("FOO bar\r\n.\r\n");
        d.Send("STARTTLS\r\n");
        d.Send("QUIT\r\n");
        Assert.True(d.Closed);
        Assert.Equal(1, counters[SmtpVerb.Ehlo]);
        Assert.Equal(1, counters[SmtpVerb.Mail]);
        Assert.Equal(3, counters[SmtpVerb.Rcpt]);
        Assert.Equal(1, counters[SmtpVerb.Noop]);
        Assert.Equal(1, counters[SmtpVerb.Unknown]);
        Assert.Equal(1, counters[SmtpVerb.Dot]);
        Assert.Equal(1, counters[SmtpVerb.StartTls]); // 502 without a certificate, still a STARTTLS
        Assert.Equal(1, counters[SmtpVerb.Quit]);
        Assert.Equal(0, counters[SmtpVerb.Data]);
    }

    [Fact]
    public void MessageTextInDataAndBdatChunksIsNeverCountedAsCommands()
    {
        var counters = new CommandCounters();
        var d = Driver(counters);
        d.Start();
        d.Send("EHLO bar.com\r\n");
        d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nDATA\r\n");
        Assert.StartsWith("250 ", d.Send("Subject: x\r\n\r\nMAIL FROM:<evil@x.test>\r\nQUIT\r\n.\r\n"));
        const string chunk = "RCPT TO:<a@b>\r\nQUIT\r\n"; // 21 octets of message text that look like commands
        d.Send($"MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nBDAT {chunk.Length} LAST\r\n{chunk}QUIT\r\n");
        Assert.True(d.Closed);
        Assert.Equal(2, counters[SmtpVerb.Mail]);
        Assert.Equal(2, counters[SmtpVerb.Rcpt]);
        Assert.Equal(1, counters[SmtpVerb.Data]);
        Assert.Equal(1, counters[SmtpVerb.Bdat]);
        Assert.Equal(1, counters[SmtpVerb.Quit]);
        Assert.Equal(0, counters[SmtpVerb.Unknown]);
        Assert.Equal(2, d.Store.Messages.Count);
    }

    [Fact]
    public void ALineTooLongCountsAsUnknownOnceWhetherItCameWholeOrInPieces()
    {
        var counters = new CommandCounters();
        var d = Driver(counters);
        d.Start();
        string longLine = "MAIL FROM:<" + new string('a', 2000) + "@bar.com>\r\n";
        d.Send("EHLO bar.com\r\n");
        d.Send(longLine[..700]);
        d.Send(longLine[700..]);
        d.Send(longLine);
        Assert.Equal(2, counters[SmtpVerb.Unknown]);
        Assert.Equal(0, counters[SmtpVerb.Mail]);
    }
}
