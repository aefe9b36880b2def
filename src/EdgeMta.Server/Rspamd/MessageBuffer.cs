// Contract: one message's exact accepted octets (our Received: header, then the client's unstuffed text), held in
// memory while rspamd looks at them, because the fields rspamd's verdict adds go at the top of the stored message
// and a record that has begun to stream to the spool cannot take a line at its top (src/EdgeMta.Spool/FORMAT.md,
// "Writing"). Only with --rspamd: without it the session's octets go straight to the spool as before.
// Memory: 64 KiB arrays from ArrayPool, as many as the message needs, at most Capacity octets (the session's
// --max-message-size plus the Received: header; more than that the session refuses anyway with 552 5.3.4, so the
// excess is dropped here). Two holders: the session's handler and the rspamd request writing the octets out; the
// last Release gives the arrays back, so a request still sending when its deadline passed never reads an array
// already reused.
// What it does not do: spill to disk. A server with N sessions in their final dot holds at most N messages.
using System.Buffers;

namespace EdgeMta.Server.Rspamd;

internal sealed class MessageBuffer
{
    public const int ChunkSize = 64 * 1024;

    private byte[][] _chunks = new byte[4][];
    private int _count;
    private int _holds = 1;

    public MessageBuffer(long capacity)
    {
        Capacity = capacity;
    }

    public long Capacity { get; }

    public long Length { get; private set; }

    /// <summary>Octets were dropped past Capacity (the session refuses such a message: 552 5.3.4).</summary>
    public bool Overflowed { get; private set; }

    public int ChunkCount => _count;

    /// <summary>Chunk <paramref name="i"/>'s octets (all ChunkSize but the last).</summary>
    public ReadOnlySpan<byte> Chunk(int i) =>
        _chunks[i].AsSpan(0, i < _count - 1 ? ChunkSize : (int)(Length - (long)i * ChunkSize));

    public void Append(ReadOnlySpan<byte> octets)
    {
        if (Length + octets.Length > Capacity)
        {
            Overflowed = true;
            return;
        }
        while (!octets.IsEmpty)
        {
            int at = (int)(Length % ChunkSize);
            if (at == 0 && Length / ChunkSize == _count)
            {
                if (_count == _chunks.Length) Array.Resize(ref _chunks, _count * 2);
                _chunks[_count++] = ArrayPool<byte>.Shared.Rent(ChunkSize);
            }
            int n = Math.Min(ChunkSize - at, octets.Length);
            octets[..n].CopyTo(_chunks[_count - 1].AsSpan(at));
            Length += n;
            octets = octets[n..];
        }
    }

    /// <summary>Copies octets from <paramref name="offset"/> into <paramref name="dest"/>; returns how many.</summary>
    public int CopyTo(long offset, Span<byte> dest)
    {
        int copied = 0;
        while (copied < dest.Length && offset < Length)
        {
            int i = (int)(offset / ChunkSize);
            ReadOnlySpan<byte> from = Chunk(i)[(int)(offset % ChunkSize)..];
            int n = Math.Min(from.Length, dest.Length - copied);
            from[..n].CopyTo(dest[copied..]);
            copied += n;
            offset += n;
        }
        return copied;
    }

    /// <summary>The length of the first header field, its folded lines included (RFC 5322 §2.2.3): our Received:.
    /// 0 when the first chunk holds no complete field.</summary>
    public int FirstFieldLength()
    {
        if (_count == 0) return 0;
        ReadOnlySpan<byte> first = Chunk(0);
        int from = 0;
        while (true)
        {
            int crlf = first[from..].IndexOf("\r\n"u8);
            if (crlf < 0) return 0;
            int end = from + crlf + 2;
            if (end == first.Length || (first[end] != ' ' && first[end] != '\t')) return end;
            from = end;
        }
    }

    /// <summary>Another holder (the rspamd request writing the octets out).</summary>
    public void Hold() => Interlocked.Increment(ref _holds);

    /// <summary>One holder lets go; the last gives the arrays back to the pool.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _holds) != 0) return;
        for (int i = 0; i < _count; i++)
        {
            ArrayPool<byte>.Shared.Return(_chunks[i]);
            _chunks[i] = null!;
        }
        _count = 0;
        Length = 0;
    }
}
