// The journal folded into what became of each message and recipient (FORMAT.md, "Delivery journal",
// "Recovery"): records are applied in the order they were written, and the fold is the same however often a
// record is applied again (a record can be replayed after a crash; it must not count twice).
// Rules: a final state (Delivered, Failed, Expired) is never undone by a later Deferred; Delivered wins over
// Failed (a recipient the next hop took is never bounced); an operator's Delete wins over everything; Hold and
// Release take turns, the last one counts; a Deferred keeps the highest attempt number and the latest next
// attempt time. A whole-message Deferred (recipient 0xFFFF) stands for every recipient not yet final.
// Moved (FORMAT.md "Copy-forward"): a message keeps its current place and the places it moved from; records at
// either apply to it. A Moved at the current place moves it; one seen again after it was applied changes nothing.
// What it does not do: read files, or decide release: AllFinal says whether every recipient is final; whether a
// bounce is still due (and so a BounceQueued must come first) is the delivery agent's to know.
namespace EdgeMta.Spool;

public enum RecipientState : byte { Pending, Deferred, Delivered, Failed, Deleted }

/// <summary>One recipient's folded state.</summary>
public readonly record struct FoldedRecipient(RecipientState State, ushort Attempts, long NextAttemptUnixMs, ushort ReplyCode, bool PossiblyDelivered);

/// <summary>One message's folded state, keyed by its place and queue id.</summary>
public sealed class FoldedMessage
{
    private readonly Dictionary<ushort, FoldedRecipient> _recipients = new();
    private FoldedRecipient _whole;
    private List<(long Segment, long Offset)>? _former;

    public FoldedMessage(long segment, long offset, string queueId)
    {
        Segment = segment; Offset = offset; QueueId = queueId;
    }

    /// <summary>The message's current place (the last Moved record's destination, else the first record's place).</summary>
    public long Segment { get; private set; }
    public long Offset { get; private set; }
    public string QueueId { get; }

    /// <summary>True when the message was copied forward from this place: a record there is dead.</summary>
    public bool MovedFrom(long segment, long offset)
    {
        if (_former is null) return false;
        foreach (var f in _former)
        {
            if (f.Segment == segment && f.Offset == offset) return true;
        }
        return false;
    }

    /// <summary>Applies a Moved record naming the current place; false (ignored) for a destination that cannot be a
    /// region start (forged or damaged beyond its CRC) or that is the current place itself.</summary>
    internal bool Move(in JournalRecord r)
    {
        long segment = r.MovedToSegment, offset = r.MovedToOffset;
        if (segment <= 0 || offset < SpoolFormat.SegmentHeaderSize || offset % SpoolFormat.Align != 0) return false;
        if (segment == Segment && offset == Offset) return false;
        (_former ??= new List<(long, long)>(1)).Add((Segment, Offset));
        Segment = segment;
        Offset = offset;
        return true;
    }
    public bool Held { get; internal set; }
    public bool Deleted { get; internal set; }
    /// <summary>The bounce's reference when one is durably queued (BounceQueued), else 0.</summary>
    public long BounceReference { get; internal set; }

    /// <summary>What became of recipient <paramref name="index"/>; Pending when the journal says nothing.</summary>
    public FoldedRecipient Recipient(ushort index)
    {
        if (Deleted) return new FoldedRecipient(RecipientState.Deleted, 0, 0, 0, false);
        if (_recipients.TryGetValue(index, out var own) && IsFinal(own.State)) return own;
        // A whole-message Deferred stands in where the recipient has no later word of its own.
        FoldedRecipient r = own;
        if (_whole.State == RecipientState.Deferred)
        {
            r = r with
            {
                State = RecipientState.Deferred,
                Attempts = Math.Max(r.Attempts, _whole.Attempts),
                NextAttemptUnixMs = Math.Max(r.NextAttemptUnixMs, _whole.NextAttemptUnixMs),
                ReplyCode = r.State == RecipientState.Deferred ? r.ReplyCode : _whole.ReplyCode,
                PossiblyDelivered = r.PossiblyDelivered || _whole.PossiblyDelivered,
            };
        }
        return r;
    }

    /// <summary>True when each of the first <paramref name="recipients"/> is Delivered, Failed or Deleted.</summary>
    public bool AllFinal(int recipients)
    {
        for (int i = 0; i < recipients; i++)
        {
            if (!IsFinal(Recipient((ushort)i).State)) return false;
        }
        return true;
    }

    internal static bool IsFinal(RecipientState s) => s is RecipientState.Delivered or RecipientState.Failed or RecipientState.Deleted;

    internal void Apply(in JournalRecord r)
    {
        switch (r.Type)
        {
            case JournalRecordType.Hold: Held = true; return;
            case JournalRecordType.Release: Held = false; return;
            case JournalRecordType.BounceQueued: BounceReference = r.NextOrReference; return;
            case JournalRecordType.Text: return;
            case JournalRecordType.Delete when r.Recipient == JournalRecord.WholeMessage: Deleted = true; return;
        }
        RecipientState next = r.Type switch
        {
            JournalRecordType.Delivered => RecipientState.Delivered,
            JournalRecordType.Failed or JournalRecordType.Expired => RecipientState.Failed,
            JournalRecordType.Delete => RecipientState.Deleted,
            _ => RecipientState.Deferred,
        };
        if (r.Recipient == JournalRecord.WholeMessage)
        {
            // Only Deferred comes for the whole message (a failed connection); finals are per recipient.
            if (next == RecipientState.Deferred) _whole = Merge(_whole, r, next);
            return;
        }
        _recipients[r.Recipient] = Merge(_recipients.GetValueOrDefault(r.Recipient), r, next);
    }

    private static FoldedRecipient Merge(FoldedRecipient old, in JournalRecord r, RecipientState next)
    {
        if (old.State == RecipientState.Deleted) return old;
        if (next == RecipientState.Deleted) return old with { State = RecipientState.Deleted };
        if (old.State == RecipientState.Delivered) return old;   // never undone, never bounced
        if (old.State == RecipientState.Failed && next != RecipientState.Delivered) return old;
        if (next == RecipientState.Deferred)
        {
            return new FoldedRecipient(RecipientState.Deferred, Math.Max(old.Attempts, r.Attempt),
                Math.Max(old.NextAttemptUnixMs, r.NextOrReference), r.ReplyCode, old.PossiblyDelivered || r.PossiblyDelivered);
        }
        return new FoldedRecipient(next, Math.Max(old.Attempts, r.Attempt), 0, r.ReplyCode, old.PossiblyDelivered || r.PossiblyDelivered);
    }
}

/// <summary>Folds journal records, in the order written, into per-message state.</summary>
public sealed class JournalFold
{
    private readonly Dictionary<string, FoldedMessage> _messages = new(StringComparer.Ordinal);

    public int Count => _messages.Count;

    /// <summary>Applies one record. A record naming a known queue id at a place that is neither its current one nor
    /// one it moved from is ignored (the place is checked against the spool; a mismatch is a stale or damaged
    /// record): false then.</summary>
    public bool Apply(in JournalRecord r)
    {
        if (!_messages.TryGetValue(r.QueueId, out var m))
        {
            m = new FoldedMessage(r.Segment, r.Offset, r.QueueId);
            _messages.Add(r.QueueId, m);
        }
        else if (m.Segment != r.Segment || m.Offset != r.Offset)
        {
            if (!m.MovedFrom(r.Segment, r.Offset)) return false;
            // A Moved replayed (already applied) changes nothing; any other record at a former place still applies.
            if (r.Type == JournalRecordType.Moved) return m.Segment == r.MovedToSegment && m.Offset == r.MovedToOffset;
        }
        if (r.Type == JournalRecordType.Moved) return m.Move(r);
        m.Apply(r);
        return true;
    }

    public FoldedMessage? Find(string queueId) => _messages.GetValueOrDefault(queueId);
}
