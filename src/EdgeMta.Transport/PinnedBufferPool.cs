// Pinned byte arrays in power-of-two sizes, kept for reuse up to a count per size.
//
// Why pinned: a buffer handed to the socket engine is pinned for the whole operation anyway; arrays on
// the Pinned Object Heap (GC.AllocateUninitializedArray(pinned: true)) cost nothing to pin and never
// fragment the ordinary heap (the idea of Garnet's LimitedFixedBufferPool).
// Why capped: the pool keeps at most MaxRetainedPerSize arrays of each size; beyond that a returned array
// is dropped for the GC, so a burst does not leave its high-water mark pinned forever. What a connection
// may hold at once is bounded by TransportOptions (MaxInputBytes, MaxOutputBytes), so what is rented is
// bounded by connections x those caps.
// Outstanding counts what is rented and not yet returned: the tests use it to show that idle connections
// hold no buffer.
using System.Collections.Concurrent;
using System.Numerics;

namespace EdgeMta.Transport;

/// <summary>A pool of pinned arrays whose lengths are powers of two between a minimum and a maximum.</summary>
public sealed class PinnedBufferPool
{
    private readonly ConcurrentQueue<byte[]>[] _levels;
    private readonly int[] _retained;
    private readonly int _minimumShift;
    private readonly int _maxRetainedPerSize;
    private long _outstanding;
    private long _allocated;

    /// <summary>Sizes from <paramref name="minimumSize"/> to <paramref name="maximumSize"/> (rounded up to powers of two).</summary>
    public PinnedBufferPool(int minimumSize, int maximumSize, int maxRetainedPerSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumSize, 16);
        ArgumentOutOfRangeException.ThrowIfLessThan(maximumSize, minimumSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetainedPerSize);
        MinimumSize = (int)BitOperations.RoundUpToPowerOf2((uint)minimumSize);
        MaximumSize = (int)BitOperations.RoundUpToPowerOf2((uint)maximumSize);
        _minimumShift = BitOperations.Log2((uint)MinimumSize);
        int levels = BitOperations.Log2((uint)MaximumSize) - _minimumShift + 1;
        _levels = new ConcurrentQueue<byte[]>[levels];
        _retained = new int[levels];
        for (int i = 0; i < levels; i++)
        {
            _levels[i] = new ConcurrentQueue<byte[]>();
        }
        _maxRetainedPerSize = maxRetainedPerSize;
    }

    /// <summary>The smallest array length handed out.</summary>
    public int MinimumSize { get; }

    /// <summary>The largest array length handed out.</summary>
    public int MaximumSize { get; }

    /// <summary>Arrays rented and not yet returned.</summary>
    public long Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Arrays allocated since the pool was made (a measure of how well reuse works).</summary>
    public long Allocated => Volatile.Read(ref _allocated);

    /// <summary>An array of at least <paramref name="size"/> bytes (a power of two), or null above MaximumSize.</summary>
    public byte[]? Rent(int size)
    {
        if ((uint)size > (uint)MaximumSize)
        {
            return null;
        }
        int level = LevelOf(size);
        Interlocked.Increment(ref _outstanding);
        if (_levels[level].TryDequeue(out byte[]? buffer))
        {
            Interlocked.Decrement(ref _retained[level]);
            return buffer;
        }
        Interlocked.Increment(ref _allocated);
        return GC.AllocateUninitializedArray<byte>(MinimumSize << level, pinned: true);
    }

    /// <summary>Gives back an array from <see cref="Rent"/>. Contents are not cleared.</summary>
    public void Return(byte[] buffer)
    {
        Interlocked.Decrement(ref _outstanding);
        int level = LevelOf(buffer.Length);
        if (Interlocked.Increment(ref _retained[level]) <= _maxRetainedPerSize)
        {
            _levels[level].Enqueue(buffer);
        }
        else
        {
            Interlocked.Decrement(ref _retained[level]);
        }
    }

    private int LevelOf(int size) =>
        size <= MinimumSize ? 0 : BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)size)) - _minimumShift;
}
