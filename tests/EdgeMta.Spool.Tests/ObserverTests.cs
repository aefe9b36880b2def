// The spool's consumer seam (SpoolObserver.cs): every record made durable is reported once, at the place a
// reader finds it, and nothing that was refused is reported. Small and streamed messages alike.
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
}
