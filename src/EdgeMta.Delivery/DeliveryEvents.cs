// What the delivery agent reports, one call per event, for the server's log lines and counters
// (docs/DELIVERY.md "Log lines"). The server formats; the agent only says what happened.
// Calls come from the agent's thread and from transport threads; an implementation must not block.
namespace EdgeMta.Delivery;

public interface IDeliveryEvents
{
    void Delivered(string id, string recipient, string relay, string reply, double delaySeconds, int attempts);
    void Deferred(string id, string recipient, string relay, string reply, double nextSeconds);
    void Failed(string id, string recipient, string reply);
    void Bounce(string bounceId, string forId, string to);
    void PossibleDuplicate(string id, string relay, string reason);
    void RelayDead(string relay, string reason);
    void RelayAlive(string relay);
    /// <summary>Copy-forward emptied segment <paramref name="sequence"/>: <paramref name="messages"/> live messages,
    /// <paramref name="bytes"/> message bytes copied to the tail (FORMAT.md "Copy-forward").</summary>
    void SegmentCompacted(long sequence, int messages, long bytes) { }
    /// <summary>Journal file <paramref name="sequence"/> was deleted during the run: every segment its records named
    /// (all at most <paramref name="maxSegment"/>) is gone (FORMAT.md "Delivery journal", "Retention").</summary>
    void JournalFileDeleted(long sequence, long maxSegment) { }
    /// <summary>Something the operator should see that is not one of the above (a journal write failed).</summary>
    void Trouble(string what);
}

/// <summary>The agent's settings, from the serve flags (docs/DELIVERY.md "Flags").</summary>
public sealed record DeliveryOptions
{
    public required IReadOnlyList<RelayEndpoint> Relays { get; init; }
    /// <summary>--hostname: EHLO name, loop detection, the bounces' Reporting-MTA.</summary>
    public required string Hostname { get; init; }
    public RelayTlsMode Tls { get; init; } = RelayTlsMode.May;
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? TrustAnchors { get; init; }
    public int MaxRecipients { get; init; } = 50;
    public SchedulerOptions Scheduler { get; init; } = new();
    public TimeProvider Clock { get; init; } = TimeProvider.System;
    /// <summary>How long an outcome's journal record may wait for others to share its durable write (JournalWriter):
    /// the message's space is held that much longer, and the spool's commits meet fewer journal syncs on the disk.</summary>
    public TimeSpan JournalLinger { get; init; } = TimeSpan.FromMilliseconds(10);
    /// <summary>The journal's file calls (tests inject failures); null: the system's.</summary>
    internal EdgeMta.Spool.SpoolIo? JournalIo { get; init; }
    /// <summary>Each journal file's size (tests use a few KiB so that a handful of messages rolls files).</summary>
    internal long JournalFileSize { get; init; } = 4 << 20;
}
