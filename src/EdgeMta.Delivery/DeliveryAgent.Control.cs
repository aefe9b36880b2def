// The live side of the queue commands (docs/DELIVERY.md "Queue commands"; the seam in QueueControl.cs). Operator
// actions are journalled and durable before the answer; then they take effect in memory. list and show read each
// message's envelope from the spool for the addresses the index does not keep.
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent : IQueueControl
{
    public async ValueTask<QueueResult> RunAsync(QueueRequest request, CancellationToken cancel)
    {
        await Task.Yield();   // off the control socket's thread: reads and journal waits block
        if (!QueueRequestLine.Check(request, out string usage)) return new QueueResult(2, usage + "\n");
        var found = new List<QueueEntry>();
        var missing = new List<string>();
        lock (_gate)
        {
            if (request.All || (request.Ids.Count == 0 && request.Verb is QueueVerb.List or QueueVerb.Flush))
            {
                found.AddRange(_entries.Values);
            }
            else
            {
                foreach (string id in request.Ids)
                {
                    if (_entries.TryGetValue(id, out var e)) found.Add(e);
                    else missing.Add(id);
                }
            }
        }
        string output = request.Verb switch
        {
            QueueVerb.List or QueueVerb.Show => Describe(request, found),
            QueueVerb.Flush => Flush(found),
            _ => await ActAsync(request.Verb, found).ConfigureAwait(false),
        };
        foreach (string id in missing) output += $"{id}: not in the queue\n";
        return new QueueResult(missing.Count > 0 ? 1 : 0, output);
    }

    private string Describe(QueueRequest request, List<QueueEntry> entries)
    {
        var items = new List<QueueItem>(entries.Count);
        foreach (var e in entries)
        {
            var message = Load(e);
            lock (_gate) items.Add(ItemOf(e, message));
            message?.Return();
        }
        items.Sort((a, b) => a.Arrival.CompareTo(b.Arrival));
        return request.Verb == QueueVerb.Show
            ? QueueFormatter.Show(items, request.Json, replyTextKept: true)
            : QueueFormatter.List(items, request.Json);
    }

    private static QueueItem ItemOf(QueueEntry e, LoadedMessage? m)
    {
        var recipients = new List<QueueItemRecipient>(e.Recipients.Length);
        for (int r = 0; r < e.Recipients.Length; r++)
        {
            var rcpt = e.Recipients[r];
            string state = e.Held && !rcpt.IsFinal ? "held" : rcpt.State switch
            {
                RecipientState.Deferred => "deferred",
                RecipientState.Delivered => "delivered",
                RecipientState.Failed => "failed",
                RecipientState.Deleted => "deleted",
                _ => "pending",
            };
            DateTimeOffset? next = rcpt.State == RecipientState.Deferred && e.NextAttemptUnixMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(e.NextAttemptUnixMs) : null;
            recipients.Add(new QueueItemRecipient(m?.Recipient(r) ?? $"#{r}", state, rcpt.Attempts, next,
                rcpt.LastReply ?? (rcpt.Code != 0 ? rcpt.Code.ToString(System.Globalization.CultureInfo.InvariantCulture) : null)));
        }
        return new QueueItem(e.QueueId, DateTimeOffset.FromUnixTimeMilliseconds(e.ArrivalUnixMs), e.Size, m?.Sender ?? "?", e.Held, recipients);
    }

    private string Flush(List<QueueEntry> entries)
    {
        lock (_gate)
        {
            foreach (var e in entries) _scheduler.Flush(e);
            _wake = true;
            Monitor.Pulse(_gate);
        }
        return $"{entries.Count} message(s) due now\n";
    }

    private async Task<string> ActAsync(QueueVerb verb, List<QueueEntry> entries)
    {
        var records = new List<JournalRecord>();
        var owners = new List<QueueEntry>();
        long now = NowMs;
        var type = verb switch
        {
            QueueVerb.Hold => JournalRecordType.Hold,
            QueueVerb.Release => JournalRecordType.Release,
            QueueVerb.Delete => JournalRecordType.Delete,
            _ => JournalRecordType.Failed,
        };
        lock (_gate)
        {
            foreach (var e in entries)
            {
                if (type != JournalRecordType.Failed)
                {
                    records.Add(Record(type, e, JournalRecord.WholeMessage, 0, 0, default, false, now, 0));
                    owners.Add(e);
                    continue;
                }
                for (int r = 0; r < e.Recipients.Length; r++)
                {
                    if (!e.Recipients[r].IsFinal)
                    {
                        records.Add(Record(type, e, r, e.Recipients[r].Attempts, 550, new EnhancedStatusCode(5, 0, 0), false, now, 0));
                        owners.Add(e);
                    }
                }
            }
        }
        // Copy-forward may move a message while its records are written: they then name the old place, which its
        // restatement (made before this took effect in memory) does not speak for, and whose journal files go once the
        // old segment does (FORMAT.md "Copy-forward"). Such records are written again at the new place before the
        // command takes effect and is answered; a move is at most one an hour per message, so two rounds suffice.
        // The check and the change in memory share one hold of the lock: a copy-forward's restatement either sees the
        // change or comes before the place is checked.
        for (int round = 0; ; round++)
        {
            int err = await _journal!.AppendAsync(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records)).ConfigureAwait(false);
            if (err != 0) return $"journal write failed (errno {err}): nothing changed\n";
            lock (_gate)
            {
                if (MovedSinceLocked(records, owners) && round < 2) continue;
                foreach (var e in entries) ApplyLocked(verb, e);
                _wake = true;
                Monitor.Pulse(_gate);
                break;
            }
        }
        string done = verb.ToString().ToLowerInvariant();
        return $"{entries.Count} message(s): {done}\n";
    }

    /// <summary>Keeps only the records whose message moved since they were made, at its place now; true when any is
    /// left (to be written again).</summary>
    private static bool MovedSinceLocked(List<JournalRecord> records, List<QueueEntry> owners)
    {
        int kept = 0;
        for (int i = 0; i < records.Count; i++)
        {
            var e = owners[i];
            if (records[i].Segment == e.Segment && records[i].Offset == e.Offset) continue;
            records[kept] = records[i] with { Segment = e.Segment, Offset = e.Offset };
            owners[kept++] = e;
        }
        records.RemoveRange(kept, records.Count - kept);
        owners.RemoveRange(kept, owners.Count - kept);
        return kept > 0;
    }

    private void ApplyLocked(QueueVerb verb, QueueEntry e)
    {
        switch (verb)
        {
            // The scheduler owns the Held flag: it moves the entry out of (or back into) its lanes as it sets it.
            case QueueVerb.Hold:
                _scheduler.Hold(e);
                return;
            case QueueVerb.Release:
                _scheduler.Release(e);
                return;
            case QueueVerb.Delete:
                for (int r = 0; r < e.Recipients.Length; r++)
                {
                    e.Recipients[r].State = RecipientState.Deleted;
                    e.Recipients[r].BouncePending = false;
                }
                _scheduler.Remove(e);
                TryReleaseLocked(e);
                return;
            default:
                for (int r = 0; r < e.Recipients.Length; r++)
                {
                    ref var rcpt = ref e.Recipients[r];
                    if (rcpt.IsFinal) continue;
                    rcpt.State = RecipientState.Failed;
                    rcpt.Code = 550;
                    rcpt.LastReply = "5.0.0 failed by the operator (queue bounce)";
                    rcpt.BouncePending = !e.NullSender;
                }
                _scheduler.Remove(e);
                if (HasBouncePending(e)) _bounceDue.Enqueue(e);
                TryReleaseLocked(e);
                return;
        }
    }
}
