// Contract: how many command lines the sessions of one server answered, by verb, since start. Plain
// counters in the shape of EdgeMta.Transport's TransportCounters: Interlocked on write, Volatile on read,
// no allocation, no metrics library (the host publishes them; docs/OPERATIONS.md names the series).
// Counted where the session executes a line, so a command is counted once whatever its reply: refused,
// out of sequence or accepted. Message text (DATA, BDAT chunks) is never a command and never counted.
// A line too long to parse, one with a NUL, or any line not starting with a known verb counts as Unknown,
// and so does a lone "." outside DATA.
namespace EdgeMta.Protocol;

/// <summary>Commands answered by every session sharing one <see cref="SmtpSessionOptions"/>, by verb.</summary>
public sealed class CommandCounters
{
    private readonly long[] _byVerb = new long[VerbTable.Count];

    /// <summary>Commands seen with <paramref name="verb"/> (Unknown: every line that named no known verb).</summary>
    public long this[SmtpVerb verb] => Volatile.Read(ref _byVerb[(int)verb]);

    internal void Count(SmtpVerb verb) => Interlocked.Increment(ref _byVerb[(int)verb]);
}
