// The delivery agent's in-memory index of what the spool still holds (docs/DELIVERY.md "Guarantees"): one
// QueueEntry per live message, built at start from the spool and the folded journal (FORMAT.md "Delivery
// journal") and then from each commit the spool reports. Compact on purpose: 100,000 deferred messages must
// fit in 64 MiB, so addresses are not kept; the agent reads them from the spool record when it needs them.
// What it is not: durable. Every change that must survive a restart is a journal record first.
// Threading: entries belong to the agent's thread (DeliveryScheduler's contract); nothing here locks.
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

/// <summary>One recipient's state in the queue.</summary>
public struct QueueRecipient
{
    public RecipientState State;
    public ushort Attempts;
    /// <summary>The last reply's code, and its text when this process saw it (null after a restart).</summary>
    public ushort Code;
    public string? LastReply;
    public bool PossiblyDelivered;
    /// <summary>Failed, and its bounce not yet durably queued (BounceQueued journalled).</summary>
    public bool BouncePending;

    public readonly bool IsFinal => State is RecipientState.Delivered or RecipientState.Failed or RecipientState.Deleted;
}

/// <summary>One live message.</summary>
public sealed class QueueEntry
{
    public QueueEntry(string queueId, long segment, long offset, long arrivalUnixMs, long size, int recipients, bool nullSender)
    {
        QueueId = queueId;
        Segment = segment;
        Offset = offset;
        ArrivalUnixMs = arrivalUnixMs;
        Size = size;
        Recipients = new QueueRecipient[recipients];
        NullSender = nullSender;
    }

    public string QueueId { get; }
    /// <summary>The record's place: segment sequence and region offset (FORMAT.md). Changed only by copy-forward, on
    /// the agent's thread under its lock, once the Moved record is durable.</summary>
    public long Segment { get; internal set; }
    public long Offset { get; internal set; }
    public long ArrivalUnixMs { get; }
    /// <summary>The message octets' length.</summary>
    public long Size { get; }
    /// <summary>MAIL FROM:&lt;&gt; (a bounce): never bounced, expires after --bounce-lifetime.</summary>
    public bool NullSender { get; }
    public QueueRecipient[] Recipients { get; }

    /// <summary>Held by an operator: not tried until released.</summary>
    public bool Held { get; set; }
    /// <summary>An attempt is running (the scheduler sets it in TryTake and clears it in Finished).</summary>
    public bool InFlight { get; set; }

    /// <summary>In flight, its hop's slot already given back (DeliveryScheduler.ReleaseHop): the connection work is
    /// over, the outcome's journal records are not durable yet.</summary>
    public bool HopReleased { get; set; }
    /// <summary>Attempts so far (whole-message count, for logs and backoff).</summary>
    public int Attempts { get; set; }
    /// <summary>When the next attempt is due, Unix ms (0: due now).</summary>
    public long NextAttemptUnixMs { get; set; }
    /// <summary>The BounceQueued record's reference once one is durable (1: a notice is in the spool; 2: none could be
    /// composed), else 0: what a restatement of this message writes again (DeliveryAgent.Restate).</summary>
    public long BounceReference { get; set; }
    /// <summary>The --delay-warning notice went out.</summary>
    public bool DelayNoticeSent { get; set; }
    /// <summary>The scheduler's own bookkeeping (its heap index or lane); nothing else touches it.</summary>
    public int SchedulerSlot { get; set; } = -1;

    /// <summary>True when every recipient is Delivered, Failed or Deleted.</summary>
    public bool AllFinal
    {
        get
        {
            foreach (ref readonly var r in Recipients.AsSpan())
            {
                if (!r.IsFinal) return false;
            }
            return true;
        }
    }
}
