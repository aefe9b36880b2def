// --verbose at the handler: each command line is logged as the session parses it (DATA and every pipelined
// command included), and message text never is (README: message text stays out of the log), however the
// client's bytes are split into reads. These failed before the session reported commands itself: the
// handler logged whole reads, judged by the state after them.
using System.Text.RegularExpressions;

namespace EdgeMta.Server.Tests;

public sealed partial class VerboseLogTests : IDisposable
{
    private readonly ServerHarness _server = new(verbose: true);

    public void Dispose() => _server.Dispose();

    /// <summary>The `in=` values of the command lines, in order.</summary>
    private static List<string> Commands(string log) =>
        [.. CommandLine().Matches(log).Select(m => m.Groups[1].Value)];

    [GeneratedRegex(@"^\S+ 30 command conn=\d+ in=(\S*)$", RegexOptions.Multiline)]
    private static partial Regex CommandLine();

    private static void Delivered(InMemoryConnection c) =>
        Assert.True(c.WaitFor(x => x.Replies.Contains("250 2.0.0 OK queued as "), ServerHarness.Bound), c.Replies);

    [Fact]
    public void APipelinedMailRcptDataIsLoggedCommandByCommandDataIncluded()
    {
        InMemoryConnection c = _server.Transport.Connect();
        c.Send("EHLO client.example\r\n");
        c.Send("MAIL FROM:<sender@example.org>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n"); // one read, as Postfix sends it
        c.Send("Subject: x\r\n\r\nbody\r\n.\r\n");
        Delivered(c);
        c.Send("QUIT\r\n");
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound));
        Assert.Equal(["EHLO%20client.example", "MAIL%20FROM:<sender@example.org>", "RCPT%20TO:<rcpt@example.com>", "DATA", "QUIT"],
            Commands(_server.LogText()));
    }

    [Fact]
    public void ABdatChunkSpreadOverReadsIsLoggedAsItsCommandLineAlone()
    {
        InMemoryConnection c = _server.OpenTransaction();
        string evil = "QUIT\r\nMAIL FROM:<evil@x.test>\r\n";
        c.Send($"BDAT {evil.Length * 3} LAST\r\n{evil}");
        c.Send(evil); // reads after the first one inside the chunk used to be logged as commands
        c.Send(evil);
        Delivered(c);
        c.Send("QUIT\r\n");
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound));
        string log = _server.LogText();
        Assert.DoesNotContain("evil", log);
        Assert.Equal(["EHLO%20client.example", "MAIL%20FROM:<sender@example.org>", "RCPT%20TO:<rcpt@example.com>",
            $"BDAT%20{evil.Length * 3}%20LAST", "QUIT"], Commands(log));
    }

    [Fact]
    public void TheTailOfAnOversizeDataBodyIsNotLogged()
    {
        InMemoryConnection c = _server.OpenTransaction();
        c.Send("DATA\r\n");
        c.Send(new string('x', 1 << 16) + "\r\n"); // over --max-message-size (32 KiB here)
        c.Send("RSET-in-the-tail\r\nMAIL FROM:<tail@x.test>\r\n.\r\n");
        Assert.Contains("552 5.3.4", c.TakeReplies());
        string log = _server.LogText();
        Assert.DoesNotContain("tail", log);
        Assert.DoesNotContain("xxxx", log);
        Assert.Equal("DATA", Commands(log)[^1]);
    }

    // Found with real senders: during a shutdown, a QUIT pipelined right after `BDAT ... LAST` got 421 4.3.2
    // instead of 221 (RFC 5321 §4.1.1.10), here through the real commit on the spool's flusher thread.
    [Fact]
    public void DuringAShutdownAQuitPipelinedAfterBdatLastIsAnswered221()
    {
        InMemoryConnection c = _server.OpenTransaction();
        c.Send("BDAT 5\r\nhello");
        Assert.Equal("250 2.0.0 Ok: 5 octets received\r\n", c.TakeReplies());
        _server.Transport.Shutdown();
        Assert.False(c.IsClosed, "a BDAT transaction may finish during a shutdown");
        c.Send("BDAT 6 LAST\r\n worldQUIT\r\n");
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound), c.Replies);
        Assert.Matches(@"^250 2\.0\.0 OK queued as \S+\r\n221 2\.0\.0 mx\.example closing connection\r\n$", c.TakeReplies());
    }

    [Fact]
    public void DuringAShutdownAnIdleSessionAfterItsMessageIsSent421()
    {
        InMemoryConnection c = _server.OpenTransaction();
        c.Send("BDAT 5\r\nhello");
        c.TakeReplies();
        _server.Transport.Shutdown();
        c.Send("BDAT 1 LAST\r\n!");
        Assert.True(c.WaitFor(x => x.IsClosed, ServerHarness.Bound), c.Replies);
        Assert.Matches(@"^250 2\.0\.0 OK queued as \S+\r\n421 4\.3\.2 mx\.example Service shutting down\r\n$", c.TakeReplies());
    }
}
