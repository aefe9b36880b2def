// One spooled message read into a rented buffer, with its envelope's fields located (FORMAT.md "Payload", the
// envelope layout in SpoolEnvelope.cs): what an attempt sends and a bounce returns. The buffer goes back to its
// pool in Return; after that no slice of it may be used.
// Fails softly: Parse returns null for an envelope that does not walk (the spool checked it at commit, so this
// means a damaged read), and the caller keeps the message in the spool.
using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace EdgeMta.Delivery;

internal sealed class LoadedMessage
{
    private readonly ArrayPool<byte> _pool;
    private byte[]? _buffer;

    private LoadedMessage(byte[] buffer, ArrayPool<byte> pool, int envelopeLength, int dataLength)
    {
        _buffer = buffer;
        _pool = pool;
        EnvelopeLength = envelopeLength;
        DataLength = dataLength;
    }

    public int EnvelopeLength { get; }
    public int DataLength { get; }
    public Range ReversePath { get; private set; }
    public Range MailParameters { get; private set; }
    public Range[] Paths { get; private set; } = [];
    public Range[] Parameters { get; private set; } = [];
    public int RecipientCount => Paths.Length;
    public bool NullSender => ReversePath.GetOffsetAndLength(int.MaxValue).Length == 0;
    public ReadOnlyMemory<byte> Data => _buffer.AsMemory(EnvelopeLength, DataLength);

    public ReadOnlyMemory<byte> Slice(Range r) => _buffer.AsMemory()[r];
    public string Text(Range r) => Encoding.UTF8.GetString(_buffer.AsSpan()[r]);
    public string Sender => Text(ReversePath);
    public string Recipient(int i) => Text(Paths[i]);

    /// <summary>Locates the envelope's fields; null when they do not walk.</summary>
    public static LoadedMessage? Parse(byte[] buffer, int envelopeLength, int dataLength, ArrayPool<byte> pool)
    {
        var m = new LoadedMessage(buffer, pool, envelopeLength, dataLength);
        int at = 0;
        var fields = new List<Range>(8);
        while (at < envelopeLength)
        {
            if (envelopeLength - at < 4) return null;
            uint n = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(at));
            if (n > (uint)(envelopeLength - at - 4)) return null;
            fields.Add(new Range(at + 4, at + 4 + (int)n));
            at += 4 + (int)n;
        }
        if (fields.Count < 4 || (fields.Count - 4) % 2 != 0) return null;
        m.ReversePath = fields[2];
        m.MailParameters = fields[3];
        int recipients = (fields.Count - 4) / 2;
        m.Paths = new Range[recipients];
        m.Parameters = new Range[recipients];
        for (int i = 0; i < recipients; i++)
        {
            m.Paths[i] = fields[4 + 2 * i];
            m.Parameters[i] = fields[5 + 2 * i];
        }
        return m;
    }

    /// <summary>The value of ESMTP keyword <paramref name="keyword"/> in <paramref name="parameters"/> ("NOTIFY"),
    /// null when absent (RFC 5321 §4.1.2 esmtp-param: keyword "=" value, separated by spaces).</summary>
    public string? Parameter(Range parameters, string keyword)
    {
        var s = _buffer.AsSpan()[parameters];
        while (!s.IsEmpty)
        {
            int space = s.IndexOf((byte)' ');
            var item = space < 0 ? s : s[..space];
            s = space < 0 ? default : s[(space + 1)..];
            int eq = item.IndexOf((byte)'=');
            var key = eq < 0 ? item : item[..eq];
            if (Ascii.EqualsIgnoreCase(key, Encoding.ASCII.GetBytes(keyword))) return eq < 0 ? "" : Encoding.UTF8.GetString(item[(eq + 1)..]);
        }
        return null;
    }

    public void Return()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is not null) _pool.Return(b);
    }
}
