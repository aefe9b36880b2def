// One test per rule of PROTOCOL.md "Message data rules" and RFC 5321 §4.5.2, each named as the sentence it
// checks. The reference comparison (DataReaderMatchesReferenceTests) covers the combinations.
using System.Text;
using EdgeMta.Protocol.Data;
using EdgeMta.TestKit;

namespace EdgeMta.Protocol.Tests.Data;

public class DataReaderRuleTests
{
    private static byte[] Bytes(string s) => Encoding.Latin1.GetBytes(s);

    [Fact]
    public void ReadPassesTheTextWithItsLastCrLfAndStopsJustAfterTheTerminator()
    {
        DataOutcome o = DataFeeding.Feed("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
        Assert.Equal(DataStatus.Complete, o.Status);
        Assert.Equal("Subject: x\r\n\r\nhello\r\n", o.Output);
        Assert.Equal("Subject: x\r\n\r\nhello\r\n.\r\n".Length, o.Consumed);
        Assert.Equal(o.Output.Length, o.Size);
    }

    [Fact]
    public void ReadEndsAnEmptyMessageOnADotLineAtTheVeryStart()
    {
        DataOutcome o = DataFeeding.Feed(".\r\nQUIT\r\n");
        Assert.Equal(DataStatus.Complete, o.Status);
        Assert.Equal(3, o.Consumed);
        Assert.Equal("", o.Output);
        Assert.Equal(0, o.Size);
    }

    [Theory]
    [InlineData("..x\r\n.\r\n", ".x\r\n")]
    [InlineData("..\r\n.\r\n", ".\r\n")]
    [InlineData("...\r\n.\r\n", "..\r\n")]
    [InlineData("a\r\n.b.\r\n.\r\n", "a\r\nb.\r\n")]
    [InlineData("a.b\r\n..\r\n.\r\n", "a.b\r\n.\r\n")]
    public void ReadRemovesTheFirstDotOfEveryLineThatIsNotTheTerminator(string input, string text)
    {
        DataOutcome o = DataFeeding.Feed(input);
        Assert.Equal(DataStatus.Complete, o.Status);
        Assert.Equal(text, o.Output);
        Assert.Equal(text.Length, o.Size);
        Assert.False(o.SawBareNewline);
    }

    [Fact]
    public void ReadFindsTheTerminatorSplitAtEveryOctetIntoTwoAndThreeChunks()
    {
        byte[] input = Bytes("line one\r\n..two\r\n.\r\nQUIT\r\n");
        int end = "line one\r\n..two\r\n.\r\n".Length;
        for (int a = 0; a <= input.Length; a++)
        {
            for (int b = a; b <= input.Length; b++)
            {
                var reader = new DataReader(1000, BareNewlinePolicy.Reject);
                DataOutcome o = DataFeeding.Feed(reader, input, [a, b - a]);
                Assert.Equal(DataStatus.Complete, o.Status);
                Assert.Equal(end, o.Consumed);
                Assert.Equal("line one\r\n.two\r\n", o.Output);
            }
        }
    }

    [Fact]
    public void ReadConsumesEveryOctetAndCarriesTheStateWhenTheTerminatorHasNotArrived()
    {
        var reader = new DataReader(1000, BareNewlinePolicy.Reject);
        var sink = new CollectingSink();
        Assert.Equal(DataStatus.NeedMore, reader.Read("abc\r\n."u8, sink, out int c1));
        Assert.Equal(6, c1);
        Assert.Equal(DataStatus.NeedMore, reader.Read("\r"u8, sink, out int c2));
        Assert.Equal(1, c2);
        Assert.Equal(DataStatus.Complete, reader.Read("\nRSET\r\n"u8, sink, out int c3));
        Assert.Equal(1, c3);
        Assert.Equal("abc\r\n", DataOutcome.Text(sink.Octets));
    }

    // Each smuggling sequence between "a" and "b\r\n.\r\n": none of them ends the data; only the real
    // terminator at the end does. Expected text under Reject (as sent, unstuffed) and under Normalize.
    [Theory]
    [InlineData("\n.\n", "a\n.\nb\r\n", "a\r\n.\r\nb\r\n")]
    [InlineData("\n.\r\n", "a\n.\r\nb\r\n", "a\r\n.\r\nb\r\n")]
    [InlineData("\r\n.\n", "a\r\n\nb\r\n", "a\r\n\r\nb\r\n")]
    [InlineData("\r.\r", "a\r.\rb\r\n", "a\r\n.\r\nb\r\n")]
    [InlineData("\r.\n", "a\r.\nb\r\n", "a\r\n.\r\nb\r\n")]
    [InlineData("\r\n.\r", "a\r\n\rb\r\n", "a\r\n\r\nb\r\n")]
    [InlineData("\r\n.\rX", "a\r\n\rXb\r\n", "a\r\n\r\nXb\r\n")]
    [InlineData("\r\n.\r\r\n", "a\r\n\r\r\nb\r\n", "a\r\n\r\n\r\nb\r\n")]
    [InlineData("\n.\r", "a\n.\rb\r\n", "a\r\n.\r\nb\r\n")]
    public void ReadNeverEndsDataOnASequenceWithABareCrOrLf(string smuggled, string rejectText, string normalizedText)
    {
        string input = "a" + smuggled + "b\r\n.\r\nQUIT\r\n";
        int end = input.Length - "QUIT\r\n".Length;
        foreach ((BareNewlinePolicy policy, string text) in new[] { (BareNewlinePolicy.Reject, rejectText), (BareNewlinePolicy.Normalize, normalizedText) })
        {
            DataOutcome o = DataFeeding.Feed(input, policy: policy);
            Assert.Equal(DataStatus.Complete, o.Status);
            Assert.Equal(end, o.Consumed);
            Assert.Equal(text, o.Output);
            Assert.True(o.SawBareNewline);
            Assert.Equal(text.Length, o.Size);
        }
    }

    [Theory]
    [InlineData("a\r\r\n.\r\n", "a\r\r\n", "a\r\n\r\n")]
    [InlineData("a\n\r\n.\r\n", "a\n\r\n", "a\r\n\r\n")]
    public void ReadEndsDataOnARealCrLfDotCrLfEvenAfterABareNewline(string input, string rejectText, string normalizedText)
    {
        DataOutcome reject = DataFeeding.Feed(input + "QUIT\r\n");
        DataOutcome normalize = DataFeeding.Feed(input + "QUIT\r\n", policy: BareNewlinePolicy.Normalize);
        Assert.Equal((DataStatus.Complete, input.Length, rejectText, true), (reject.Status, reject.Consumed, reject.Output, reject.SawBareNewline));
        Assert.Equal((DataStatus.Complete, input.Length, normalizedText, true), (normalize.Status, normalize.Consumed, normalize.Output, normalize.SawBareNewline));
    }

    [Fact]
    public void NormalizeDoesNotStartALineAfterANormalisedNewlineSoItsDotStays()
    {
        // The documented rule: only a CRLF the client sent starts a line, for unstuffing as for the terminator.
        DataOutcome o = DataFeeding.Feed("a\n..b\r\n.\r\n", policy: BareNewlinePolicy.Normalize);
        Assert.Equal("a\r\n..b\r\n", o.Output);
        DataOutcome cr = DataFeeding.Feed("a\r..b\r\n.\r\n", policy: BareNewlinePolicy.Normalize);
        Assert.Equal("a\r\n..b\r\n", cr.Output);
    }

    [Fact]
    public void ReadLeavesBareNewlinesUnflaggedInACleanMessage()
    {
        DataOutcome o = DataFeeding.Feed("a\r\n\r\n..\r\nb\r\n.\r\n");
        Assert.False(o.SawBareNewline);
    }

    [Fact]
    public void ReadSendsAWholeMessageOfExactlyTheCapAndFlagsNothing()
    {
        string text = "Subject: x\r\n\r\n" + new string('z', 100) + "\r\n";
        DataOutcome o = DataFeeding.Feed(text + ".\r\n", max: text.Length);
        Assert.Equal(text, o.Output);
        Assert.False(o.OverSize);
        Assert.Equal(text.Length, o.Size);
    }

    [Fact]
    public void ReadSendsOnlyTheCapAndReadsOnToTheEndOfAMessageOneOctetOver()
    {
        string text = "Subject: x\r\n\r\n" + new string('z', 100) + "\r\n";
        byte[] input = Bytes(text + ".\r\nQUIT\r\n");
        for (int split = 0; split <= input.Length; split++)
        {
            DataOutcome o = DataFeeding.Feed(new DataReader(text.Length - 1, BareNewlinePolicy.Reject), input, [split]);
            Assert.Equal(text[..^1], o.Output);
            Assert.True(o.OverSize);
            Assert.Equal(text.Length, o.Size);
            Assert.Equal(DataStatus.Complete, o.Status);
            Assert.Equal(text.Length + 3, o.Consumed);
        }
    }

    [Fact]
    public void SizeCountsOctetsAfterUnstuffingAndNormalising()
    {
        Assert.Equal(4, DataFeeding.Feed("..x\r\n.\r\n").Size);
        Assert.Equal(6, DataFeeding.Feed("x\ny\r\n.\r\n", policy: BareNewlinePolicy.Normalize).Size);
        Assert.Equal(5, DataFeeding.Feed("x\ny\r\n.\r\n", policy: BareNewlinePolicy.Reject).Size);
    }

    [Fact]
    public void ReceivedHeaderCountCountsReceivedLinesOfTheHeaderSectionInAnyCase()
    {
        string message = "Received: from a\r\n" +
                         "received: from b\r\n" +
                         "\tReceived: a continuation line\r\n" +
                         " received: another\r\n" +
                         "RECEIVED:c\r\n" +
                         "X-Received: no\r\n" +
                         "Received : no, white space before the colon\r\n" +
                         "Received\u001a no, not a colon\r\n" +
                         "..Received: no, a dot stays after unstuffing\r\n" +
                         ".Received: yes, unstuffed\r\n" +
                         "\r\n" +
                         "Received: in the body, not counted\r\n" +
                         ".\r\n";
        byte[] input = Bytes(message);
        for (int split = 0; split <= input.Length; split++)
        {
            DataOutcome o = DataFeeding.Feed(new DataReader(long.MaxValue, BareNewlinePolicy.Reject), input, [split]);
            Assert.Equal(4, o.ReceivedHeaderCount);
        }
    }

    [Fact]
    public void ReceivedHeaderCountSeesMoreThanAHundredReceivedLinesAcrossManyReads()
    {
        var sb = new StringBuilder();
        for (int k = 0; k < 150; k++)
        {
            sb.Append("Received: from relay").Append(k).Append(".example (192.0.2.").Append(k).Append(") by next.example\r\n");
        }

        sb.Append("\r\nbody\r\n.\r\n");
        var reader = new DataReader(long.MaxValue, BareNewlinePolicy.Reject);
        DataOutcome o = DataFeeding.Feed(reader, Bytes(sb.ToString()), Enumerable.Repeat(97, 200));
        Assert.Equal(150, o.ReceivedHeaderCount);
    }

    [Theory]
    [InlineData(997, 0)]
    [InlineData(998, 1)]
    [InlineData(5000, 1)]
    public void LongLineCountCountsLinesOfMoreThanAThousandOctetsWithTheirCrLf(int octets, int longLines)
    {
        // "x" + octets + CRLF: 998 octets of "y" make a line of 1001.
        byte[] input = Bytes("Subject: long\r\n\r\nx" + new string('y', octets) + "\r\nshort\r\n.\r\n");
        for (int split = 0; split <= input.Length; split += 7)
        {
            DataOutcome o = DataFeeding.Feed(new DataReader(long.MaxValue, BareNewlinePolicy.Reject), input, [split]);
            Assert.Equal(longLines, o.LongLineCount);
        }
    }

    [Fact]
    public void ReadPassesTextWithoutLineLeadingDotsInOneWrite()
    {
        var sb = new StringBuilder("Subject: one run\r\n\r\n");
        while (sb.Length < 10_000)
        {
            sb.Append("The quick brown fox jumps over the lazy dog; the dog. does not mind it.\r\n");
        }

        var reader = new DataReader(long.MaxValue, BareNewlinePolicy.Reject);
        var sink = new CollectingSink();
        Assert.Equal(DataStatus.Complete, reader.Read(Bytes(sb + ".\r\n"), sink, out _));
        Assert.Equal(1, sink.Writes);

        reader.Reset();
        var stuffed = new CollectingSink();
        Assert.Equal(DataStatus.Complete, reader.Read(Bytes(sb + "..stuffed\r\n" + sb + ".\r\n"), stuffed, out _));
        Assert.Equal(2, stuffed.Writes);
    }

    [Fact]
    public void ReadAfterCompleteThrowsUntilResetAndResetStartsAFreshMessage()
    {
        var reader = new DataReader(long.MaxValue, BareNewlinePolicy.Reject);
        var sink = new CollectingSink();
        Assert.Equal(DataStatus.Complete, reader.Read("Received: x\r\n\ra\r\n.\r\n"u8, sink, out _));
        Assert.True(reader.SawBareNewline);
        Assert.Throws<InvalidOperationException>(() => reader.Read("x"u8, sink, out _));

        reader.Reset();
        Assert.Equal((0L, false, false, 0, 0), (reader.Size, reader.OverSize, reader.SawBareNewline, reader.ReceivedHeaderCount, reader.LongLineCount));
        Assert.Equal(DataStatus.Complete, reader.Read(".\r\n"u8, sink, out int consumed));
        Assert.Equal(3, consumed);
    }

    [Fact]
    public void ReadAllocatesNothingPerCallOrPerMessage()
    {
        byte[] input = Bytes("Received: x\r\n\r\n" + string.Concat(Enumerable.Repeat("line of text\r\n..dot\r\nbare\n", 2000)) + "\r\n.\r\n");
        var reader = new DataReader(long.MaxValue, BareNewlinePolicy.Normalize);
        var sink = new DiscardingSink();
        // The JIT and tiering allocate while warming up; the reader must not, in any round.
        Assert.Equal(0, Allocations.SteadyStateBytes(() => Drain(reader, input, sink), runsPerRound: 20));
    }

    private static void Drain(DataReader reader, byte[] input, IMessageBodySink sink)
    {
        reader.Reset();
        int pos = 0;
        while (reader.Read(input.AsSpan(pos, Math.Min(1000, input.Length - pos)), sink, out int consumed) == DataStatus.NeedMore)
        {
            pos += consumed;
            Assert.True(pos < input.Length, "the message must end");
        }
    }

    private sealed class DiscardingSink : IMessageBodySink
    {
        public void Write(ReadOnlySpan<byte> octets)
        {
        }
    }
}
