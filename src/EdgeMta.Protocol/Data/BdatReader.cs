// The BDAT reader (RFC 3030 §2-§3): each "BDAT n [LAST]" is followed by exactly n octets of message, with
// no dot-stuffing and no end-of-data sequence, so nothing in the octets is interpreted: they go to the
// sink as they are, in one Write per Read. What it shares with the DATA reader is the bookkeeping over the
// whole message (all chunks of one transaction): Size and the cap (RFC 1870: past MaxMessageSize the sink
// has had exactly the first MaxMessageSize octets and gets no more, reading goes on, 552 5.3.4 after the
// LAST chunk) and the count of "Received:" header lines (RFC 5321 §6.3), whose header section may span
// chunks. Bare CR and LF are not looked for: RFC 3030 carries binary and 8-bit data as they are.
// A line, for the header count, is as in DataReader: it starts after a CRLF; the header section ends at
// the first line that is exactly CRLF.
namespace EdgeMta.Protocol.Data;

/// <summary>
/// Reads the octets of BDAT chunks (RFC 3030): exactly the announced count, no dot-stuffing, with the same
/// size cap and header counting across all chunks of one message as <see cref="DataReader"/>. Not thread-safe.
/// </summary>
public sealed class BdatReader
{
    private bool _inHeaders;
    private bool _pendingCr;       // the last header octet seen was a CR
    private byte _lineOctets;      // octets of the current header line so far, counted up to 2
    private sbyte _receivedMatch;  // octets of "received:" matched at this line's start; -1 when not a candidate

    public BdatReader(long maxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageSize);
        MaxMessageSize = maxMessageSize;
        Reset();
    }

    public long MaxMessageSize { get; }

    /// <summary>Octets of all chunks of the message so far, counted also past the cap.</summary>
    public long Size { get; private set; }

    /// <summary>The message passed <see cref="MaxMessageSize"/>: the sink got nothing after the cap (552 5.3.4 after LAST).</summary>
    public bool OverSize { get; private set; }

    /// <summary>Header lines named <c>Received:</c> (case-insensitive) in the header section, over all chunks.</summary>
    public int ReceivedHeaderCount { get; private set; }

    /// <summary>Octets of the current chunk still to read.</summary>
    public long ChunkRemaining { get; private set; }

    /// <summary>Starts a new message (the first BDAT of a transaction).</summary>
    public void Reset()
    {
        Size = 0;
        OverSize = false;
        ReceivedHeaderCount = 0;
        ChunkRemaining = 0;
        _inHeaders = true;
        _pendingCr = false;
        _lineOctets = 0;
        _receivedMatch = 0;
    }

    /// <summary>Starts a chunk of <paramref name="length"/> octets announced by <c>BDAT length [LAST]</c>.</summary>
    public void BeginChunk(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ChunkRemaining = length;
    }

    /// <summary>
    /// Consumes up to <see cref="ChunkRemaining"/> octets; Complete when the chunk has been read whole (at once,
    /// with nothing consumed, when no octets of the chunk remain). The bytes after the chunk are the next command.
    /// </summary>
    public DataStatus Read(ReadOnlySpan<byte> input, IMessageBodySink sink, out int consumed)
    {
        ArgumentNullException.ThrowIfNull(sink);
        int take = (int)Math.Min(input.Length, ChunkRemaining);
        ReadOnlySpan<byte> octets = input[..take];
        if (_inHeaders)
        {
            ScanHeaders(octets);
        }

        if (!octets.IsEmpty)
        {
            long room = MaxMessageSize - Size;
            Size += octets.Length;
            if (room >= octets.Length)
            {
                sink.Write(octets);
            }
            else
            {
                OverSize = true;
                if (room > 0)
                {
                    sink.Write(octets[..(int)room]);
                }
            }
        }

        ChunkRemaining -= take;
        consumed = take;
        return ChunkRemaining == 0 ? DataStatus.Complete : DataStatus.NeedMore;
    }

    /// <summary>
    /// Follows the header section line by line: the octets of a line after its name has been ruled in or out
    /// are skipped with a vectorised search for the next LF.
    /// </summary>
    private void ScanHeaders(ReadOnlySpan<byte> octets)
    {
        int i = 0;
        while (i < octets.Length)
        {
            if (_receivedMatch < 0)
            {
                int lf = octets[i..].IndexOf((byte)'\n');
                if (lf < 0)
                {
                    NoteSkipped(octets[i..]);
                    return;
                }

                NoteSkipped(octets.Slice(i, lf));
                i += lf;
            }

            byte b = octets[i++];
            if (b == (byte)'\n' && _pendingCr)
            {
                if (_lineOctets == 1)
                {
                    _inHeaders = false; // a line that is exactly CRLF: the body begins (RFC 5322 §2.1)
                    return;
                }

                _pendingCr = false;
                _lineOctets = 0;
                _receivedMatch = 0;
                continue;
            }

            if (_receivedMatch >= 0)
            {
                _receivedMatch = ReceivedField.Advance(_receivedMatch, b);
                if (_receivedMatch == ReceivedField.Matched)
                {
                    ReceivedHeaderCount++;
                    _receivedMatch = -1;
                }
            }

            _pendingCr = b == (byte)'\r';
            if (_lineOctets < 2)
            {
                _lineOctets++;
            }
        }
    }

    /// <summary>Accounts for header octets that hold no LF, passed over without a look at each.</summary>
    private void NoteSkipped(ReadOnlySpan<byte> run)
    {
        if (run.IsEmpty)
        {
            return;
        }

        _pendingCr = run[^1] == (byte)'\r';
        _lineOctets = (byte)Math.Min(2, _lineOctets + Math.Min(run.Length, 2));
    }
}
