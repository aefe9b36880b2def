// Contract: how a session reports what the client said, for the host's log and counters.
//
// The protocol core does no logging (SmtpSession.cs): it reports each command line as it parses it,
// before answering it, and the host decides what to do with it. Only command lines are reported: DATA
// text, BDAT chunk octets, the octets of a refused chunk and plaintext discarded after STARTTLS never
// are (README: message text stays out of the log). A line over the length limit whose start arrived in an
// earlier read is answered 500 5.5.6 unreported: its text is gone.
// The observer is called on the session's thread, inside Process; it must not block, throw or keep the
// span (it points into the host's receive buffer).
namespace EdgeMta.Protocol;

/// <summary>Hears each command line a session parses (the server's verbose log, per-verb counters).</summary>
public interface ISessionObserver
{
    /// <summary>
    /// A complete command line, before its reply is decided. <paramref name="verb"/> is the verb as parsed
    /// (<see cref="SmtpVerb.Unknown"/> for an unknown verb or a line refused as a whole: bare LF, NUL, empty,
    /// too long); <paramref name="line"/> is the line without its CRLF and trailing spaces, the BDAT command
    /// line alone for a chunk.
    /// </summary>
    void OnCommand(SmtpVerb verb, ReadOnlySpan<byte> line);
}
