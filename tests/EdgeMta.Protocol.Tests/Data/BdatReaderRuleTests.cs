// BDAT (RFC 3030): exactly the announced octets, nothing interpreted, the cap and the Received: count over
// all chunks of a message.
using System.Text;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol.Tests.Data;

public class BdatReaderRuleTests
{
    private static byte[] Bytes(string s) => Encoding.Latin1.GetBytes(s);

    [Fact]
    public void ReadTakesExactlyTheAnnouncedOctetsAndLeavesTheNextCommand()
    {
        var reader = new BdatReader(1000);
        var sink = new CollectingSink();
        reader.BeginChunk(7);
        Assert.Equal(DataStatus.NeedMore, reader.Read("a.\r"u8, sink, out int c1));
        Assert.Equal(3, c1);
        Assert.Equal(4, reader.ChunkRemaining);
        Assert.Equal(DataStatus.Complete, reader.Read("\n.\r\nBDAT 5 LAST\r\n"u8, sink, out int c2));
        Assert.Equal(4, c2);
        Assert.Equal("a.\r\n.\r\n", DataOutcome.Text(sink.Octets)); // no dot handling, no end-of-data sequence
        Assert.Equal(7, reader.Size);
    }

    [Fact]
    public void AZeroLengthChunkIsCompleteAtOnce()
    {
        var reader = new BdatReader(1000);
        reader.BeginChunk(0);
        Assert.Equal(DataStatus.Complete, reader.Read("QUIT\r\n"u8, new CollectingSink(), out int consumed));
        Assert.Equal(0, consumed);
    }

    [Fact]
    public void ReceivedHeaderCountFollowsTheHeaderSectionAcrossChunks()
    {
        byte[] message = Bytes("Received: a\r\nreceived: b\r\n\tReceived: folded\r\nSubject: s\r\nRECEIVED: c\r\n\r\nReceived: body\r\n");
        for (int cut = 0; cut <= message.Length; cut++)
        {
            var reader = new BdatReader(long.MaxValue);
            DataOutcome o = DataFeeding.FeedBdat(reader, [message[..cut], message[cut..]], piece: 5);
            Assert.Equal(3, o.ReceivedHeaderCount);
            Assert.Equal(DataOutcome.Text(message), o.Output);
        }
    }

    [Fact]
    public void SizeCapHoldsAcrossChunksAtExactlyTheLimitAndOneOver()
    {
        byte[] first = Bytes("Subject: x\r\n\r\n");
        byte[] second = Bytes("0123456789");
        long total = first.Length + second.Length;

        DataOutcome exact = DataFeeding.FeedBdat(new BdatReader(total), [first, second], piece: 4);
        Assert.False(exact.OverSize);
        Assert.Equal(total, exact.Output.Length);

        DataOutcome over = DataFeeding.FeedBdat(new BdatReader(total - 1), [first, second], piece: 4);
        Assert.True(over.OverSize);
        Assert.Equal(total, over.Size);
        Assert.Equal(DataOutcome.Text([.. first, .. second[..^1]]), over.Output);
    }

    [Fact]
    public void ResetStartsANewMessage()
    {
        var reader = new BdatReader(3);
        reader.BeginChunk(13);
        reader.Read("Received: x\r\n"u8, new CollectingSink(), out _);
        Assert.Equal((13L, true, 1), (reader.Size, reader.OverSize, reader.ReceivedHeaderCount));
        reader.Reset();
        Assert.Equal((0L, false, 0, 0L), (reader.Size, reader.OverSize, reader.ReceivedHeaderCount, reader.ChunkRemaining));
    }
}
