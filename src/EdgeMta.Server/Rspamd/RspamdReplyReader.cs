// Contract: reads rspamd's HTTP/1.x reply to `POST /checkv2` (RFC 9112) as it arrives, split anywhere, into one
// contiguous JSON body for RspamdResult. Strict and bounded:
// - the head (status line and header fields) is at most MaxHeadBytes; every line ends in CRLF (no bare LF, no
//   obs-fold: RFC 9112 §2.2 and §5.2 let a recipient reject both); only status 200 is a result, anything else
//   ends the read at its head (status=N);
// - the body is framed by Content-Length, by `Transfer-Encoding: chunked` (RFC 9112 §7.1, extensions skipped,
//   trailers read and dropped), or, with neither, by the close (RFC 9112 §6.3 rule 8). Both at once, two
//   different lengths, or a coding other than chunked is an error (RFC 9112 §6.3 rule 3 lets a client refuse);
// - the body is at most MaxBodyBytes (rspamd's reply with every symbol is a few KiB; a URL-heavy message some
//   tens): more is TooLarge, never a bigger buffer.
// What it does not do: keep-alive (the request asks for `Connection: close`), 1xx interim replies (none is
// asked for: no Expect), content codings (none is offered). Memory: two arrays from ArrayPool (the head's, and the
// body's sized to the Content-Length or grown by doubling), given back by Release.
// How it fails: a value (ReplyStatus.Error with a short reason), never an exception.
using System.Buffers;
using System.Buffers.Text;

namespace EdgeMta.Server.Rspamd;

/// <summary>Where the reply read stands.</summary>
internal enum ReplyStatus : byte
{
    NeedMore,
    Complete,
    Error,
}

/// <summary>The incremental reader of one rspamd reply (RspamdReplyReader.cs).</summary>
internal sealed class RspamdReplyReader
{
    public const int MaxHeadBytes = 8 * 1024;
    public const int MaxBodyBytes = 1024 * 1024;
    private const int MaxChunkLine = 1024;

    private enum State : byte { Head, FixedBody, ChunkSize, ChunkData, ChunkEnd, Trailer, CloseBody, Done, Failed }

    private byte[] _line = ArrayPool<byte>.Shared.Rent(MaxHeadBytes);
    private int _lineLength;
    private State _state;
    private byte[]? _body;
    private int _bodyLength;
    private long _remaining;

    /// <summary>The HTTP status code, once the head is read (0 before).</summary>
    public int StatusCode { get; private set; }

    /// <summary>Why the read failed (a short token for the log: "status", "head", "framing", "too-large", ...).</summary>
    public string Reason { get; private set; } = "";

    /// <summary>The whole body, once Complete.</summary>
    public ReadOnlySpan<byte> Body => _body is null ? default : _body.AsSpan(0, _bodyLength);

    /// <summary>Gives the arrays back to the pool (Body is empty after); the reader is done.</summary>
    public void Release()
    {
        if (_body is not null) ArrayPool<byte>.Shared.Return(_body);
        _body = null;
        _bodyLength = 0;
        if (_line.Length > 0) ArrayPool<byte>.Shared.Return(_line);
        _line = [];
        if (_state is not State.Done) _state = State.Failed;
    }

    /// <summary>Takes all of <paramref name="input"/> (bytes past a complete reply are ignored).</summary>
    public ReplyStatus Read(ReadOnlySpan<byte> input)
    {
        // Bounded: every pass consumes at least one octet or leaves the loop.
        while (!input.IsEmpty)
        {
            int used;
            switch (_state)
            {
                case State.Head:
                    used = ReadHead(input);
                    break;
                case State.FixedBody:
                case State.ChunkData:
                case State.CloseBody:
                    used = ReadBody(input);
                    break;
                case State.ChunkSize:
                case State.ChunkEnd:
                case State.Trailer:
                    used = ReadChunkLine(input);
                    break;
                default:
                    return Outcome;
            }
            input = input[used..];
            if (_state is State.Done or State.Failed) return Outcome;
        }
        return Outcome;
    }

    /// <summary>The server closed the connection: a close-framed body is complete now, anything else was cut short.</summary>
    public ReplyStatus ReadEnd()
    {
        if (_state == State.CloseBody) _state = State.Done;
        else if (_state != State.Done && _state != State.Failed) Fail("truncated");
        return Outcome;
    }

    private ReplyStatus Outcome => _state switch
    {
        State.Done => ReplyStatus.Complete,
        State.Failed => ReplyStatus.Error,
        _ => ReplyStatus.NeedMore,
    };

    private int Fail(string reason)
    {
        _state = State.Failed;
        Reason = reason;
        return 0;
    }

    // The head is gathered whole (at most MaxHeadBytes) and read once its empty line has come.
    private int ReadHead(ReadOnlySpan<byte> input)
    {
        int room = MaxHeadBytes - _lineLength;
        int take = Math.Min(room, input.Length);
        input[..take].CopyTo(_line.AsSpan(_lineLength));
        int searchFrom = Math.Max(0, _lineLength - 3);
        _lineLength += take;
        int end = _line.AsSpan(searchFrom, _lineLength - searchFrom).IndexOf("\r\n\r\n"u8);
        if (end < 0)
        {
            if (_lineLength == MaxHeadBytes) Fail("head-too-large");
            return take;
        }
        int headLength = searchFrom + end + 4;
        ParseHead(_line.AsSpan(0, headLength - 2));
        // What came after the head in this input is body: give back the part of `take` beyond the head.
        int used = take - (_lineLength - headLength);
        _lineLength = 0;
        return used;
    }

    // status-line = HTTP-version SP status-code SP [ reason-phrase ]   (RFC 9112 §4)
    // field-line  = field-name ":" OWS field-value OWS                  (RFC 9112 §5)
    private void ParseHead(ReadOnlySpan<byte> head)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> status = head[..lineEnd];
        if (status.Length < 12 || !status.StartsWith("HTTP/1."u8) || (status[7] != '0' && status[7] != '1') || status[8] != ' '
            || !Utf8Parser.TryParse(status.Slice(9, 3), out int code, out int digits) || digits != 3 || (status.Length > 12 && status[12] != ' '))
        {
            Fail("status-line");
            return;
        }
        StatusCode = code;
        if (code != 200)
        {
            Fail("status");
            return;
        }
        long contentLength = -1;
        bool chunked = false;
        ReadOnlySpan<byte> fields = head[(lineEnd + 2)..];
        while (!fields.IsEmpty)
        {
            int n = fields.IndexOf("\r\n"u8);
            ReadOnlySpan<byte> line = n < 0 ? fields : fields[..n];
            fields = n < 0 ? default : fields[(n + 2)..];
            int colon = line.IndexOf((byte)':');
            if (colon <= 0 || line[0] is (byte)' ' or (byte)'\t' || line.IndexOfAny((byte)'\r', (byte)'\n') >= 0 || line[..colon].IndexOfAny((byte)' ', (byte)'\t') >= 0)
            {
                Fail("header");
                return;
            }
            ReadOnlySpan<byte> name = line[..colon];
            ReadOnlySpan<byte> value = line[(colon + 1)..].Trim(" \t"u8);
            if (System.Text.Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (!Utf8Parser.TryParse(value, out long length, out int used) || used != value.Length || length < 0
                    || (contentLength >= 0 && contentLength != length))
                {
                    Fail("content-length");
                    return;
                }
                contentLength = length;
            }
            else if (System.Text.Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                if (chunked || !System.Text.Ascii.EqualsIgnoreCase(value, "chunked"u8))
                {
                    Fail("transfer-encoding");
                    return;
                }
                chunked = true;
            }
        }
        if (chunked && contentLength >= 0)
        {
            Fail("framing");
            return;
        }
        if (contentLength > MaxBodyBytes)
        {
            Fail("too-large");
            return;
        }
        if (chunked)
        {
            _state = State.ChunkSize;
            return;
        }
        if (contentLength >= 0)
        {
            _body = ArrayPool<byte>.Shared.Rent((int)Math.Max(contentLength, 1));
            _remaining = contentLength;
            _state = contentLength == 0 ? State.Done : State.FixedBody;
            return;
        }
        _state = State.CloseBody;
    }

    private int ReadBody(ReadOnlySpan<byte> input)
    {
        int take = _state == State.CloseBody ? input.Length : (int)Math.Min(_remaining, input.Length);
        if ((long)_bodyLength + take > MaxBodyBytes) return Fail("too-large");
        EnsureRoom(take);
        input[..take].CopyTo(_body.AsSpan(_bodyLength));
        _bodyLength += take;
        if (_state == State.CloseBody) return take;
        _remaining -= take;
        if (_remaining == 0) _state = _state == State.FixedBody ? State.Done : State.ChunkEnd;
        return take;
    }

    private void EnsureRoom(int more)
    {
        int need = _bodyLength + more;
        if (_body is not null && _body.Length >= need) return;
        byte[] grown = ArrayPool<byte>.Shared.Rent(Math.Min(MaxBodyBytes, Math.Max(need, Math.Max(4096, (_body?.Length ?? 0) * 2))));
        if (_body is not null)
        {
            _body.AsSpan(0, _bodyLength).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_body);
        }
        _body = grown;
    }

    // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*"0" [ chunk-ext ] CRLF;
    // trailer-section = *( field-line CRLF ) CRLF   (RFC 9112 §7.1). One line at a time, at most MaxChunkLine.
    private int ReadChunkLine(ReadOnlySpan<byte> input)
    {
        int lf = input.IndexOf((byte)'\n');
        int take = lf < 0 ? input.Length : lf + 1;
        if (_lineLength + take > MaxChunkLine) return Fail("chunk-line");
        input[..take].CopyTo(_line.AsSpan(_lineLength));
        _lineLength += take;
        if (lf < 0) return take;
        ReadOnlySpan<byte> line = _line.AsSpan(0, _lineLength);
        _lineLength = 0;
        if (line.Length < 2 || line[^2] != '\r') return Fail("chunk-line");
        line = line[..^2];
        switch (_state)
        {
            case State.ChunkEnd:
                if (!line.IsEmpty) return Fail("chunk-end");
                _state = State.ChunkSize;
                return take;
            case State.Trailer:
                if (line.IsEmpty) _state = State.Done;
                return take;
        }
        int semicolon = line.IndexOf((byte)';');
        ReadOnlySpan<byte> size = (semicolon < 0 ? line : line[..semicolon]).TrimEnd(" \t"u8);
        if (size.IsEmpty || size.Length > 8 || !Utf8Parser.TryParse(size, out uint length, out int used, 'x') || used != size.Length)
        {
            return Fail("chunk-size");
        }
        if (length == 0)
        {
            _state = State.Trailer;
            return take;
        }
        if ((long)_bodyLength + length > MaxBodyBytes) return Fail("too-large");
        _remaining = length;
        _state = State.ChunkData;
        return take;
    }
}
