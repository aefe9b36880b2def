// The log writer (src/EdgeMta.Server/Logging/ServerLog.cs): a line is formatted with no lock held, so one
// abandoned half-way never stops another thread from logging; lines keep their format byte for byte
// (scripts and the end-to-end tests grep them); a line longer than the buffer is cut, still one line.
using System.Text;
using EdgeMta.Server.Logging;

namespace EdgeMta.Server.Tests;

public sealed class ServerLogTests
{
    private static readonly TimeSpan Bound = ServerHarness.Bound;

    private static string Text(MemoryStream stream) => Encoding.UTF8.GetString(stream.ToArray());

    [Fact]
    public void ALineAbandonedBeforeItsEndDoesNotStopAnotherThreadFromLogging()
    {
        var stream = new MemoryStream();
        var log = new ServerLog(stream, verbose: true, new FakeClock());
        // As when formatting throws between Begin and End: the line is never ended. Begin used to take the
        // log's lock and End to release it, so every other session that logged then waited forever.
        Assert.Throws<InvalidOperationException>((Action)(() =>
        {
            log.Begin(LogEvent.SessionOpened).Field("conn"u8, 1);
            throw new InvalidOperationException("formatting failed");
        }));
        var other = new Thread(() => log.Begin(LogEvent.SessionClosed).Field("conn"u8, 2).End()) { IsBackground = true };
        other.Start();
        Assert.True(other.Join(Bound), "another thread could not log after an abandoned line");
        log.Begin(LogEvent.SessionClosed).Field("conn"u8, 3).End(); // nor can the thread that abandoned it be stuck
        log.Dispose();
        Assert.Equal("2026-11-22T07:30:15.000Z 11 session-close conn=2\n2026-11-22T07:30:15.000Z 11 session-close conn=3\n", Text(stream));
    }

    [Fact]
    public void LinesKeepTheirFormatByteForByte()
    {
        var stream = new MemoryStream();
        var clock = new FakeClock();
        var log = new ServerLog(stream, verbose: true, clock);
        clock.Advance(TimeSpan.FromMilliseconds(1234));
        log.Begin(LogEvent.Command).Field("conn"u8, 7).Field("in"u8, "MAIL FROM:<a%b@example.org>\tx\u00e9"u8).End();
        log.Begin(LogEvent.MessageAccepted).Field("id"u8, "Q1"u8).Field("client"u8, "192.0.2.1"u8).Field("rcpts"u8, -2).End();
        log.Begin(LogEvent.TransportTrouble).Field("error"u8, new string('é', 100)).End();
        log.Begin((LogEvent)99).End();
        log.Dispose();
        Assert.Equal(
            "2026-11-22T07:30:16.234Z 30 command conn=7 in=MAIL%20FROM:<a%25b@example.org>%09x%C3%A9\n"
            + "2026-11-22T07:30:16.234Z 20 message-accepted id=Q1 client=192.0.2.1 rcpts=-2\n"
            + "2026-11-22T07:30:16.234Z 42 transport-trouble error=" + string.Concat(Enumerable.Repeat("%C3%A9", 80)) + "\n"
            + "2026-11-22T07:30:16.234Z 99 event\n",
            Text(stream));
    }

    [Fact]
    public void ALineLongerThanTheBufferIsCutAndStillEndsTheLine()
    {
        var stream = new MemoryStream();
        var log = new ServerLog(stream, verbose: true, new FakeClock());
        ServerLog.LineWriter line = log.Begin(LogEvent.Command);
        byte[] value = new byte[256];
        Array.Fill(value, (byte)'v');
        for (int i = 0; i < 40; i++) line = line.Field("k"u8, value); // about 10 KiB asked for
        line.End();
        log.Begin(LogEvent.Stopping).End();
        log.Dispose();
        string[] lines = Text(stream).Split('\n');
        Assert.Equal(3, lines.Length); // two lines and the empty rest after the last LF
        Assert.Equal(ServerLog.MaxLineLength - 1, lines[0].Length);
        Assert.EndsWith(" 50 stopping", lines[1]);
    }

    [Fact]
    public void ManyThreadsLoggingAtOnceNeverInterleaveWithinALine()
    {
        var stream = new MemoryStream();
        var log = new ServerLog(stream, verbose: true, new FakeClock());
        Thread[] writers = [.. Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (int i = 0; i < 2000; i++) log.Begin(LogEvent.Command).Field("conn"u8, t).Field("n"u8, i).End();
        }) { IsBackground = true })];
        foreach (Thread w in writers) w.Start();
        Assert.All(writers, w => Assert.True(w.Join(Bound)));
        log.Dispose();
        string[] lines = Text(stream).TrimEnd('\n').Split('\n');
        Assert.Equal(8000, lines.Length);
        Assert.All(lines, l => Assert.Matches(@"^2026-11-22T07:30:15\.000Z 30 command conn=[0-3] n=\d+$", l));
        for (int t = 0; t < 4; t++)
        {
            Assert.Equal(Enumerable.Range(0, 2000).Select(i => $"conn={t} n={i}"),
                lines.Where(l => l.Contains($"conn={t} ")).Select(l => l[(l.IndexOf("conn=", StringComparison.Ordinal))..]));
        }
    }

    [Fact]
    public void AHeldLogWritesNothingBeforeOpenThenTheFirstTextAheadOfItsLines()
    {
        var stream = new MemoryStream();
        var log = new ServerLog(stream, verbose: false, new FakeClock(), held: true);
        // A health check's session, served the moment the socket listens, before the host printed its line.
        log.Begin(LogEvent.SessionClosed).Field("conn"u8, 1).End();
        log.Flush(); // the writer thread's flush, or anyone's: still nothing
        Assert.Equal("", Text(stream));
        log.Open("listening on 127.0.0.1:25\n"u8);
        log.Begin(LogEvent.SessionClosed).Field("conn"u8, 2).End();
        log.Dispose();
        Assert.Equal("listening on 127.0.0.1:25\n2026-11-22T07:30:15.000Z 11 session-close conn=1\n"
            + "2026-11-22T07:30:15.000Z 11 session-close conn=2\n", Text(stream));
    }

    [Fact]
    public void AHeldLogNeverOpenedStillWritesItsLinesAtDispose()
    {
        var stream = new MemoryStream();
        var log = new ServerLog(stream, verbose: false, new FakeClock(), held: true);
        log.Begin(LogEvent.SpoolTrouble).Field("error"u8, "disk"u8).End(); // a start that failed before `listening on`
        log.Dispose();
        Assert.Equal("2026-11-22T07:30:15.000Z 41 spool-trouble error=disk\n", Text(stream));
    }
}
