// Replies by code, counted on their way out (ReplyCountingWriter), and the accepted-message histogram.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Server;
using EdgeMta.TestKit;

namespace EdgeMta.Metrics.Tests;

public class ReplyCountingTests
{
    private static (SessionCounters Counters, ReplyCountingWriter Writer, ArrayBufferWriter<byte> Output) Make()
    {
        var counters = new SessionCounters();
        var writer = new ReplyCountingWriter(counters);
        var output = new ArrayBufferWriter<byte>();
        writer.Reset();
        writer.Over(output);
        return (counters, writer, output);
    }

    [Fact]
    public void AMultiLineReplyCountsOnceByItsLastLineAndPassesThroughUnchanged()
    {
        var (counters, writer, output) = Make();
        const string text = "250-foo.com greets bar.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
        writer.Write(Encoding.ASCII.GetBytes(text));
        Assert.Equal(text, Encoding.ASCII.GetString(output.WrittenSpan));
        Assert.Equal(1, counters.Replies(250));
        Assert.Equal(1, counters.Replies(354));
    }

    [Fact]
    public void AReplyWrittenInPiecesCountsOnce()
    {
        var (counters, writer, _) = Make();
        foreach (string piece in new[] { "2", "5", "0 2.0.0 Ok: queued as ", "0123456789ABCDEF", "\r", "\n", "55", "0-x\r\n55", "0 y\r\n" })
        {
            writer.Write(Encoding.ASCII.GetBytes(piece));
        }
        Assert.Equal(1, counters.Replies(250));
        Assert.Equal(1, counters.Replies(550));
    }

    [Fact]
    public void ACodeWithNoTextIsAReply()
    {
        var (counters, writer, _) = Make();
        writer.Write("221\r\n421\n"u8);
        Assert.Equal(1, counters.Replies(221));
        Assert.Equal(1, counters.Replies(421));
    }

    [Fact]
    public void LinesThatAreNotRepliesAreNotCounted()
    {
        var (counters, writer, _) = Make();
        writer.Write("hello world\r\n2x0 no\r\n25 short\r\n999 out of range\r\n150 too low\r\n\r\n250x\r\n"u8);
        for (int code = SessionCounters.LowestCode; code <= SessionCounters.HighestCode; code++)
        {
            Assert.Equal(0, counters.Replies(code));
        }
        Assert.Equal(0, counters.Replies(999));
    }

    [Fact]
    public void AcceptedMessagesFallInPostfixExportersBucketsWithTheBoundInclusive()
    {
        var counters = new SessionCounters();
        foreach (long size in new long[] { 1, 1000, 1001, 10_000, 999_999, 1_000_000_000, 1_000_000_001 })
        {
            counters.MessageAccepted(size);
        }
        Span<long> buckets = stackalloc long[SessionCounters.MessageSizeBucketBounds.Length + 1];
        counters.ReadMessageSizeBuckets(buckets);
        Assert.Equal([2, 2, 0, 1, 0, 0, 1, 1], buckets.ToArray());
        Assert.Equal(7, counters.MessagesAccepted);
        Assert.Equal(1 + 1000 + 1001 + 10_000 + 999_999 + 1_000_000_000 + 1_000_000_001L, counters.AcceptedBytes);
    }

    [Fact]
    public void AWarmSessionWithCountersOnBothSidesAllocatesNothing()
    {
        var counters = new SessionCounters();
        var commands = new CommandCounters();
        var writer = new ReplyCountingWriter(counters);
        var session = new SmtpSession(new SmtpSessionOptions { HostName = "foo.com", Commands = commands }, RecipientDirectory.Sink, TimeProvider.System);
        var store = new InMemoryMessageStore(keepMessages: false);
        var output = new ArrayBufferWriter<byte>(1 << 16);
        byte[] address = "192.0.2.1"u8.ToArray();
        byte[] message = Encoding.ASCII.GetBytes("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
        byte[] text = Encoding.ASCII.GetBytes("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        void Run()
        {
            output.ResetWrittenCount();
            writer.Reset();
            IBufferWriter<byte> o = writer.Over(output);
            session.Reset();
            session.Start(new ClientInfo(address), store, o);
            session.Process("EHLO bar.example\r\n"u8, o, out _);
            session.Process(message, o, out _);
            session.Process(text, o, out int consumed);
            session.CompleteMessage(store.Commit(), o);
            session.Process(text.AsSpan(consumed), o, out _);
        }
        Run();
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) Run();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(12, counters.Replies(220));
        Assert.Equal(12 * 4, counters.Replies(250)); // EHLO, MAIL, RCPT, the queued message
        Assert.Equal(12, counters.Replies(354));
        Assert.Equal(12, counters.Replies(221));
        Assert.Equal(12, commands[SmtpVerb.Quit]);
    }
}
