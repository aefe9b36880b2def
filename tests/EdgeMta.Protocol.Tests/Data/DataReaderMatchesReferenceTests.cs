// The fast DATA and BDAT readers against the slow reference, over fixed-seed random and adversarial
// inputs, each cut at every boundary into two chunks and into random chunkings, under both bare-newline
// policies, with the vector scan on and off, and with size caps around the message size.
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol.Tests.Data;

public class DataReaderMatchesReferenceTests
{
    private static readonly BareNewlinePolicy[] Policies = [BareNewlinePolicy.Reject, BareNewlinePolicy.Normalize];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void DataReaderMatchesReferenceAtEverySplitIntoTwoChunks(int seed)
    {
        var rng = new Random(seed);
        for (int n = 0; n < 24; n++)
        {
            byte[] input = DataInputs.Make(rng, n);
            if (input.Length > 6000)
            {
                input = input[..6000];
            }

            foreach (BareNewlinePolicy policy in Policies)
            {
                long max = Cap(rng, input, policy);
                DataOutcome expected = ReferenceDataReader.Read(input, max, policy);
                var reader = new DataReader(max, policy);
                for (int split = 0; split <= input.Length; split++)
                {
                    reader.Reset();
                    reader.UseVectorScan = split % 7 != 3;
                    AssertSame(expected, DataFeeding.Feed(reader, input, [split]), $"seed {seed} input {n} {policy} max {max} split {split} vectors {reader.UseVectorScan}");
                }
            }
        }
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    public void DataReaderMatchesReferenceOverRandomChunkings(int seed)
    {
        var rng = new Random(seed);
        for (int n = 0; n < 300; n++)
        {
            byte[] input = DataInputs.Make(rng, n);
            foreach (BareNewlinePolicy policy in Policies)
            {
                long max = Cap(rng, input, policy);
                DataOutcome expected = ReferenceDataReader.Read(input, max, policy);
                var reader = new DataReader(max, policy);
                for (int k = 0; k < 12; k++)
                {
                    reader.Reset();
                    reader.UseVectorScan = k != 0;
                    int[] chunks = Chunking(rng, input.Length);
                    AssertSame(expected, DataFeeding.Feed(reader, input, chunks), $"seed {seed} input {n} {policy} max {max} chunks {string.Join(',', chunks)}");
                }
            }
        }
    }

    [Fact]
    public void DataReaderMatchesReferenceOnEveryShortStringOfCrLfAndDot()
    {
        // Every string of up to 8 octets over { CR, LF, '.', 'x' }, prefixed with text so that each is also
        // tried at the start of data; each fed whole and one octet at a time.
        byte[] alphabet = "\r\n.x"u8.ToArray();
        foreach (string prefix in new[] { "", "a\r\n" })
        {
            for (int length = 0; length <= 8; length++)
            {
                int count = 1 << (2 * length);
                for (int code = 0; code < count; code++)
                {
                    byte[] input = new byte[prefix.Length + length];
                    System.Text.Encoding.Latin1.GetBytes(prefix, input);
                    for (int k = 0, c = code; k < length; k++, c >>= 2)
                    {
                        input[prefix.Length + k] = alphabet[c & 3];
                    }

                    foreach (BareNewlinePolicy policy in Policies)
                    {
                        DataOutcome expected = ReferenceDataReader.Read(input, long.MaxValue, policy);
                        AssertSame(expected, DataFeeding.Feed(new DataReader(long.MaxValue, policy), input, []), "whole");
                        AssertSame(expected, DataFeeding.Feed(new DataReader(long.MaxValue, policy), input, Enumerable.Repeat(1, input.Length)), "octet by octet");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public void BdatReaderMatchesReferenceOverRandomChunksAndPieces(int seed)
    {
        var rng = new Random(seed);
        for (int n = 0; n < 200; n++)
        {
            byte[] message = DataInputs.Make(rng, n);
            long max = rng.Next(3) switch { 0 => long.MaxValue, 1 => message.Length, _ => rng.Next(0, message.Length + 2) };
            DataOutcome expected = ReferenceDataReader.ReadBdat(message, max);
            var reader = new BdatReader(max);
            for (int k = 0; k < 6; k++)
            {
                reader.Reset();
                var chunks = new List<byte[]>();
                int pos = 0;
                foreach (int length in Chunking(rng, message.Length).Append(message.Length))
                {
                    int take = Math.Min(length, message.Length - pos);
                    chunks.Add(message[pos..(pos + take)]);
                    pos += take;
                    if (pos == message.Length)
                    {
                        break;
                    }
                }

                AssertSame(expected, DataFeeding.FeedBdat(reader, chunks, rng.Next(1, 200)), $"seed {seed} input {n} max {max}");
            }
        }
    }

    /// <summary>No cap, the exact size, one under it, or anywhere, so that the cut falls everywhere.</summary>
    private static long Cap(Random rng, byte[] input, BareNewlinePolicy policy)
    {
        long size = ReferenceDataReader.Read(input, long.MaxValue, policy).Size;
        return rng.Next(4) switch
        {
            0 => long.MaxValue,
            1 => size,
            2 => Math.Max(0, size - 1),
            _ => rng.NextInt64(0, size + 1),
        };
    }

    /// <summary>Chunk lengths: single octets, around one and two 64-octet blocks, or large.</summary>
    private static int[] Chunking(Random rng, int length)
    {
        var chunks = new List<int>();
        int total = 0;
        int style = rng.Next(4);
        while (total < length)
        {
            int next = style switch
            {
                0 => rng.Next(1, 4),
                1 => rng.Next(60, 70),
                2 => rng.Next(120, 140),
                _ => rng.Next(1, 2000),
            };
            chunks.Add(next);
            total += next;
        }

        return [.. chunks];
    }

    private static void AssertSame(DataOutcome expected, DataOutcome actual, string context)
    {
        if (expected != actual)
        {
            Assert.Fail($"{context}\nexpected {Describe(expected)}\nactual   {Describe(actual)}");
        }
    }

    private static string Describe(DataOutcome o)
        => $"{o.Status} consumed {o.Consumed} size {o.Size} over {o.OverSize} bare {o.SawBareNewline} received {o.ReceivedHeaderCount} long {o.LongLineCount} output[{o.Output.Length}] {Escape(o.Output)}";

    private static string Escape(string s)
        => (s.Length > 300 ? s[..300] + "..." : s).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
