// Contract: counts the replies a session writes, by code, on their way into the transport's output, so
// the protocol session needs no counting of its own. One per connection handler (pooled with it), put in
// front of the transport's IBufferWriter for each call into the session.
// It recognises a reply line by its first four octets, RFC 5321 §4.2: `ddd SP` (or `ddd` CRLF) ends a
// reply and is counted; `ddd-` is a line of a multi-line reply and is not, so EHLO's dozen lines count as
// one 250. Only those four octets of each line are looked at; the rest is skipped with a vectorised
// search for LF, so the cost is a few nanoseconds per reply, not per byte.
// What it does not do: interpret anything else, copy, or allocate. The session writes whole replies, but
// the line state carries across calls anyway, so a reply split between two writes is still counted once.
using System.Buffers;

namespace EdgeMta.Server;

internal sealed class ReplyCountingWriter(SessionCounters counters) : IBufferWriter<byte>
{
    private IBufferWriter<byte> _inner = NullWriter.Instance;
    private Memory<byte> _lent;
    private int _column; // octets of the current line seen, up to 4 (then the rest of the line is skipped)
    private int _code;   // the digits so far, -1 once the line cannot be a reply line
    private long _written;

    /// <summary>Replies written on this connection: a new one means a request was answered (SmtpConnectionHandler.Deadlines.cs).</summary>
    public long Written => _written;

    /// <summary>This writer, now writing through to <paramref name="inner"/>.</summary>
    public IBufferWriter<byte> Over(IBufferWriter<byte> inner)
    {
        _inner = inner;
        return this;
    }

    /// <summary>A new connection starts at the start of a line.</summary>
    public void Reset()
    {
        _column = 0;
        _code = 0;
        _written = 0;
        _lent = default;
        _inner = NullWriter.Instance;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => _lent = _inner.GetMemory(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => (_lent = _inner.GetMemory(sizeHint)).Span;

    public void Advance(int count)
    {
        Tally(_lent.Span[..count]);
        _lent = default;
        _inner.Advance(count);
    }

    /// <summary>Counts the replies ending in <paramref name="written"/>.</summary>
    internal void Tally(ReadOnlySpan<byte> written)
    {
        while (!written.IsEmpty)
        {
            if (_column < 4)
            {
                Step(written[0]);
                written = written[1..];
                continue;
            }
            int lf = written.IndexOf((byte)'\n');
            if (lf < 0) return;
            written = written[(lf + 1)..];
            _column = 0;
            _code = 0;
        }
    }

    private void Step(byte b)
    {
        if (b == (byte)'\n')
        {
            if (_column == 3 && _code >= 0) Count(); // "ddd" LF: a reply with no text
            _column = 0;
            _code = 0;
            return;
        }
        if (_column < 3)
        {
            _code = _code >= 0 && char.IsAsciiDigit((char)b) ? _code * 10 + (b - '0') : -1;
            _column++;
            return;
        }
        if (_code >= 0 && (b == (byte)' ' || b == (byte)'\r')) Count();
        _column = 4;
    }

    private void Count()
    {
        counters.CountReply(_code);
        _written++;
    }

    /// <summary>The three-digit code a reply starts with, or -1.</summary>
    internal static int CodeOf(ReadOnlySpan<byte> reply) =>
        reply.Length >= 3 && char.IsAsciiDigit((char)reply[0]) && char.IsAsciiDigit((char)reply[1]) && char.IsAsciiDigit((char)reply[2])
            ? (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0')
            : -1;

    /// <summary>Before the first Over: a handler bug writing then fails loudly instead of counting nowhere.</summary>
    private sealed class NullWriter : IBufferWriter<byte>
    {
        public static readonly NullWriter Instance = new();

        public void Advance(int count) => throw new InvalidOperationException("reply written outside a handler call");

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException("reply written outside a handler call");

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException("reply written outside a handler call");
    }
}
