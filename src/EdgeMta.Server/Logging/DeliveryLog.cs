// The delivery agent's events as log lines (docs/DELIVERY.md "Log lines"), one per event, and counted for the
// metrics endpoint. Seconds are written with millisecond precision, invariant culture.
using System.Globalization;
using EdgeMta.Delivery;

namespace EdgeMta.Server.Logging;

/// <summary>Counts of delivery events since start.</summary>
public sealed class DeliveryCounters
{
    internal long DeliveredCount, DeferredCount, FailedCount, BounceCount, DuplicateCount, RelayDeadCount;
    public long Delivered => Interlocked.Read(ref DeliveredCount);
    public long Deferred => Interlocked.Read(ref DeferredCount);
    public long Failed => Interlocked.Read(ref FailedCount);
    public long Bounces => Interlocked.Read(ref BounceCount);
    public long PossibleDuplicates => Interlocked.Read(ref DuplicateCount);
    public long RelayDead => Interlocked.Read(ref RelayDeadCount);
    internal long CompactedCount, CopiedMessageCount, CopiedByteCount;
    /// <summary>Segments emptied by copy-forward, and the messages and bytes it copied (FORMAT.md "Copy-forward").</summary>
    public long SegmentsCompacted => Interlocked.Read(ref CompactedCount);
    public long CopiedMessages => Interlocked.Read(ref CopiedMessageCount);
    public long CopiedBytes => Interlocked.Read(ref CopiedByteCount);
    internal long JournalDeletedCount;
    /// <summary>Delivery journal files deleted during the run (FORMAT.md "Delivery journal", "Retention").</summary>
    public long JournalFilesDeleted => Interlocked.Read(ref JournalDeletedCount);
}

internal sealed class DeliveryLog(ServerLog log, DeliveryCounters counters) : IDeliveryEvents
{
    private static string Seconds(double s) => s.ToString("0.###", CultureInfo.InvariantCulture);

    public void Delivered(string id, string recipient, string relay, string reply, double delaySeconds, int attempts)
    {
        Interlocked.Increment(ref counters.DeliveredCount);
        log.Begin(LogEvent.Delivered).Field("id"u8, id).Field("rcpt"u8, recipient).Field("relay"u8, relay).Quoted("reply"u8, reply)
            .Field("delay"u8, Seconds(delaySeconds)).Field("attempts"u8, attempts).End();
    }

    public void Deferred(string id, string recipient, string relay, string reply, double nextSeconds)
    {
        Interlocked.Increment(ref counters.DeferredCount);
        log.Begin(LogEvent.Deferred).Field("id"u8, id).Field("rcpt"u8, recipient).Field("relay"u8, relay).Quoted("reply"u8, reply)
            .Field("next"u8, Seconds(nextSeconds)).End();
    }

    public void Failed(string id, string recipient, string reply)
    {
        Interlocked.Increment(ref counters.FailedCount);
        log.Begin(LogEvent.Failed).Field("id"u8, id).Field("rcpt"u8, recipient).Quoted("reply"u8, reply).End();
    }

    public void Bounce(string bounceId, string forId, string to)
    {
        Interlocked.Increment(ref counters.BounceCount);
        log.Begin(LogEvent.Bounce).Field("id"u8, bounceId).Field("for"u8, forId).Field("to"u8, to).End();
    }

    public void PossibleDuplicate(string id, string relay, string reason)
    {
        Interlocked.Increment(ref counters.DuplicateCount);
        log.Begin(LogEvent.PossibleDuplicate).Field("id"u8, id).Field("relay"u8, relay).Quoted("reason"u8, reason).End();
    }

    public void RelayDead(string relay, string reason)
    {
        Interlocked.Increment(ref counters.RelayDeadCount);
        log.Begin(LogEvent.RelayDead).Field("relay"u8, relay).Quoted("reason"u8, reason).End();
    }

    public void RelayAlive(string relay) => log.Begin(LogEvent.RelayAlive).Field("relay"u8, relay).End();

    public void SegmentCompacted(long sequence, int messages, long bytes)
    {
        Interlocked.Increment(ref counters.CompactedCount);
        Interlocked.Add(ref counters.CopiedMessageCount, messages);
        Interlocked.Add(ref counters.CopiedByteCount, bytes);
        log.Begin(LogEvent.SegmentCompacted).Field("seq"u8, sequence.ToString("x16", CultureInfo.InvariantCulture))
            .Field("messages"u8, messages).Field("bytes"u8, bytes).End();
    }

    public void JournalFileDeleted(long sequence, long maxSegment)
    {
        Interlocked.Increment(ref counters.JournalDeletedCount);
        log.Begin(LogEvent.JournalDeleted).Field("seq"u8, sequence.ToString("x16", CultureInfo.InvariantCulture))
            .Field("max-segment"u8, maxSegment.ToString("x16", CultureInfo.InvariantCulture)).End();
    }

    public void Trouble(string what) => log.Begin(LogEvent.DeliveryTrouble).Quoted("error"u8, what).End();
}
