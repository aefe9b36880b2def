// Contract: what the SMTP sessions of one server answered and accepted since start, for the host to publish.
// Plain counters in the shape of EdgeMta.Transport's TransportCounters: Interlocked on write, Volatile on
// read, no allocation, no metrics library (docs/OPERATIONS.md names the series).
//  - replies by code: every reply the server wrote, counted once (the last line of a multi-line reply),
//    by its three digits; RFC 5321 §4.2 gives the first digit 2 to 5, so 400 slots hold every code;
//  - accepted messages: count, bytes and a size histogram with postfix_exporter's buckets (1e3 to 1e9
//    bytes), so a dashboard built for Postfix reads these the same way. The count is the histogram's, not
//    a third atomic per message.
// What it does not do: commands by verb (the protocol's CommandCounters, counted where a line is executed),
// connections and TLS (the transport's TransportCounters).
namespace EdgeMta.Server;

/// <summary>Replies by code and accepted messages.</summary>
public sealed class SessionCounters
{
    /// <summary>The lowest and highest reply code kept (RFC 5321 §4.2.1: 2yz to 5yz).</summary>
    public const int LowestCode = 200, HighestCode = 599;

    /// <summary>Upper bounds of the message-size buckets, in bytes; a last bucket holds the rest.</summary>
    public static ReadOnlySpan<long> MessageSizeBucketBounds =>
        [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

    private readonly long[] _replies = new long[HighestCode - LowestCode + 1];
    private readonly long[] _sizeBuckets = new long[MessageSizeBucketBounds.Length + 1];
    private long _acceptedBytes;
    private long _earlyTalkers;
    private long _nonSmtpClients;

    /// <summary>Sessions closed because the client talked before the final greeting line (--greet-delay).</summary>
    public long EarlyTalkers => Volatile.Read(ref _earlyTalkers);

    /// <summary>Sessions closed because the client's first words were a web or proxy request.</summary>
    public long NonSmtpClients => Volatile.Read(ref _nonSmtpClients);

    /// <summary>Replies written with <paramref name="code"/> (0 for a code outside 200..599).</summary>
    public long Replies(int code) => code is >= LowestCode and <= HighestCode ? Volatile.Read(ref _replies[code - LowestCode]) : 0;

    /// <summary>Accepted messages per size bucket (not cumulative), into <paramref name="counts"/> (bounds + 1 long).</summary>
    public void ReadMessageSizeBuckets(Span<long> counts)
    {
        for (int i = 0; i < _sizeBuckets.Length && i < counts.Length; i++) counts[i] = Volatile.Read(ref _sizeBuckets[i]);
    }

    /// <summary>Messages committed to the spool and answered 250.</summary>
    public long MessagesAccepted
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _sizeBuckets.Length; i++) sum += Volatile.Read(ref _sizeBuckets[i]);
            return sum;
        }
    }

    /// <summary>Bytes of those messages, as the spool holds them (our Received: header included).</summary>
    public long AcceptedBytes => Volatile.Read(ref _acceptedBytes);

    internal void CountScreenedOut(EdgeMta.Protocol.ScreenedOut reason)
    {
        if (reason == EdgeMta.Protocol.ScreenedOut.EarlyTalker) Interlocked.Increment(ref _earlyTalkers);
        else if (reason == EdgeMta.Protocol.ScreenedOut.NonSmtp) Interlocked.Increment(ref _nonSmtpClients);
    }

    internal void CountReply(int code)
    {
        if (code is >= LowestCode and <= HighestCode) Interlocked.Increment(ref _replies[code - LowestCode]);
    }

    internal void MessageAccepted(long size)
    {
        ReadOnlySpan<long> bounds = MessageSizeBucketBounds;
        int i = 0;
        while (i < bounds.Length && size > bounds[i]) i++;
        Interlocked.Increment(ref _sizeBuckets[i]);
        Interlocked.Add(ref _acceptedBytes, size);
    }
}
