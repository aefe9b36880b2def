// Contract: what the spool's writers did since start, for the host to publish. Plain counters in the shape
// of EdgeMta.Transport's TransportCounters: Interlocked on write, Volatile on read, no allocation, no
// metrics library. One observation per durable write or sync (each carries a batch of commits,
// MessageSpool.Writers.cs), in microseconds, into fixed buckets from
// 100 µs to 1 s: an SSD's flush is 0.1 to a few ms, a disk's 5 to 20 ms, and anything past 100 ms is
// clients waiting for their 250 (docs/PERF-NOTES.md). With `--sync none` nothing is flushed: all zero.
// What it does not do: the gauges of the spool's size and free space; MessageSpool.MeasureUsage reads those
// when asked, from the directory and statvfs, so they are never stale.
namespace EdgeMta.Spool;

/// <summary>Flush batches and their latency.</summary>
public sealed class SpoolCounters
{
    /// <summary>Upper bounds of the flush-latency buckets, in microseconds; a last bucket holds the rest.</summary>
    public static ReadOnlySpan<long> FlushBucketBoundsMicroseconds =>
        [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

    private readonly long[] _flushBuckets = new long[FlushBucketBoundsMicroseconds.Length + 1];
    private long _flushMicroseconds;

    /// <summary>Flushes per bucket (not cumulative), into <paramref name="counts"/> (bounds + 1 long).</summary>
    public void ReadFlushBuckets(Span<long> counts)
    {
        for (int i = 0; i < _flushBuckets.Length && i < counts.Length; i++) counts[i] = Volatile.Read(ref _flushBuckets[i]);
    }

    /// <summary>Total time spent in flushes, in microseconds.</summary>
    public long FlushMicroseconds => Volatile.Read(ref _flushMicroseconds);

    internal void RecordFlush(long microseconds)
    {
        ReadOnlySpan<long> bounds = FlushBucketBoundsMicroseconds;
        int i = 0;
        while (i < bounds.Length && microseconds > bounds[i]) i++;
        Interlocked.Increment(ref _flushBuckets[i]);
        Interlocked.Add(ref _flushMicroseconds, microseconds);
    }
}

/// <summary>The spool's footprint now: segment files, their bytes on disk, and what the filesystem has left.</summary>
public readonly record struct SpoolUsage(long Segments, long Bytes, long FreeBytes);
