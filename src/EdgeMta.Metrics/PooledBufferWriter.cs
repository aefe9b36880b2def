// Contract: a growable byte buffer on ArrayPool<byte>.Shared, for one response at a time: the scrape body
// is rendered into it and sent from it, then the array goes back to the pool. A scrape of EdgeMta's
// families is about 10 KB, so after the first scrape no scrape allocates a buffer.
// What it does not do: share itself between threads (one per connection), or keep its array (Dispose).
// How it fails: past the cap it throws InvalidOperationException, so a runaway renderer cannot take the
// process's memory; the responder answers 500 then.
using System.Buffers;

namespace EdgeMta.Metrics;

internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private readonly int _maxBytes;
    private byte[] _array;
    private int _written;

    /// <param name="start">Bytes kept free at the front (room for the HTTP head, written last).</param>
    public PooledBufferWriter(int initialSize, int maxBytes, int start = 0)
    {
        _maxBytes = maxBytes;
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(initialSize, start + 1));
        _written = start;
    }

    /// <summary>Everything in the array up to the end of what was written (the reserved front included).</summary>
    public byte[] Array => _array;
    public int Written => _written;

    /// <summary>Forgets what was written past <paramref name="position"/>.</summary>
    public void Rewind(int position) => _written = Math.Clamp(position, 0, _written);

    public void Advance(int count)
    {
        if (count < 0 || _written + count > _array.Length) throw new ArgumentOutOfRangeException(nameof(count));
        _written += count;
    }

    // Ensure first, then read _array: Ensure may replace it (`_array.AsSpan(Ensure(n))` would read the old one).
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        int at = Ensure(sizeHint);
        return _array.AsMemory(at);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        int at = Ensure(sizeHint);
        return _array.AsSpan(at);
    }

    private int Ensure(int sizeHint)
    {
        long needed = (long)_written + Math.Max(sizeHint, 1);
        if (needed <= _array.Length) return _written;
        if (needed > _maxBytes) throw new InvalidOperationException($"metrics body over {_maxBytes} bytes");
        byte[] larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(_maxBytes, Math.Max(needed, 2L * _array.Length)));
        _array.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_array);
        _array = larger;
        return _written;
    }

    public void Dispose()
    {
        byte[] array = _array;
        _array = [];
        _written = 0;
        if (array.Length > 0) ArrayPool<byte>.Shared.Return(array);
    }
}
