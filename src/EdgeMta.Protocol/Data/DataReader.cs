namespace EdgeMta.Protocol.Data;

/// <summary>Where message text goes as the DATA or BDAT reader produces it (already dot-unstuffed).</summary>
public interface IMessageBodySink
{
    /// <summary>Takes the next run of message octets. The span is only valid during the call.</summary>
    void Write(ReadOnlySpan<byte> octets);
}

/// <summary>What a message with bare CR or bare LF in it gets (PROTOCOL.md, "Message data rules").</summary>
public enum BareNewlinePolicy
{
    /// <summary>Read to the end of data, then refuse the message with 550 5.6.0.</summary>
    Reject,
    /// <summary>Turn every bare CR and bare LF into CRLF in the stored message.</summary>
    Normalize,
}

/// <summary>Whether the reader has reached the end of the message.</summary>
public enum DataStatus
{
    /// <summary>All input was consumed; the message goes on in the next bytes received.</summary>
    NeedMore,
    /// <summary>The end of data was read; <c>consumed</c> covers it, and the bytes after it are commands.</summary>
    Complete,
}

/// <summary>
/// Reads DATA message text (RFC 5321 §4.1.1.4, §4.5.2) over arbitrary chunk boundaries.
/// API contract fixed for the session; the implementation arrives with the DATA reader work.
/// </summary>
public sealed class DataReader
{
    public DataReader(long maxMessageSize, BareNewlinePolicy bareNewlines)
    {
        MaxMessageSize = maxMessageSize;
        BareNewlines = bareNewlines;
    }

    public long MaxMessageSize { get; }
    public BareNewlinePolicy BareNewlines { get; }

    /// <summary>Octets of message text after unstuffing (and normalising), counted also past the cap.</summary>
    public long Size { get; private set; }

    /// <summary>The message passed <see cref="MaxMessageSize"/>: the sink got nothing after the cap; reading goes on to the end (552 5.3.4).</summary>
    public bool OverSize { get; private set; }

    /// <summary>A bare CR or bare LF was seen (under <see cref="BareNewlinePolicy.Reject"/> the message is refused with 550 5.6.0).</summary>
    public bool SawBareNewline { get; private set; }

    /// <summary>Header lines named <c>Received:</c> (case-insensitive) in the header section (RFC 5321 §6.3 loop detection).</summary>
    public int ReceivedHeaderCount { get; private set; }

    /// <summary>Lines longer than 1000 octets with their CRLF (accepted, counted).</summary>
    public int LongLineCount { get; private set; }

    /// <summary>Starts a new message: the reader is at the start of a line, just after the 354 reply.</summary>
    public void Reset() => throw new NotImplementedException();

    /// <summary>
    /// Consumes message text from <paramref name="input"/>, writing unstuffed octets to <paramref name="sink"/>.
    /// Returns <see cref="DataStatus.Complete"/> when <c>CRLF . CRLF</c> was read; <paramref name="consumed"/>
    /// then ends just after it. Otherwise every input byte is consumed (state carries over).
    /// </summary>
    public DataStatus Read(ReadOnlySpan<byte> input, IMessageBodySink sink, out int consumed) => throw new NotImplementedException();
}

/// <summary>
/// Reads the octets of BDAT chunks (RFC 3030): exactly the announced count, no dot-stuffing, with the same
/// size cap and header counting across all chunks of one message as <see cref="DataReader"/>.
/// </summary>
public sealed class BdatReader
{
    public BdatReader(long maxMessageSize)
    {
        MaxMessageSize = maxMessageSize;
    }

    public long MaxMessageSize { get; }
    public long Size { get; private set; }
    public bool OverSize { get; private set; }
    public int ReceivedHeaderCount { get; private set; }

    /// <summary>Octets of the current chunk still to read.</summary>
    public long ChunkRemaining { get; private set; }

    /// <summary>Starts a new message (the first BDAT of a transaction).</summary>
    public void Reset() => throw new NotImplementedException();

    /// <summary>Starts a chunk of <paramref name="length"/> octets announced by <c>BDAT length [LAST]</c>.</summary>
    public void BeginChunk(long length) => throw new NotImplementedException();

    /// <summary>Consumes up to <see cref="ChunkRemaining"/> octets; Complete when the chunk has been read whole.</summary>
    public DataStatus Read(ReadOnlySpan<byte> input, IMessageBodySink sink, out int consumed) => throw new NotImplementedException();
}
