// Configuration, read once at MessageSpool.Open into values the hot path only reads.
namespace EdgeMta.Spool;

public enum SpoolSync
{
    /// <summary>Every commit is on disk before it is reported (RFC 5321 §6.1); concurrent commits share one flush.</summary>
    Always,
    /// <summary>No flush at all. For benchmarks only: a crash loses accepted mail.</summary>
    None,
}

public enum CommitResult
{
    /// <summary>On disk: the session may answer 250.</summary>
    Committed,
    /// <summary>An I/O error: answer 451 4.3.0 (RFC 3463 §3.4), never 5xx.</summary>
    Failed,
    /// <summary>Out of space: answer 452 4.3.1 (RFC 3463 §3.4, RFC 5321 §4.2.5).</summary>
    Full,
}

public sealed record SpoolOptions
{
    public required string Directory { get; init; }
    public SpoolSync Sync { get; init; } = SpoolSync.Always;
    /// <summary>Size of a segment file; a region bigger than a segment gets a segment of its own.</summary>
    public long SegmentSize { get; init; } = 64L << 20;
    /// <summary>The largest message (data octets) the spool must hold. The server sets it from the session's
    /// limit; the spool commands and tests take this 25 MiB.</summary>
    public int MaxMessageSize { get; init; } = 26_214_400;
    /// <summary>Room for the envelope on top of the message (1000 recipients of 256 octets fit easily).</summary>
    public int MaxEnvelopeSize { get; init; } = 1 << 20;
    /// <summary>The chunk a message gathers in (rounded up to 4 KiB): a message that fits is written at commit,
    /// packed next to its neighbours; a bigger one streams through a ring of these (SpoolMessage.cs).</summary>
    public int FirstBufferSize { get; init; } = 32 << 10;
    /// <summary>Below this many free bytes on the spool's filesystem, Readiness says Full (MAIL gets 452 4.3.1).
    /// Default: one segment plus one maximum message.</summary>
    public long MinimumFreeBytes { get; init; } = -1;
    /// <summary>statvfs is called at most once per interval.</summary>
    public int FreeSpaceCheckIntervalMs { get; init; } = 1000;
    /// <summary>After a storage error (a failed write, segment creation or flush), MessageSpool.Readiness says
    /// Failing (MAIL gets 451 4.3.0) for this long, so clients stop sending whole messages into a broken disk.
    /// Then the next message tries for real. 5 s: a few retries of a busy client, far below any retry interval.</summary>
    public int FailingWindowMs { get; init; } = 5000;
    /// <summary>Time for the free-space interval and the failing window (tests pass a fake).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
    public int MaxPooledMessages { get; init; } = 256;
    /// <summary>Writer threads: writes in flight at once (each writer carries every small commit queued when it
    /// starts a write). Measured here, direct synchronous 4 KiB writes: 6,800/s with one in flight, 11,400 with
    /// four, 18,600 with eight (docs/PERF-NOTES.md). A writer waiting on the disk costs no CPU.</summary>
    public int Writers { get; init; } = 8;
    /// <summary>A write is started beside one already in flight only when this many commits wait; otherwise the
    /// writer that finishes takes them all in its next write (group commit). Measured here (perf/race.sh,
    /// smtp-source, 1 KiB, 10 sessions, same runs): a writer woken for every commit 8,809 msg/s at 96 µs CPU
    /// per message; one write at a time 10,387 at 65 µs; waking at 4 queued 9,600 at 87 µs. Each write costs a
    /// system call, a device interrupt and a wakeup, and on 2 cores CPU sets the pace; a disk slower than its
    /// CPU gains from the overlap under load, which this threshold still allows.</summary>
    public int WakeThreshold { get; init; } = 8;
    /// <summary>Longest a session waits for the spool: a commit unanswered then gets 451 4.3.0, a stream paused for
    /// its writer fails. 30 s: far above any healthy disk's worst flush (tens of ms), far below a client's
    /// 10-minute wait for the reply to its final dot (RFC 5321 §4.5.3.2.6).</summary>
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Called with the errno when the spool starts failing (a storage error with none in the failing window
    /// before it), on the thread that met it: a writer, the segment supply or the deadline timer. The host logs it,
    /// so the errno is on record even when every refusal then comes at MAIL. Must not block.</summary>
    public Action<int>? StorageFailing { get; init; }
    /// <summary>Told of each record once it is durable, on the writer thread (ISpoolObserver: the delivery agent).</summary>
    public ISpoolObserver? Observer { get; init; }
    /// <summary>Tests only: the file I/O seam (power-loss and fault simulation).</summary>
    internal SpoolIo? Io { get; init; }
    /// <summary>An idle writer and the segment supply wake this often. One wakeup a second costs nothing
    /// measurable; a watchdog allows at least twice this before it calls a writer stuck
    /// (MessageSpool.FlusherHeartbeat).</summary>
    public int HeartbeatPeriodMs { get; init; } = 1000;
}
