using EdgeMta.LoadTests;

namespace EdgeMta.LoadTests.Tests;

public class LatencyHistogramTests
{
    static readonly double[] Ps = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100];

    // The nearest-rank reference: the smallest value with at least p % of the sample at or below it.
    static long Reference(long[] sorted, double p)
    {
        long rank = (long)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank, 1, sorted.Length) - 1];
    }

    static void AssertMatchesReference(long[] values, int bits)
    {
        var h = new LatencyHistogram(bits);
        foreach (long v in values) h.Record(v);
        long[] sorted = (long[])values.Clone();
        Array.Sort(sorted);
        Assert.Equal(values.Length, h.Count);
        Assert.Equal(sorted[^1], h.Max);
        Assert.Equal(sorted[0], h.Min);
        foreach (double p in Ps)
        {
            long expected = Reference(sorted, p);
            long actual = h.ValueAtPercentile(p);
            Assert.True(actual >= expected, $"p{p}: {actual} below the reference {expected}");
            Assert.True(actual - expected <= expected * h.RelativeError + 1,
                $"p{p}: {actual} too far above the reference {expected} (bound {h.RelativeError:P2})");
        }
    }

    [Theory]
    [InlineData(8, 1)]
    [InlineData(8, 2)]
    [InlineData(6, 3)]
    [InlineData(10, 4)]
    public void PercentilesMatchASortedArrayWithinTheBucketError(int bits, int seed)
    {
        var random = new Random(seed);
        // A latency-like sample: a log-normal body around 50 µs (in ns) with a heavy tail.
        var values = new long[20_000];
        for (int i = 0; i < values.Length; i++)
        {
            double normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            values[i] = (long)(50_000 * Math.Exp(normal * 0.8));
            if (i % 500 == 0) values[i] *= 200;
        }
        AssertMatchesReference(values, bits);
    }

    [Fact]
    public void PercentilesMatchASortedArrayForUniformAndTinyValues()
    {
        var random = new Random(7);
        AssertMatchesReference([.. Enumerable.Range(0, 5000).Select(_ => (long)random.Next(0, 200))], 8);
        AssertMatchesReference([.. Enumerable.Range(0, 5000).Select(_ => random.NextInt64(0, 1L << 38))], 8);
        AssertMatchesReference([42], 8);
        AssertMatchesReference([3, 1_000_000_000], 8);
    }

    [Fact]
    public void ValuesBelowTheSubBucketCountAreExact()
    {
        var h = new LatencyHistogram(8);
        for (int v = 0; v < 256; v++) h.Record(v);
        Assert.Equal(127, h.ValueAtPercentile(50));
        Assert.Equal(255, h.ValueAtPercentile(100));
        Assert.Equal(0, h.ValueAtPercentile(0));
    }

    [Fact]
    public void EveryBucketHoldsTheValuesItClaims()
    {
        var h = new LatencyHistogram(8);
        long previousTop = -1;
        for (int i = 0; i < 1000; i++)
        {
            long top = h.HighestEquivalentValue(i);
            Assert.Equal(i, h.IndexOf(top));
            Assert.Equal(i, h.IndexOf(previousTop + 1));
            previousTop = top;
        }
    }

    [Fact]
    public void HugeValuesAreClampedButMaxStaysExact()
    {
        var h = new LatencyHistogram();
        h.Record(1L << 50);
        h.Record(10);
        Assert.Equal(1L << 50, h.Max);
        Assert.Equal(1L << 50, h.ValueAtPercentile(100));
        Assert.Equal(10, h.ValueAtPercentile(50));
    }

    [Fact]
    public void AnEmptyHistogramReportsZero()
    {
        var h = new LatencyHistogram();
        Assert.Equal(0, h.ValueAtPercentile(99));
        Assert.Equal(0, h.Max);
        Assert.Equal(0, h.Mean);
    }

    [Fact]
    public void AddMergesCountsAsIfRecordedInOne()
    {
        var random = new Random(3);
        long[] values = [.. Enumerable.Range(0, 4000).Select(_ => random.NextInt64(1, 10_000_000))];
        var one = new LatencyHistogram();
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        for (int i = 0; i < values.Length; i++)
        {
            one.Record(values[i]);
            (i % 2 == 0 ? a : b).Record(values[i]);
        }
        a.Add(b);
        Assert.Equal(one.Count, a.Count);
        Assert.Equal(one.Max, a.Max);
        foreach (double p in Ps) Assert.Equal(one.ValueAtPercentile(p), a.ValueAtPercentile(p));
    }

    [Fact]
    public void ConcurrentRecordingLosesNoCounts()
    {
        var h = new LatencyHistogram();
        Parallel.For(0, 4, t => { for (int i = 0; i < 50_000; i++) h.Record(i % 3000); });
        Assert.Equal(200_000, h.Count);
        Assert.Equal(2999, h.Max);
    }
}
