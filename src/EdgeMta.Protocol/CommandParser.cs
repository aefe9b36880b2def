// Contract: frames one command line out of the bytes received and names its verb.
//
// RFC 5321 §2.3.8: a command line ends with CRLF; §4.5.3.1.4: at most 512 octets counting the CRLF
// (the limit is an option). The parser never acts on a line it cannot trust: a line with a NUL octet,
// or one ending in a bare LF (the CR missing, the smuggling tell of RFC 5321 §4.1.1.4 / SMTP smuggling
// reports of 2023), is an Error with nothing in it interpreted. A line with no LF yet is Incomplete and
// consumes nothing, so every prefix of a valid line is Incomplete. When the limit is reached with no LF
// in sight the line is TooLong and the caller skips to its end (it is answered 500 5.5.6, never run).
// It does not look at state or arguments; it allocates nothing.
using System.Runtime.CompilerServices;

namespace EdgeMta.Protocol;

/// <summary>The answer of every Try* parser: done, needs more bytes, or refused.</summary>
public enum ParseStatus : byte
{
    Complete,
    Incomplete,
    Error,
}

/// <summary>Why a command line was refused before its verb was looked at.</summary>
public enum LineError : byte
{
    None,
    /// <summary>Over the line limit (500 5.5.6). When <see cref="SmtpCommand.LineEnded"/> is false the rest of the line is still to come.</summary>
    TooLong,
    /// <summary>The line ended with LF not preceded by CR (500 5.5.2).</summary>
    BareLineFeed,
    /// <summary>The line holds a NUL octet (500 5.5.2).</summary>
    Nul,
    /// <summary>Nothing before the CRLF (500 5.5.2).</summary>
    Empty,
}

/// <summary>One framed command line: offsets into the input it was parsed from.</summary>
public readonly struct SmtpCommand
{
    public SmtpCommand(SmtpVerb verb, int lineLength, int argumentStart, int consumed, LineError error, bool lineEnded)
    {
        Verb = verb;
        LineLength = lineLength;
        ArgumentStart = argumentStart;
        Consumed = consumed;
        Error = error;
        LineEnded = lineEnded;
    }

    public SmtpVerb Verb { get; }
    /// <summary>Octets of the line before its CRLF.</summary>
    public int LineLength { get; }
    /// <summary>Where the argument starts in the line (after the verb and its spaces).</summary>
    public int ArgumentStart { get; }
    /// <summary>Octets of input this line took, its line ending included.</summary>
    public int Consumed { get; }
    public LineError Error { get; }
    /// <summary>False only for a TooLong line whose end has not arrived yet.</summary>
    public bool LineEnded { get; }

    public override string ToString() => $"{Verb} line={LineLength} arg@{ArgumentStart} consumed={Consumed} {Error} ended={LineEnded}";
}

/// <summary>The command line framer (the fast parser; see the tests for the slow reference it is fuzzed against).</summary>
public static class CommandParser
{
    /// <summary>RFC 5321 §4.5.3.1.4: "The maximum total length of a command line including the command word and the &lt;CRLF&gt; is 512 octets."</summary>
    public const int DefaultLineLimit = 512;

    /// <summary>
    /// command-line = verb [SP argument] CRLF        ; RFC 5321 §4.1.1, at most <paramref name="lineLimit"/> octets with CRLF
    /// Complete: a whole line (maybe with an <see cref="SmtpCommand.Error"/>); Incomplete: no LF yet and under the
    /// limit, nothing consumed; Error: the limit reached with no LF, all input consumed (TooLong, line not ended).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ParseStatus TryParse(ReadOnlySpan<byte> input, int lineLimit, out SmtpCommand command)
    {
        // Only the first lineLimit octets can hold the LF of an acceptable line.
        int window = input.Length < lineLimit ? input.Length : lineLimit;
        int lf = input[..window].IndexOf((byte)'\n');
        if (lf < 0)
        {
            if (input.Length < lineLimit)
            {
                command = default;
                return ParseStatus.Incomplete;
            }
            // lineLimit octets and no LF: with its line ending the line would exceed the limit.
            int end = input.IndexOf((byte)'\n');
            bool ended = end >= 0;
            command = new SmtpCommand(SmtpVerb.Unknown, ended ? end : input.Length, 0, ended ? end + 1 : input.Length, LineError.TooLong, ended);
            return ended ? ParseStatus.Complete : ParseStatus.Error;
        }

        int consumed = lf + 1;
        if (lf == 0 || input[lf - 1] != (byte)'\r')
        {
            command = new SmtpCommand(SmtpVerb.Unknown, lf, 0, consumed, LineError.BareLineFeed, true);
            return ParseStatus.Complete;
        }

        int length = lf - 1;
        ReadOnlySpan<byte> line = input[..length];
        if (length == 0)
        {
            command = new SmtpCommand(SmtpVerb.Unknown, 0, 0, consumed, LineError.Empty, true);
            return ParseStatus.Complete;
        }
        if (line.Contains((byte)0))
        {
            command = new SmtpCommand(SmtpVerb.Unknown, length, 0, consumed, LineError.Nul, true);
            return ParseStatus.Complete;
        }

        // Trailing spaces are not part of the argument (clients such as old Outlook send "DATA ").
        while (length > 0 && line[length - 1] == (byte)' ')
        {
            length--;
        }
        line = line[..length];
        SmtpVerb verb = VerbOpcodes.Recognise(line, out int argumentStart);
        command = new SmtpCommand(verb, length, argumentStart, consumed, LineError.None, true);
        return ParseStatus.Complete;
    }
}
