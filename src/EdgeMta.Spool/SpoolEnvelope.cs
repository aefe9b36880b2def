// The envelope as the spool stores it: fields of bytes, each a u32 little-endian length and its octets,
// in this order: client address, HELO/EHLO name, reverse path, MAIL parameters, then one pair per
// recipient (forward path, RCPT parameters) to the end of the envelope (RFC 5321 §4.1.1.2, §4.1.1.3).
// The spool never interprets these bytes: the session decides what they hold (e.g. "<a@b>" or "a@b").
using System.Buffers.Binary;

namespace EdgeMta.Spool;

/// <summary>A read-only view of a stored envelope. Valid only while the bytes it was parsed from are.</summary>
public readonly ref struct SpoolEnvelope
{
    public ReadOnlySpan<byte> ClientAddress { get; }
    public ReadOnlySpan<byte> HeloName { get; }
    public ReadOnlySpan<byte> ReversePath { get; }
    public ReadOnlySpan<byte> MailParameters { get; }
    /// <summary>The encoded recipient pairs; walk them with <see cref="GetRecipients"/>.</summary>
    private readonly ReadOnlySpan<byte> _recipients;

    private SpoolEnvelope(ReadOnlySpan<byte> client, ReadOnlySpan<byte> helo, ReadOnlySpan<byte> reverse, ReadOnlySpan<byte> mail, ReadOnlySpan<byte> recipients)
    {
        ClientAddress = client; HeloName = helo; ReversePath = reverse; MailParameters = mail; _recipients = recipients;
    }

    public RecipientEnumerator GetRecipients() => new(_recipients);

    public int RecipientCount
    {
        get { int n = 0; foreach (var _ in GetRecipients()) n++; return n; }
    }

    /// <summary>Parses an encoded envelope; false when a length runs past the end (a damaged record).</summary>
    public static bool TryParse(ReadOnlySpan<byte> encoded, out SpoolEnvelope envelope)
    {
        envelope = default;
        var s = encoded;
        if (!TryLength(s, out int n1)) return false;
        var client = s.Slice(4, n1); s = s[(4 + n1)..];
        if (!TryLength(s, out int n2)) return false;
        var helo = s.Slice(4, n2); s = s[(4 + n2)..];
        if (!TryLength(s, out int n3)) return false;
        var reverse = s.Slice(4, n3); s = s[(4 + n3)..];
        if (!TryLength(s, out int n4)) return false;
        var mail = s.Slice(4, n4); s = s[(4 + n4)..];
        var walk = s;
        while (!walk.IsEmpty)
        {
            if (!TryLength(walk, out int a)) return false;
            walk = walk[(4 + a)..];
            if (!TryLength(walk, out int b)) return false;
            walk = walk[(4 + b)..];
        }
        envelope = new SpoolEnvelope(client, helo, reverse, mail, s);
        return true;
    }

    /// <summary>The length of the field at the start of <paramref name="s"/>, if it fits.</summary>
    internal static bool TryLength(ReadOnlySpan<byte> s, out int length)
    {
        length = 0;
        if (s.Length < 4) return false;
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(s);
        if (n > (uint)(s.Length - 4)) return false;
        length = (int)n;
        return true;
    }

    public ref struct RecipientEnumerator
    {
        private ReadOnlySpan<byte> _rest;
        public Recipient Current { get; private set; }
        internal RecipientEnumerator(ReadOnlySpan<byte> rest) { _rest = rest; Current = default; }
        public readonly RecipientEnumerator GetEnumerator() => this;
        public bool MoveNext()
        {
            if (!TryLength(_rest, out int a)) return false;
            var path = _rest.Slice(4, a);
            var rest = _rest[(4 + a)..];
            if (!TryLength(rest, out int b)) return false;
            Current = new Recipient(path, rest.Slice(4, b));
            _rest = rest[(4 + b)..];
            return true;
        }
    }

    public readonly ref struct Recipient
    {
        public ReadOnlySpan<byte> ForwardPath { get; }
        public ReadOnlySpan<byte> Parameters { get; }
        public Recipient(ReadOnlySpan<byte> forwardPath, ReadOnlySpan<byte> parameters) { ForwardPath = forwardPath; Parameters = parameters; }
    }
}
