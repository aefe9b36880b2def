// The IBufferWriter a handler writes its replies to. One contiguous pinned array from the pool, taken on
// the first GetSpan and grown by doubling; whatever a pass wrote is detached and sent in one send, then
// the array goes back to the pool, so a connection between passes holds no output buffer.
// Past MaxOutputBytes GetSpan throws: the handler faults and its connection closes. SMTP replies are tens
// to hundreds of bytes (a pipelined batch of 100 RCPT is about 3 KB), so only a runaway handler gets there.
using System.Buffers;

namespace EdgeMta.Transport;

internal sealed class OutputBuffer : IBufferWriter<byte>
{
    private readonly PinnedBufferPool _pool;
    private readonly int _maxBytes;
    private byte[]? _buffer;
    private int _written;

    public OutputBuffer(PinnedBufferPool pool, int maxBytes)
    {
        _pool = pool;
        _maxBytes = Math.Min(maxBytes, pool.MaximumSize);
    }

    public int Written => _written;

    public void Advance(int count)
    {
        if (count < 0 || _buffer is null || _written + count > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Ensure(sizeHint).AsMemory(_written);

    public Span<byte> GetSpan(int sizeHint = 0) => Ensure(sizeHint).AsSpan(_written);

    /// <summary>Hands the written bytes over for sending; the writer is empty afterwards.</summary>
    public byte[]? Detach(out int count)
    {
        byte[]? buffer = _buffer;
        count = _written;
        _buffer = null;
        _written = 0;
        return buffer;
    }

    /// <summary>Drops anything written (connection closing) and returns the array.</summary>
    public void Reset()
    {
        if (_buffer is not null)
        {
            _pool.Return(_buffer);
            _buffer = null;
        }
        _written = 0;
    }

    private byte[] Ensure(int sizeHint)
    {
        int needed = _written + Math.Max(sizeHint, 1);
        byte[]? buffer = _buffer;
        if (buffer is not null && needed <= buffer.Length)
        {
            return buffer;
        }
        if (needed > _maxBytes || needed < 0)
        {
            throw new InvalidOperationException("A handler wrote more output in one pass than MaxOutputBytes allows.");
        }
        byte[] larger = _pool.Rent(Math.Min(Math.Max(needed, buffer is null ? 0 : buffer.Length * 2), _maxBytes))!;
        if (buffer is not null)
        {
            buffer.AsSpan(0, _written).CopyTo(larger);
            _pool.Return(buffer);
        }
        _buffer = larger;
        return larger;
    }
}
