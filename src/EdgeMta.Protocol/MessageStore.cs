// Contract: the seam between the session and durable storage. The session never waits on I/O.
//
// The session calls Begin when a message's data starts (DATA accepted, or the first BDAT), then Append
// with the message text (the Received: header first, then the unstuffed client text), and Abort when
// the message is abandoned (too big, refused, RSET, QUIT, client gone). At the end of data the session
// returns SessionStatus.AwaitingCommit; the host commits the message durably (asynchronously, group
// commit) and then calls SmtpSession.CompleteMessage with the outcome. Only then is 250 sent
// (PROTOCOL.md: "Only after the spool write is durable is 250 sent").
namespace EdgeMta.Protocol;

public enum StoreBeginStatus : byte
{
    Started,
    /// <summary>451 4.3.0: a local error (the spool could not open a record).</summary>
    Failed,
    /// <summary>452 4.3.1: no space.</summary>
    Full,
}

/// <summary>What <see cref="IMessageStore.Begin"/> answers: a queue id (copied by the session at once) or a failure.</summary>
public readonly ref struct StoreBeginResult
{
    public StoreBeginResult(StoreBeginStatus status, ReadOnlySpan<byte> queueId)
    {
        Status = status;
        QueueId = queueId;
    }

    public StoreBeginStatus Status { get; }
    /// <summary>ASCII, at most 64 octets, no spaces.</summary>
    public ReadOnlySpan<byte> QueueId { get; }

    public static StoreBeginResult Started(ReadOnlySpan<byte> queueId) => new(StoreBeginStatus.Started, queueId);
    public static StoreBeginResult Failed => new(StoreBeginStatus.Failed, default);
    public static StoreBeginResult Full => new(StoreBeginStatus.Full, default);
}

/// <summary>What <see cref="IMessageStore.Readiness"/> answers at MAIL.</summary>
public enum StoreReadiness : byte
{
    Ready,
    /// <summary>452 4.3.1: below the free-space (or free-inode) floor.</summary>
    Full,
    /// <summary>451 4.3.0: the store failed a write moments ago; the client tries again later.</summary>
    Failing,
}

/// <summary>How the host's durable write of a message ended.</summary>
public enum CommitOutcome : byte
{
    /// <summary>250 2.0.0 OK queued as &lt;id&gt; (the id Begin gave).</summary>
    Committed,
    /// <summary>451 4.3.0.</summary>
    Failed451,
    /// <summary>452 4.3.1.</summary>
    Full452,
    /// <summary>The host's own reply, given to CompleteMessage (a content check's 550 5.7.1 or 451 4.7.1,
    /// docs/SCREENING.md): the message was not stored.</summary>
    Refused,
}

/// <summary>Where a session's messages go; one per connection, or shared if the implementation is thread-safe per session.</summary>
public interface IMessageStore
{
    /// <summary>
    /// Whether a new message can be stored now (a cheap check: the spool samples free space periodically and
    /// remembers its last error for a few seconds). Read at MAIL, so a client learns before sending its data
    /// (docs/PROTOCOL.md, "spool write fails"): Full is 452 4.3.1, Failing 451 4.3.0. Begin still reports Full or
    /// Failed if things change in between.
    /// </summary>
    StoreReadiness Readiness { get; }

    StoreBeginResult Begin(Envelope envelope);
    /// <summary>Message octets, unstuffed, the Received: header first. The span is valid only during the call.</summary>
    void Append(ReadOnlySpan<byte> octets);
    /// <summary>The message begun last is abandoned; nothing of it may be kept.</summary>
    void Abort();
}
