// What the agent does with a transaction's outcomes (docs/DELIVERY.md "Replies, per recipient"): the in-memory
// state changes at once, the journal records go to the group-committing writer, and the attempt is finished only
// in the completion of its last records (FORMAT.md "When durable").
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    private void CompletedLocked(Attempt a, RelayTransaction tx, HopBook hop)
    {
        var entry = a.Entry;
        var records = new List<JournalRecord>(tx.Recipients.Count);
        long now = NowMs;
        bool possiblyDelivered = false;
        // 452 to some recipients (RFC 5321 §4.5.3.1.10): the rest go in a new transaction at once, as long as this
        // one got somewhere; a transaction where every recipient got 452 makes no progress and is deferred.
        bool progress = false;
        for (int i = 0; i < tx.Recipients.Count; i++) progress |= tx.Outcomes[i].Kind is OutcomeKind.Delivered or OutcomeKind.Failed;
        for (int i = 0; i < tx.Recipients.Count; i++)
        {
            int r = a.Map[i];
            ref var o = ref tx.Outcomes[i];
            ref var rcpt = ref entry.Recipients[r];
            if (rcpt.State == RecipientState.Deleted) continue;   // an operator's delete wins (JournalFold's rule)
            string address = a.Message.Recipient(r);
            string reply = o.Reply ?? "";
            possiblyDelivered |= o.PossiblyDelivered;
            switch (o.Kind)
            {
                case OutcomeKind.Delivered:
                    rcpt.State = RecipientState.Delivered;
                    rcpt.Attempts++;
                    rcpt.Code = o.Code;
                    rcpt.LastReply = reply;
                    a.Finalized.Add(r);
                    if (o.RelayedWithoutDsn) a.Relayed.Add(r);
                    records.Add(Record(JournalRecordType.Delivered, entry, r, rcpt.Attempts, o.Code, o.Status, false, now, 0));
                    _events.Delivered(entry.QueueId, address, hop.Name, reply, (now - entry.ArrivalUnixMs) / 1000.0, rcpt.Attempts);
                    break;
                case OutcomeKind.Failed:
                    FailLocked(a, r, o.Code, o.Status, reply, records, now);
                    break;
                default:
                    if (o.Code == 452 && progress)
                    {
                        a.Todo.Add(r);
                        continue;
                    }
                    rcpt.State = RecipientState.Deferred;
                    rcpt.Attempts++;
                    rcpt.Code = o.Code;
                    rcpt.LastReply = reply.Length > 0 ? reply : "connection lost or timed out";
                    rcpt.PossiblyDelivered |= o.PossiblyDelivered;
                    a.Deferred.Add((r, rcpt.LastReply));
                    records.Add(Record(JournalRecordType.Deferred, entry, r, rcpt.Attempts, o.Code, o.Status, o.PossiblyDelivered, now, 0));
                    break;
            }
        }
        if (possiblyDelivered) _events.PossibleDuplicate(entry.QueueId, hop.Name, "connection lost after the final dot");
        if (records.Count > 0) _journal!.Post(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records), err => OnAttemptRecords(a, err));
    }

    private void OnAttemptRecords(Attempt a, int err)
    {
        if (err == 0) return;
        a.JournalFailed = true;
        lock (_gate) JournalFailedLocked(err);
    }

    private void FailLocked(Attempt a, int r, ushort code, EnhancedStatusCode status, string reply, List<JournalRecord> records, long now)
    {
        var entry = a.Entry;
        ref var rcpt = ref entry.Recipients[r];
        rcpt.State = RecipientState.Failed;
        rcpt.Attempts++;
        rcpt.Code = code;
        rcpt.LastReply = reply;
        rcpt.BouncePending = !entry.NullSender && BouncePolicy.ShouldNotify(a.Message.Sender, NotifyOf(a.Message, r), DsnAction.Failed);
        a.Finalized.Add(r);
        records.Add(Record(JournalRecordType.Failed, entry, r, rcpt.Attempts, code, status.IsPresent ? status : new EnhancedStatusCode(5, 0, 0), false, now, 0));
        _events.Failed(entry.QueueId, a.Message.Recipient(r), reply);
    }

    private static DsnNotify NotifyOf(LoadedMessage m, int r)
    {
        string? value = m.Parameter(m.Parameters[r], "NOTIFY");
        return value is not null && BouncePolicy.TryParseNotify(value, out var n) ? n : DsnNotify.Unspecified;
    }

    /// <summary>Every recipient still to send in <paramref name="a"/> fails (a loop, an expiry, an operator's bounce).</summary>
    private void FailAllLocked(Attempt a, ushort code, EnhancedStatusCode status, string reply)
    {
        var records = new List<JournalRecord>();
        long now = NowMs;
        foreach (int r in a.Todo) FailLocked(a, r, code, status, reply, records, now);
        a.Todo.Clear();
        if (records.Count > 0) _journal!.Post(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records), err => OnAttemptRecords(a, err));
        EndAttemptLocked(a);
    }

    /// <summary>The hop failed before <paramref name="a"/> was sent: its recipients are deferred with the hop's reason
    /// (what `queue list` shows, as Postfix's "connect to ...: Connection refused"), and it waits for the hop.</summary>
    private void DeferForHopLocked(Attempt a, string reason)
    {
        var entry = a.Entry;
        long now = NowMs;
        var records = new List<JournalRecord>(a.Todo.Count);
        foreach (int r in a.Todo)
        {
            ref var rcpt = ref entry.Recipients[r];
            rcpt.State = RecipientState.Deferred;
            rcpt.Attempts++;
            rcpt.Code = 0;
            rcpt.LastReply = reason;
            records.Add(Record(JournalRecordType.Deferred, entry, r, rcpt.Attempts, 0, default, false, now, 0));
        }
        _scheduler.Finished(entry, a.Hop, hopWorked: false);
        records.Add(Record(JournalRecordType.Deferred, entry, JournalRecord.WholeMessage, entry.Attempts, 0, default, false, now, entry.NextAttemptUnixMs));
        double wait = Math.Max(0, (entry.NextAttemptUnixMs - now) / 1000.0);
        foreach (int r in a.Todo) _events.Deferred(entry.QueueId, a.Message.Recipient(r), _hops[a.Hop].Name, reason, wait);
        a.Todo.Clear();
        a.Message.Return();
        _journal!.Post(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records), _ => { });
    }

    /// <summary>No more transactions for <paramref name="a"/>: finish it once its records are durable.</summary>
    private void EndAttemptLocked(Attempt a)
    {
        // Recipients handed out but never reported (a session that ended mid-way) stay as they were: pending.
        a.Todo.Clear();
        // The hop's slot goes back now and the pump may hand the connection its next message; the entry itself
        // waits, in flight, until its records are durable (FinishAttempt).
        _scheduler.ReleaseHop(a.Entry, a.Hop, a.HopWorked);
        _wake = true;
        Monitor.Pulse(_gate);
        _journal!.Post([], _ => FinishAttempt(a));
    }

    private void FinishAttempt(Attempt a)
    {
        var entry = a.Entry;
        lock (_gate)
        {
            if (a.JournalFailed)
            {
                foreach (int r in a.Finalized)
                {
                    ref var rcpt = ref entry.Recipients[r];
                    if (rcpt.State == RecipientState.Delivered) _events.PossibleDuplicate(entry.QueueId, _hops[a.Hop].Name, "journal write failed");
                    rcpt.State = RecipientState.Deferred;
                    rcpt.BouncePending = false;
                }
                _events.Trouble($"delivery: journal write failed for {entry.QueueId}; its outcomes are tried again");
            }
            _scheduler.Finished(entry, a.Hop, a.HopWorked);
            entry.Attempts++;
            if (!entry.AllFinal && !_stopping)
            {
                long next = entry.NextAttemptUnixMs;
                double wait = Math.Max(0, (next - NowMs) / 1000.0);
                foreach (var (r, reply) in a.Deferred)
                {
                    if (entry.Recipients[r].State == RecipientState.Deferred) _events.Deferred(entry.QueueId, a.Message.Recipient(r), _hops[a.Hop].Name, reply, wait);
                }
                _journal!.Post([Record(JournalRecordType.Deferred, entry, JournalRecord.WholeMessage, (ushort)Math.Min(entry.Attempts, ushort.MaxValue), 0, default, false, NowMs, next)], _ => { });
            }
            if (HasBouncePending(entry))
            {
                _bounceDue.Enqueue(entry);
                _wake = true;
            }
            if (a.Relayed.Count > 0 && !a.JournalFailed) _relayedDue.Enqueue(a);
            else a.Message.Return();
            TryReleaseLocked(entry);
            _wake = true;
            Monitor.Pulse(_gate);
        }
    }

    private static bool HasBouncePending(QueueEntry e)
    {
        foreach (ref readonly var r in e.Recipients.AsSpan())
        {
            if (r.BouncePending) return true;
        }
        return false;
    }

    /// <summary>Lets go of a message whose every recipient is final and whose bounce is queued: out of the index,
    /// and its segment deleted once nothing in it is live (FORMAT.md "Release").</summary>
    private void TryReleaseLocked(QueueEntry entry)
    {
        if (!entry.AllFinal || HasBouncePending(entry) || entry.InFlight) return;
        if (!_entries.Remove(entry.QueueId)) return;
        _scheduler.Remove(entry);
        if (_loaded.Remove(entry, out var loaded)) loaded.Return();
        int live = _liveBySegment.GetValueOrDefault(entry.Segment) - 1;
        if (live <= 0)
        {
            _liveBySegment.Remove(entry.Segment);
            _emptySegments.Add(entry.Segment);
        }
        else
        {
            _liveBySegment[entry.Segment] = live;
        }
    }

    private void DeleteEmptySegments()
    {
        long[] empty;
        lock (_gate)
        {
            if (_emptySegments.Count == 0) return;
            empty = [.. _emptySegments];
        }
        foreach (long s in empty)
        {
            bool deleted = _spool!.TryDeleteSegment(s);
            if (deleted) _segmentInfo.Remove(s);   // copy-forward's cache of its header (pump thread only)
            if (deleted) _segmentsDeleted++;       // journal retention looks again (DeliveryAgent.JournalRetention.cs)
            lock (_gate)
            {
                // A commit may have landed in it since (the live count is back): then it stays.
                if (deleted || _liveBySegment.ContainsKey(s)) _emptySegments.Remove(s);
            }
        }
    }

    internal static JournalRecord Record(JournalRecordType type, QueueEntry e, int recipient, int attempt, ushort code,
        EnhancedStatusCode status, bool possiblyDelivered, long now, long next)
        => new(type, e.Segment, e.Offset, e.QueueId, (ushort)recipient, (ushort)Math.Min(attempt, ushort.MaxValue), code,
            status.Class, (byte)status.Subject, (byte)status.Detail, possiblyDelivered, now, next);
}
