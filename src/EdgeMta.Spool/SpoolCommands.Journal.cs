// What the offline tools know of delivery (FORMAT.md "Delivery journal"): the journal folded, and each spool
// record matched to its folded state by queue id and place (segment sequence and region offset), as recovery
// matches them, with a copy-forward's dead copies left out (RecordLiveness). A journal record whose place is
// neither the message's nor one it moved from is stale or damaged and says nothing about it.
// Used by `spool list|export|drain` (only what is not yet delivered goes out) and by the offline queue commands.
// What it does not do: write the journal, or decide whether a bounce is still owed beyond what the fold says.
// How it fails: an unreadable journal directory throws IOException, as an unreadable spool does.
namespace EdgeMta.Spool;

/// <summary>One record's delivery state as the offline tools see it.</summary>
internal enum DeliveryProgress : byte
{
    /// <summary>The journal says nothing: no attempt yet (or none recorded).</summary>
    Pending,
    /// <summary>Held by an operator, with recipients still to go.</summary>
    Held,
    /// <summary>Tried, and some recipients wait for a retry; none final.</summary>
    Deferred,
    /// <summary>Some recipients final (delivered, failed or deleted), others still to go.</summary>
    Partial,
    /// <summary>Every recipient final: nothing left to deliver.</summary>
    Done,
}

public static partial class SpoolCommands
{
    /// <summary>The journal of <paramref name="spool"/> folded (empty when there is none).</summary>
    internal static JournalFold ReadJournal(string spool)
    {
        var fold = new JournalFold();
        JournalReader.Read(spool, fold);
        return fold;
    }

    /// <summary>The journal folded and every committed record seen once (RecordLiveness's first pass): which record
    /// of a queue id is the message when a copy-forward left two (FORMAT.md "Copy-forward").</summary>
    internal static RecordLiveness ReadLiveness(string spool)
    {
        var liveness = new RecordLiveness(ReadJournal(spool));
        SpoolReader.Read(spool, (in SpoolRecord r) => liveness.Saw(r.QueueIdString, SpoolRecovery.SequenceOf(r.Segment), r.Offset));
        return liveness;
    }

    /// <summary>Second pass, once per record in spool order: false for a dead copy (moved away, or a copy whose Moved
    /// never became durable); true with the record's folded state (null: the journal says nothing) otherwise.</summary>
    internal static bool IsMessage(RecordLiveness liveness, in SpoolRecord r, out FoldedMessage? folded)
        => liveness.IsMessage(r.QueueIdString, SpoolRecovery.SequenceOf(r.Segment), r.Offset, out folded);

    /// <summary>The state of recipient <paramref name="index"/> (Pending without journal word).</summary>
    internal static RecipientState StateOf(FoldedMessage? m, int index)
        => m is null || index >= JournalRecord.WholeMessage ? RecipientState.Pending : m.Recipient((ushort)index).State;

    internal static bool IsFinal(RecipientState s) => FoldedMessage.IsFinal(s);

    /// <summary>The whole message's progress, from its <paramref name="recipients"/> recipients' states.</summary>
    internal static DeliveryProgress ProgressOf(FoldedMessage? m, int recipients)
    {
        if (m is null) return DeliveryProgress.Pending;
        int final = 0, deferred = 0;
        for (int i = 0; i < recipients; i++)
        {
            var s = StateOf(m, i);
            if (IsFinal(s)) final++;
            else if (s == RecipientState.Deferred) deferred++;
        }
        if (final == recipients) return DeliveryProgress.Done;
        if (m.Held) return DeliveryProgress.Held;
        if (final > 0) return DeliveryProgress.Partial;
        return deferred > 0 ? DeliveryProgress.Deferred : DeliveryProgress.Pending;
    }

    /// <summary>Whether drain may mark a finished message Consumed: every recipient final and no bounce still
    /// owed (a Failed recipient's bounce is owed until BounceQueued, unless the sender is null: FORMAT.md,
    /// "Release"). A message whose bounce is owed stays for the server, which composes it at its next start.</summary>
    internal static bool Releasable(FoldedMessage m, int recipients, bool nullSender)
    {
        if (m.Deleted || nullSender || m.BounceReference != 0) return true;
        for (int i = 0; i < recipients; i++)
        {
            if (StateOf(m, i) == RecipientState.Failed) return false;
        }
        return true;
    }

    internal static string Word(DeliveryProgress p) => p switch
    {
        DeliveryProgress.Pending => "pending",
        DeliveryProgress.Held => "held",
        DeliveryProgress.Deferred => "deferred",
        DeliveryProgress.Partial => "partial",
        _ => "done",
    };

    internal static string Word(RecipientState s) => s switch
    {
        RecipientState.Pending => "pending",
        RecipientState.Deferred => "deferred",
        RecipientState.Delivered => "delivered",
        RecipientState.Failed => "failed",
        _ => "deleted",
    };
}
