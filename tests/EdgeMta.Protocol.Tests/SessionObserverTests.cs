// What a session reports to its observer (SessionObserver.cs): every command line as it is parsed, in
// order, pipelined or not; never message text (README: message text stays out of the log).
using System.Text;
using EdgeMta.Protocol;
using static EdgeMta.Protocol.Tests.StateTableTests;

namespace EdgeMta.Protocol.Tests;

public class SessionObserverTests
{
    /// <summary>Keeps every report as "Verb line".</summary>
    internal sealed class RecordingObserver : ISessionObserver
    {
        public List<string> Lines { get; } = [];

        public void OnCommand(SmtpVerb verb, ReadOnlySpan<byte> line) => Lines.Add($"{verb} {Encoding.Latin1.GetString(line)}");
    }

    private static (SessionDriver Driver, RecordingObserver Observer) Open()
    {
        var observer = new RecordingObserver();
        var d = new SessionDriver(Options, observer: observer);
        Assert.StartsWith("220 ", d.Start());
        return (d, observer);
    }

    [Fact]
    public void APipelinedMailRcptDataIsReportedCommandByCommandAndDataToo()
    {
        (SessionDriver d, RecordingObserver o) = Open();
        d.Send("EHLO bar.com\r\n");
        Assert.StartsWith("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354", d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nDATA\r\n"));
        d.Send("QUIT\r\nMAIL FROM:<evil@x.test>\r\n.\r\nQUIT\r\n");
        Assert.Equal(["Ehlo EHLO bar.com", "Mail MAIL FROM:<Smith@bar.com>", "Rcpt RCPT TO:<Jones@foo.com>", "Data DATA", "Quit QUIT"], o.Lines);
    }

    [Fact]
    public void ABdatChunkIsReportedAsItsCommandLineAloneWhateverItsOctetsSayAndHowTheyArrive()
    {
        (SessionDriver d, RecordingObserver o) = Open();
        d.Send("EHLO bar.com\r\n");
        d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\n");
        string body = "QUIT\r\nMAIL FROM:<evil@x.test>\r\n";
        d.Send($"BDAT {body.Length * 2} LAST\r\n{body}");
        Assert.StartsWith("250 2.0.0 OK queued as", d.Send(body)); // the chunk's second read holds command-like text
        d.Send("QUIT\r\n");
        Assert.Equal(["Ehlo EHLO bar.com", "Mail MAIL FROM:<Smith@bar.com>", "Rcpt RCPT TO:<Jones@foo.com>",
            "Bdat BDAT 62 LAST", "Quit QUIT"], o.Lines);
    }

    [Fact]
    public void AnOversizeDataBodyAndItsTailAreNeverReported()
    {
        var observer = new RecordingObserver();
        var d = new SessionDriver(new SmtpSessionOptions { HostName = "foo.com", MaxMessageSize = 64 }, observer: observer);
        d.Start();
        d.Send("EHLO bar.com\r\n");
        d.Send("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nDATA\r\n");
        d.Send(new string('x', 100) + "\r\nRSET\r\n");
        Assert.StartsWith("552 5.3.4", d.Send("NOOP-in-the-tail\r\n.\r\n"));
        Assert.Equal(["Ehlo EHLO bar.com", "Mail MAIL FROM:<Smith@bar.com>", "Rcpt RCPT TO:<Jones@foo.com>", "Data DATA"], observer.Lines);
    }

    [Fact]
    public void RefusedLinesAreReportedAsUnknownWithTheirText()
    {
        (SessionDriver d, RecordingObserver o) = Open();
        Assert.StartsWith("500", d.Send("FOO bar\r\n"));
        Assert.StartsWith("500", d.Send("NOOP\n"));
        Assert.Equal(["Unknown FOO bar", "Unknown NOOP"], o.Lines);
    }
}
