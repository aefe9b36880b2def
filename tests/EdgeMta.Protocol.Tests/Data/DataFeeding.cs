// Drives the fast readers the way the transport does: the input arrives in chunks, each Read is given one
// chunk, and a Read that does not complete must consume all of it.
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol.Tests.Data;

/// <summary>Keeps what the reader wrote, and how many Write calls it took.</summary>
internal sealed class CollectingSink : IMessageBodySink
{
    public List<byte> Octets { get; } = [];

    public int Writes { get; private set; }

    public void Write(ReadOnlySpan<byte> octets)
    {
        Writes++;
        Octets.AddRange(octets.ToArray());
    }
}

internal static class DataFeeding
{
    /// <summary>Feeds <paramref name="input"/> cut into the given chunk lengths (the rest goes last).</summary>
    public static DataOutcome Feed(DataReader reader, byte[] input, IEnumerable<int> chunkLengths)
    {
        var sink = new CollectingSink();
        int pos = 0;
        foreach (int length in chunkLengths.Append(int.MaxValue))
        {
            int take = Math.Min(length, input.Length - pos);
            DataStatus status = reader.Read(input.AsSpan(pos, take), sink, out int consumed);
            if (status == DataStatus.Complete)
            {
                Assert.InRange(consumed, 1, take);
                return Outcome(reader, sink, status, pos + consumed);
            }

            Assert.Equal(take, consumed);
            pos += take;
            if (pos == input.Length)
            {
                break;
            }
        }

        return Outcome(reader, sink, DataStatus.NeedMore, input.Length);
    }

    /// <summary>Feeds a whole message to a fresh reader in one Read.</summary>
    public static DataOutcome Feed(byte[] input, long max = long.MaxValue, BareNewlinePolicy policy = BareNewlinePolicy.Reject)
        => Feed(new DataReader(max, policy), input, []);

    public static DataOutcome Feed(string input, long max = long.MaxValue, BareNewlinePolicy policy = BareNewlinePolicy.Reject)
        => Feed(System.Text.Encoding.Latin1.GetBytes(input), max, policy);

    /// <summary>Feeds BDAT chunks (each announced with its own length, then read in pieces of <paramref name="piece"/>).</summary>
    public static DataOutcome FeedBdat(BdatReader reader, IReadOnlyList<byte[]> chunks, int piece)
    {
        var sink = new CollectingSink();
        int total = 0;
        foreach (byte[] chunk in chunks)
        {
            reader.BeginChunk(chunk.Length);
            int pos = 0;
            DataStatus status = chunk.Length == 0 ? DataStatus.Complete : DataStatus.NeedMore;
            while (pos < chunk.Length)
            {
                // The last piece comes with the next command behind it: the reader must stop at the announced length.
                int take = Math.Min(piece, chunk.Length - pos);
                byte[] offered = take == chunk.Length - pos ? [.. chunk.AsSpan(pos, take), .. "MAIL"u8] : chunk[pos..(pos + take)];
                status = reader.Read(offered, sink, out int consumed);
                Assert.Equal(take, consumed);
                pos += consumed;
                Assert.Equal(chunk.Length - pos, reader.ChunkRemaining);
                Assert.Equal(pos == chunk.Length ? DataStatus.Complete : DataStatus.NeedMore, status);
            }

            Assert.Equal(DataStatus.Complete, reader.Read("NOOP"u8, sink, out int none));
            Assert.Equal(0, none);
            total += chunk.Length;
        }

        return new DataOutcome(DataOutcome.Text(sink.Octets), DataStatus.Complete, total, reader.Size, reader.OverSize, false, reader.ReceivedHeaderCount, 0);
    }

    private static DataOutcome Outcome(DataReader reader, CollectingSink sink, DataStatus status, int consumed)
        => new(DataOutcome.Text(sink.Octets), status, consumed, reader.Size, reader.OverSize, reader.SawBareNewline, reader.ReceivedHeaderCount, reader.LongLineCount);
}
