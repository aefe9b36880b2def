// The DATA reader: turns the octets a client sends after 354 into the message text the spool stores.
//
// What it does (RFC 5321 §4.1.1.4, §4.5.2, PROTOCOL.md "Message data rules"):
//  - finds the end of data, which is exactly <CRLF>.<CRLF> (or ".<CRLF>" as the very first line: an empty
//    message), over any split of the input into Read calls, including inside the terminator;
//  - dot-unstuffs: a line starting with "." that is not the terminator loses its first dot;
//  - refuses SMTP smuggling: a bare CR or a bare LF is never part of an end-of-data sequence, so
//    "\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r" and "\r\n.\r"+other all stay message text. Under Reject the octets
//    pass as they are and SawBareNewline asks the session for 550 5.6.0 after the real end; under Normalize
//    every bare CR and every bare LF is written as CRLF (SawBareNewline is set too, for the log);
//  - counts Size after unstuffing and normalising, also past MaxMessageSize; once Size passes the cap the
//    sink has had exactly the first MaxMessageSize octets and gets nothing more (552 5.3.4 afterwards);
//  - counts "Received:" header lines (RFC 5321 §6.3 loop detection) and lines longer than 1000 octets
//    with their CRLF (RFC 5321 §4.5.3.1.6: accepted, counted).
//
// What counts as a line (one rule for the terminator, unstuffing, Received: and long lines): a line starts
// at the start of data or just after a CRLF the client sent. A bare CR or LF, even one written out as CRLF
// under Normalize, does not start a line: "a\n..b" is stored "a\r\n..b" (no dot removed), "a\n.\r\n" does
// not end data, and "x\nReceived: y" is no header line. Senders of bare LF are scripts that do not
// dot-stuff, so leaving their dots alone keeps their text; a line as the client sent it also keeps the
// terminator and the unstuffing on one definition, so they cannot disagree (that disagreement between two
// servers is what smuggling exploits). Line lengths are measured as sent (dot and CRLF included).
// The header section runs to the first line that is exactly CRLF; its "Received:" lines are matched
// case-insensitively on the unstuffed text, so continuation lines (they begin with white space) never count.
//
// What it does not do: it stores nothing, parses no header beyond the field name "Received", keeps no
// copy of the input (no allocation per call or per message), and never fails: every octet sequence is a
// message or the prefix of one. The session applies the policy (552, 550 5.6.0, 554 5.4.6) after Complete.
//
// How it is fast: DataReader.VectorScan.cs classifies 64 octets at a time into CR, LF and "." bit masks
// and stops only where something happens (a dot at a line start, a bare CR or LF, a header line start);
// everything between goes to the sink as one Write. This file holds the byte-at-a-time state machine that
// handles those places, the buffer tails and the split points.
using System.Runtime.CompilerServices;

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
/// Reads DATA message text (RFC 5321 §4.1.1.4, §4.5.2) over arbitrary chunk boundaries. One instance serves
/// one session: call <see cref="Reset"/> before each message (a new reader starts reset). Not thread-safe.
/// </summary>
public sealed partial class DataReader
{
    /// <summary>Where the reader stands in the current line (see the file's contract for what a line is).</summary>
    private enum Phase : byte
    {
        /// <summary>At the start of data or just after a CRLF the client sent.</summary>
        LineStart,
        /// <summary>A "." opened the line; it is dropped whatever follows (unstuffed, or the terminator's).</summary>
        Dot,
        /// <summary>".\r" opened the line: an LF now ends data; anything else makes that CR bare.</summary>
        DotCr,
        /// <summary>Inside a line; <see cref="_pendingCr"/> says whether the last octet was a CR.</summary>
        InLine,
    }

    /// <summary>A line of more than this many octets, CRLF included, is long (RFC 5321 §4.5.3.1.6).</summary>
    public const int MaxLineLength = 1000;

    private static ReadOnlySpan<byte> Cr => "\r"u8;
    private static ReadOnlySpan<byte> Lf => "\n"u8;
    private static ReadOnlySpan<byte> CrLf => "\r\n"u8;

    private Phase _phase;
    private bool _pendingCr;      // InLine: the previous octet was a CR, already passed on in the run
    private bool _inHeaders;      // no line that is exactly CRLF seen yet
    private bool _complete;
    private sbyte _receivedMatch; // header line: octets of "received:" matched so far; -1 when not a candidate
    private long _position;       // stream offset of input[0] in the current Read
    private long _lineStart;      // stream offset where the current line began

    public DataReader(long maxMessageSize, BareNewlinePolicy bareNewlines)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageSize);
        MaxMessageSize = maxMessageSize;
        BareNewlines = bareNewlines;
        Reset();
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

    /// <summary>Octets read since <see cref="Reset"/>, the terminator included once the message is complete.</summary>
    public long OctetsRead => _position;

    /// <summary>
    /// Tests and the byte-loop benchmark turn the vector scan off to run the state machine alone; both paths
    /// must give identical results.
    /// </summary>
    internal bool UseVectorScan { get; set; } = true;

    /// <summary>Starts a new message: the reader is at the start of a line, just after the 354 reply.</summary>
    public void Reset()
    {
        _phase = Phase.LineStart;
        _pendingCr = false;
        _inHeaders = true;
        _complete = false;
        _receivedMatch = -1;
        _position = 0;
        _lineStart = 0;
        Size = 0;
        OverSize = false;
        SawBareNewline = false;
        ReceivedHeaderCount = 0;
        LongLineCount = 0;
    }

    /// <summary>
    /// Consumes message text from <paramref name="input"/>, writing unstuffed octets to <paramref name="sink"/>.
    /// Returns <see cref="DataStatus.Complete"/> when <c>CRLF . CRLF</c> was read; <paramref name="consumed"/>
    /// then ends just after it. Otherwise every input byte is consumed (state carries over).
    /// </summary>
    /// <exception cref="InvalidOperationException">The message was already complete and <see cref="Reset"/> was not called.</exception>
    public DataStatus Read(ReadOnlySpan<byte> input, IMessageBodySink sink, out int consumed)
    {
        ArgumentNullException.ThrowIfNull(sink);
        if (_complete)
        {
            throw new InvalidOperationException("The message is complete; call Reset before reading the next one.");
        }

        bool normalize = BareNewlines == BareNewlinePolicy.Normalize;
        bool vectors = UseVectorScan && LineMasks.IsSupported;
        int runStart = 0; // input[runStart..i] is message text not yet passed to the sink
        int i = 0;
        while (i < input.Length)
        {
            if (vectors && _phase == Phase.InLine && !_pendingCr && _receivedMatch < 0)
            {
                // Stops on the next octet that needs the state machine, or at the end of the input.
                i = ScanToNextEvent(input, i);
                if (i == input.Length)
                {
                    break;
                }
            }

            byte b = input[i];
            switch (_phase)
            {
                case Phase.LineStart:
                    if (_inHeaders)
                    {
                        _receivedMatch = 0;
                    }

                    if (b == (byte)'.')
                    {
                        // RFC 5321 §4.5.2: the first dot of a line goes, whether it stuffs or terminates.
                        Emit(input[runStart..i], sink);
                        runStart = i + 1;
                        _phase = Phase.Dot;
                        i++;
                        continue;
                    }

                    _phase = Phase.InLine;
                    break;

                case Phase.Dot:
                    if (b == (byte)'\r')
                    {
                        runStart = i + 1; // held back: it is the terminator's CR if an LF follows
                        _phase = Phase.DotCr;
                        i++;
                        continue;
                    }

                    _phase = Phase.InLine;
                    break;

                case Phase.DotCr:
                    if (b == (byte)'\n')
                    {
                        consumed = i + 1;
                        _position += consumed;
                        _complete = true;
                        return DataStatus.Complete;
                    }

                    // ".\r" + other: the held-back CR is bare and stays message text (never an end of data).
                    SawBareNewline = true;
                    runStart = i;
                    Emit(normalize ? CrLf : Cr, sink);
                    _receivedMatch = -1;
                    _phase = Phase.InLine;
                    break;
            }

            // InLine: b is message text.
            if (_pendingCr)
            {
                _pendingCr = false;
                if (b == (byte)'\n')
                {
                    EndLine(_position + i);
                    _phase = Phase.LineStart;
                    i++;
                    continue;
                }

                // The CR before b was bare; it already went out in the run, its LF goes in now.
                SawBareNewline = true;
                if (normalize)
                {
                    Emit(input[runStart..i], sink);
                    runStart = i;
                    Emit(Lf, sink);
                }
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

            if (b == (byte)'\r')
            {
                _pendingCr = true;
            }
            else if (b == (byte)'\n')
            {
                SawBareNewline = true;
                if (normalize)
                {
                    Emit(input[runStart..i], sink);
                    runStart = i; // the LF itself stays in the next run, after the CR written here
                    Emit(Cr, sink);
                }
            }

            i++;
        }

        Emit(input[runStart..], sink);
        _position += input.Length;
        consumed = input.Length;
        return DataStatus.NeedMore;
    }

    /// <summary>A CRLF the client sent ends the line whose LF is at stream offset <paramref name="lf"/>.</summary>
    private void EndLine(long lf)
    {
        long length = lf + 1 - _lineStart;
        if (length > MaxLineLength)
        {
            LongLineCount++;
        }

        if (length == 2)
        {
            _inHeaders = false; // RFC 5322 §2.1: the first empty line ends the header section
        }

        _lineStart = lf + 1;
        _receivedMatch = -1;
    }

    /// <summary>Passes message text on, counting it, and cuts the sink off at <see cref="MaxMessageSize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Emit(ReadOnlySpan<byte> octets, IMessageBodySink sink)
    {
        if (octets.IsEmpty)
        {
            return;
        }

        long room = MaxMessageSize - Size;
        Size += octets.Length;
        if (room >= octets.Length)
        {
            sink.Write(octets);
            return;
        }

        OverSize = true;
        if (room > 0)
        {
            sink.Write(octets[..(int)room]);
        }
    }
}
