// The aligned buffers messages gather in: direct I/O writes from memory aligned to the disk's sector, so
// these come from NativeMemory.AlignedAlloc (4096), never from the GC heap. Every buffer is one chunk
// (SpoolOptions.FirstBufferSize rounded up to 4 KiB): a small message lives in one, a streamed one passes
// through a ring of them (SpoolMessage.cs).
// A bounded stack keeps what was given back (at most SpoolOptions.MaxPooledMessages × 2 chunks); beyond it,
// a chunk is freed. Rent and Return take a lock held for a few instructions, once per chunk, not per byte.
// Freed when the spool is disposed, once nothing holds them any more (the writers have stopped).
using System.Runtime.InteropServices;

namespace EdgeMta.Spool;

internal sealed unsafe class SpoolBuffers : IDisposable
{
    private readonly nint[] _free;
    private readonly Lock _gate = new();
    private int _count;

    public SpoolBuffers(int chunkSize, int keep)
    {
        ChunkSize = (Math.Max(chunkSize, 4096) + Segment.BufferAlign - 1) & ~(Segment.BufferAlign - 1);
        _free = new nint[Math.Max(1, keep)];
    }

    public int ChunkSize { get; }

    public byte* Rent()
    {
        lock (_gate)
        {
            if (_count > 0) return (byte*)_free[--_count];
        }
        return (byte*)NativeMemory.AlignedAlloc((nuint)ChunkSize, Segment.BufferAlign);
    }

    public void Return(byte* chunk)
    {
        if (chunk == null) return;
        lock (_gate)
        {
            if (_count < _free.Length)
            {
                _free[_count++] = (nint)chunk;
                return;
            }
        }
        NativeMemory.AlignedFree(chunk);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            while (_count > 0) NativeMemory.AlignedFree((void*)_free[--_count]);
        }
    }
}
