// The spool's consumer seam (SpoolObserver.cs): every record made durable is reported once, at the place a
// reader finds it, and nothing that was refused is reported. Small and streamed messages alike. A record written
// whole within its first chunk comes with its payload, byte for byte what a reader finds on the disk.
using System.Collections.Concurrent;
using System.Text;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool.Tests;

public class ObserverTests
{
    private sealed class Recorder : ISpoolObserver
    {
        public readonly ConcurrentQueue<(long Segment, long Offset, string Id)> Seen = new();

        public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId)
            => Seen.Enqueue((segment, offset, Encoding.ASCII.GetString(queueId)));
    }

    [Fact]
    public async Task EveryDurableRecordIsReportedOnceWhereAReaderFindsItAndNoRefusedOne()
    {
        using var dir = new TempDir();
        var recorder = new Recorder();
        var committed = new HashSet<string>();
        string refused;
        await using (var spool = MessageSpool.Open(TestSpools.Options(dir.Path) with { Observer = recorder }, out _))
        {
            // Eight writers at once, small and streamed (over the 16 KiB threshold of 4 KiB chunks).
            var writes = Enumerable.Range(0, 40).Select(i => TestSpools.Write(spool, i, i % 4 == 0 ? 40_000 : 700)).ToArray();
            foreach (var (result, id) in await Task.WhenAll(writes))
            {
                Assert.Equal(CommitResult.Committed, result);
                committed.Add(id);
            }
            spool.InjectFlushError = () => LibC.EIO;
            (CommitResult failed, refused) = await TestSpools.Write(spool, 99, 700);
            Assert.Equal(CommitResult.Failed, failed);
        }
        var seen = recorder.Seen.ToArray();
        Assert.Equal(committed.Count, seen.Length);
        Assert.Equal(committed, seen.Select(s => s.Id).ToHashSet());
        Assert.DoesNotContain(refused, seen.Select(s => s.Id));

        // The place reported is the place recovery and the reader find the record at.
        var places = new Dictionary<string, (long, long)>();
        SpoolReader.Read(dir.Path, (in SpoolRecord r) =>
            places[Encoding.ASCII.GetString(r.QueueId)] = (SpoolRecovery.SequenceOf(r.Segment), r.Offset));
        foreach (var (segment, offset, id) in seen) Assert.Equal((segment, offset), places[id]);
    }

    private sealed class PayloadRecorder : ISpoolObserver
    {
        public readonly ConcurrentDictionary<string, (byte[]? Payload, int Envelope, long Arrival)> Seen = new();

        public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId)
            => Assert.True(Seen.TryAdd(Encoding.ASCII.GetString(queueId), (null, 0, 0)));

        public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId, ReadOnlySpan<byte> payload, int envelopeLength, long arrivalUnixMs)
            => Assert.True(Seen.TryAdd(Encoding.ASCII.GetString(queueId), (payload.ToArray(), envelopeLength, arrivalUnixMs)));
    }

    [Fact]
    public async Task AWholeCommitWithinItsFirstChunkComesWithThePayloadAReaderFinds()
    {
        using var dir = new TempDir();
        var recorder = new PayloadRecorder();
        var sizes = new Dictionary<string, int>();
        await using (var spool = MessageSpool.Open(TestSpools.Options(dir.Path) with { Observer = recorder }, out _))
        {
            // 4 KiB chunks: 700 bytes fit the first chunk; 10,000 are a whole commit over three chunks; 40,000 stream.
            int[] size = [700, 10_000, 40_000];
            var writes = Enumerable.Range(0, 24).Select(i => TestSpools.Write(spool, i, size[i % 3])).ToArray();
            int k = 0;
            foreach (var (result, id) in await Task.WhenAll(writes))
            {
                Assert.Equal(CommitResult.Committed, result);
                sizes[id] = size[k++ % 3];
            }
        }
        int withPayload = 0;
        SpoolReader.Read(dir.Path, (in SpoolRecord r) =>
        {
            var (payload, envelope, arrival) = recorder.Seen[r.QueueIdString];
            if (sizes[r.QueueIdString] != 700)
            {
                Assert.Null(payload);   // the consumer reads these back by their place
                return;
            }
            withPayload++;
            Assert.NotNull(payload);
            Assert.Equal(r.EncodedEnvelope.Length, envelope);
            Assert.True(r.EncodedEnvelope.SequenceEqual(payload.AsSpan(0, envelope)));
            Assert.True(r.Data.SequenceEqual(payload.AsSpan(envelope)));
            Assert.Equal(r.ArrivalUnixMs, arrival);
        });
        Assert.Equal(8, withPayload);
        Assert.Equal(24, recorder.Seen.Count);
    }
}
