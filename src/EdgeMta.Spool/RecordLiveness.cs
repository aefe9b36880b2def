// Which committed record of a queue id is the message (FORMAT.md "Copy-forward"): after a copy-forward the spool
// may hold one message at two places for a while (the copy, and the original until its segment goes), and every
// reader must deliver, list or export it once. Used by the delivery agent's start and by the offline tools, which
// all see the spool's records in the same order (segment order, then offset).
// Rule: the record at the fold's current place is the message; one at a place the message moved from is dead; one
// at neither is a copy whose Moved never became durable, dead when the current place is in the spool, else the
// first such is adopted with no journal state (a record naming another place says nothing about this one: a
// duplicate at worst, never a loss). An id the journal does not know: the first record is the message.
// Use: Saw() for every record first, then IsMessage() once per record, in the same order.
// What it does not do: read anything, or retract dead records (the agent does that, MessageSpool.TryRetractRecord).
// How it fails: it cannot; it is memory only (one entry per queue id, as the fold itself).
namespace EdgeMta.Spool;

public sealed class RecordLiveness(JournalFold fold)
{
    private readonly HashSet<string> _currentPresent = new(StringComparer.Ordinal);
    private readonly HashSet<string> _adopted = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unknownSeen = new(StringComparer.Ordinal);

    public JournalFold Fold => fold;

    /// <summary>First pass: a committed record of <paramref name="queueId"/> is at this place.</summary>
    public void Saw(string queueId, long segment, long offset)
    {
        var m = fold.Find(queueId);
        if (m is not null && m.Segment == segment && m.Offset == offset) _currentPresent.Add(queueId);
    }

    /// <summary>Second pass: true when the record at this place is the message (then <paramref name="folded"/> is
    /// its journal state, null when the journal says nothing of this place); false when it is a dead copy.</summary>
    public bool IsMessage(string queueId, long segment, long offset, out FoldedMessage? folded)
    {
        folded = fold.Find(queueId);
        if (folded is null) return _unknownSeen.Add(queueId);
        if (folded.Segment == segment && folded.Offset == offset) return true;
        bool adopt = !folded.MovedFrom(segment, offset) && !_currentPresent.Contains(queueId) && _adopted.Add(queueId);
        folded = null;
        return adopt;
    }
}
