// Contract: the one DNS question the blocklists ask (RFC 5782 §2: an A query for the reversed client address
// under the zone), and its outcomes as values. A resolver never throws from Query and never blocks the calling
// thread: the answer comes later, exactly once, through the sink, on whatever thread the resolver completes on
// (or at once, inline, for a question it cannot send). Everything that can go wrong with DNS is an outcome:
// NXDOMAIN, SERVFAIL or REFUSED, no answer by the deadline, or bytes that are not a DNS answer.
namespace EdgeMta.Server.Dns;

/// <summary>How a DNS question ended.</summary>
public enum DnsResult : byte
{
    /// <summary>RCODE 0 (RFC 1035 §4.1.1): the A records, possibly none (NODATA).</summary>
    Answered,

    /// <summary>RCODE 3, the name does not exist: the client is not on this list.</summary>
    NoSuchName,

    /// <summary>SERVFAIL, REFUSED or any other error code, or a truncated answer.</summary>
    ServerFailure,

    /// <summary>No usable answer by the deadline.</summary>
    Timeout,

    /// <summary>An answer to this question that could not be parsed.</summary>
    Malformed,

    /// <summary>Not sent: the name is not a valid DNS name, or too many questions are in flight.</summary>
    NotSent,
}

/// <summary>One question's outcome: the result, the A records (big-endian IPv4, 127.0.0.2 = 0x7F000002) and the
/// TTL to keep it for (the smallest of the records', the negative TTL of RFC 2308 §5 for NXDOMAIN).</summary>
public readonly record struct DnsAnswer(DnsResult Result, uint[] Addresses, TimeSpan Ttl)
{
    public static DnsAnswer Failed(DnsResult result) => new(result, [], TimeSpan.Zero);
}

/// <summary>Receives answers; <paramref name="token"/> is the caller's, given back unchanged.</summary>
public interface IDnsAnswerSink
{
    /// <summary>Must not block: it runs on the resolver's receive or timer thread.</summary>
    void OnAnswer(int token, DnsAnswer answer);
}

/// <summary>Asks A questions asynchronously.</summary>
public interface IDnsResolver
{
    /// <summary>Starts an A query for <paramref name="name"/>; the outcome goes to <paramref name="sink"/> once.</summary>
    void Query(string name, IDnsAnswerSink sink, int token);
}
