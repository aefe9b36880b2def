namespace EdgeMta.LoadTests;

/// <summary>
/// A log-linear histogram of non-negative values (Stopwatch ticks here), in the manner of HdrHistogram:
/// values below 2^bits are counted exactly; above, each power of two is split into 2^(bits-1) equal
/// buckets, so a reported value is within 1 / 2^(bits-1) of the true one (0.8 % with 8 bits).
/// It stores counts, never samples: memory is fixed (4,352 counters with 8 bits) whatever the run length.
/// Recording is thread-safe and lock-free (Interlocked on one counter, plus the count, sum and max);
/// reading while others record gives a slightly stale but never torn picture.
/// Values at or above 2^40 (18 minutes in nanosecond ticks) land in the last bucket; Max stays exact.
/// </summary>
public sealed class LatencyHistogram
{
    const int MaxExponent = 40;

    readonly int _bits;
    readonly int _subBucketCount;      // 2^bits: the exact range, and the width of each later span
    readonly int _halfCount;           // 2^(bits-1): buckets per power of two above the exact range
    readonly long[] _counts;
    long _count;
    long _sum;
    long _max;
    long _min = long.MaxValue;

    public LatencyHistogram(int significantBits = 8)
    {
        if (significantBits is < 2 or > 16) throw new ArgumentOutOfRangeException(nameof(significantBits));
        _bits = significantBits;
        _subBucketCount = 1 << significantBits;
        _halfCount = _subBucketCount >> 1;
        _counts = new long[_subBucketCount + (MaxExponent - significantBits) * _halfCount];
    }

    public long Count => Volatile.Read(ref _count);
    public long Max => Volatile.Read(ref _max);
    public long Min => Count == 0 ? 0 : Volatile.Read(ref _min);
    public double Mean => Count == 0 ? 0 : (double)Volatile.Read(ref _sum) / Count;

    /// <summary>The relative error bound of a reported percentile: 1 / 2^(bits-1).</summary>
    public double RelativeError => 1.0 / _halfCount;

    public void Record(long value)
    {
        if (value < 0) value = 0;
        Interlocked.Increment(ref _counts[IndexOf(value)]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sum, value);
        long max = Volatile.Read(ref _max);
        while (value > max)
        {
            long seen = Interlocked.CompareExchange(ref _max, value, max);
            if (seen == max) break;
            max = seen;
        }
        long min = Volatile.Read(ref _min);
        while (value < min)
        {
            long seen = Interlocked.CompareExchange(ref _min, value, min);
            if (seen == min) break;
            min = seen;
        }
    }

    /// <summary>Adds every count of <paramref name="other"/> (same precision) to this histogram.</summary>
    public void Add(LatencyHistogram other)
    {
        if (other._bits != _bits) throw new ArgumentException("precision differs", nameof(other));
        for (int i = 0; i < _counts.Length; i++)
        {
            long c = Volatile.Read(ref other._counts[i]);
            if (c != 0) Interlocked.Add(ref _counts[i], c);
        }
        Interlocked.Add(ref _count, other.Count);
        Interlocked.Add(ref _sum, Volatile.Read(ref other._sum));
        if (other.Max > _max) _max = other.Max;
        if (other.Count > 0 && other.Min < _min) _min = other.Min;
    }

    /// <summary>
    /// The value at <paramref name="percentile"/> (0-100): the smallest recorded value v such that at
    /// least percentile % of the values are ≤ v, reported as the top of its bucket (never above Max).
    /// This is the nearest-rank definition, so it equals sorted[ceil(p/100·n) - 1] within the bucket error.
    /// </summary>
    public long ValueAtPercentile(double percentile)
    {
        long count = Count;
        if (count == 0) return 0;
        long rank = (long)Math.Ceiling(percentile / 100.0 * count);
        if (rank < 1) rank = 1;
        if (rank > count) rank = count;
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank) return i == _counts.Length - 1 ? Max : Math.Min(HighestEquivalentValue(i), Max);  // the clamp bucket
        }
        return Max;
    }

    internal int IndexOf(long value)
    {
        if (value < _subBucketCount) return (int)value;
        int exponent = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)value);
        if (exponent >= MaxExponent) return _counts.Length - 1;
        int shift = exponent - (_bits - 1);                     // >= 1 here
        int sub = (int)(value >> shift);                        // in [half, 2·half)
        return _subBucketCount + (shift - 1) * _halfCount + (sub - _halfCount);
    }

    internal long HighestEquivalentValue(int index)
    {
        if (index < _subBucketCount) return index;
        int shift = (index - _subBucketCount) / _halfCount + 1;
        long sub = (index - _subBucketCount) % _halfCount + _halfCount;
        return ((sub + 1) << shift) - 1;
    }
}
