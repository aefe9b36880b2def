// Start (FORMAT.md "Delivery journal", "Recovery"): the spool's recovery has listed every committed record
// (OnRecovered); the journal is folded over them; each message with a recipient not final becomes a QueueEntry,
// due no earlier than its journalled next attempt; a Failed recipient whose bounce was never queued gets it now.
// Then the journal is compacted: the live state is restated in a fresh file, made durable, and only then are the
// old files deleted (a crash in between leaves both, and the fold gives the same state from both). Segments with
// nothing live left are deleted by the pump. A message copy-forward left at two places is indexed once
// (RecordLiveness); the dead copy is retracted in the spool when its segment stays.
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    /// <summary>What the last start found, for the server's start line and tests.</summary>
    public RecoverySummary Recovery { get; private set; }

    private DeliveryJournal Recover(string directory)
    {
        var fold = new JournalFold();
        var read = JournalReader.Read(directory, fold);
        string journalDir = Path.Combine(directory, JournalReader.DirectoryName);
        string[] oldFiles = Directory.Exists(journalDir) ? Directory.GetFiles(journalDir, "*.jnl") : [];
        var restated = new List<JournalRecord>();
        // Each message's restated records, kept until it is known whether its segment stays: a finished message in a
        // segment that stays (a neighbour is still live) needs its records in the new journal, or the next start
        // would find it with no word and send it again.
        var bySegment = new Dictionary<long, List<JournalRecord>>();
        int live = 0, held = 0, bounces = 0;
        long now = NowMs;
        // Copy-forward may have left a message at two places (FORMAT.md "Copy-forward"): one is the message, the other
        // a dead copy, never indexed, and retracted below when its segment stays.
        var liveness = new RecordLiveness(fold);
        foreach (var r in _recovered) liveness.Saw(r.Id, r.Segment, r.Offset);
        var dead = new List<Recovered>();
        lock (_gate)
        {
            foreach (var r in _recovered)
            {
                if (!liveness.IsMessage(r.Id, r.Segment, r.Offset, out var folded))
                {
                    dead.Add(r);
                    continue;
                }
                var entry = new QueueEntry(r.Id, r.Segment, r.Offset, r.ArrivalMs, r.Size, r.Recipients, r.NullSender);
                if (folded is not null)
                {
                    if (!bySegment.TryGetValue(r.Segment, out var records)) bySegment[r.Segment] = records = new List<JournalRecord>();
                    Restore(entry, folded, records, now);
                }
                if (entry.AllFinal && !HasBouncePending(entry)) continue;
                live++;
                _entries[entry.QueueId] = entry;
                _liveBySegment[entry.Segment] = _liveBySegment.GetValueOrDefault(entry.Segment) + 1;
                if (entry.Held) held++;
                if (HasBouncePending(entry))
                {
                    bounces++;
                    _bounceDue.Enqueue(entry);
                }
                if (!entry.AllFinal)
                {
                    bool hold = entry.Held;
                    entry.Held = false;   // the scheduler sets it as it holds the entry out of its lanes
                    _scheduler.AddRecovered(entry);
                    if (hold) _scheduler.Hold(entry);
                }
            }
            _recovered.Clear();
            _recovered.TrimExcess();
            foreach (string file in SpoolRecovery.SegmentFiles(directory))
            {
                long sequence = SpoolRecovery.SequenceOf(file);
                // Only what recovery found: the supply may be making this process's first segment right now.
                if (sequence < _spool!.FirstNewSegment && !_liveBySegment.ContainsKey(sequence)) _emptySegments.Add(sequence);
            }
            foreach (var (segment, records) in bySegment)
            {
                if (_liveBySegment.ContainsKey(segment)) restated.AddRange(records);
            }
        }
        // Empty segments go before the journal that says they are finished: the other order, cut by a crash, would
        // leave finished messages with no record, to be sent again.
        DeleteEmptySegments();
        // A dead copy in a segment that stays is retracted before the journal that knows it is dead is compacted away;
        // one that cannot be keeps the old journal files (they fold to the same state).
        bool keepOld = false;
        foreach (var d in dead)
        {
            bool stays;
            lock (_gate) stays = _liveBySegment.ContainsKey(d.Segment);
            if (stays && !_spool!.TryRetractRecord(d.Segment, d.Offset, System.Text.Encoding.ASCII.GetBytes(d.Id)))
            {
                keepOld = true;
                _events.Trouble($"delivery: the dead copy of {d.Id} at {d.Segment:x16}+{d.Offset} could not be retracted; the old journal files stay");
            }
        }
        var journal = DeliveryJournal.Open(directory, _options.JournalFileSize, _options.JournalIo ?? SpoolIo.System);
        int err = restated.Count == 0 ? 0 : journal.Append(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(restated));
        if (err != 0)
        {
            _events.Trouble($"delivery: journal compaction failed (errno {err}); the old journal files stay");
        }
        else if (!keepOld)
        {
            foreach (string f in oldFiles) File.Delete(f);
        }
        Recovery = new RecoverySummary(live, held, bounces, read.Records, read.Damaged);
        return journal;
    }

    private static void Restore(QueueEntry entry, FoldedMessage folded, List<JournalRecord> restated, long now)
    {
        entry.Held = folded.Held;
        entry.BounceReference = folded.BounceReference;
        long next = 0;
        for (int i = 0; i < entry.Recipients.Length; i++)
        {
            var f = folded.Recipient((ushort)i);
            ref var rcpt = ref entry.Recipients[i];
            rcpt.State = f.State;
            rcpt.Attempts = f.Attempts;
            rcpt.Code = f.ReplyCode;
            rcpt.PossiblyDelivered = f.PossiblyDelivered;
            rcpt.BouncePending = f.State == RecipientState.Failed && !entry.NullSender && folded.BounceReference == 0;
            next = Math.Max(next, f.NextAttemptUnixMs);
            entry.Attempts = Math.Max(entry.Attempts, f.Attempts);
        }
        entry.NextAttemptUnixMs = next;
        Restate(entry, entry.Segment, entry.Offset, now, restated);
    }

    /// <summary>The records that say, at the place (<paramref name="segment"/>, <paramref name="offset"/>), all that
    /// the journal must keep of <paramref name="entry"/>: each recipient's state, attempts and last code, Hold, and the
    /// bounce reference. The same for the start's compaction and for copy-forward (FORMAT.md "Copy-forward"): folded
    /// alone, they give the entry back as it is.</summary>
    internal static void Restate(QueueEntry entry, long segment, long offset, long now, List<JournalRecord> into)
    {
        bool pending = false, bouncePending = false;
        for (int i = 0; i < entry.Recipients.Length; i++)
        {
            ref readonly var rcpt = ref entry.Recipients[i];
            pending |= rcpt.State == RecipientState.Pending;
            bouncePending |= rcpt.BouncePending;
            var type = rcpt.State switch
            {
                RecipientState.Delivered => JournalRecordType.Delivered,
                RecipientState.Failed => JournalRecordType.Failed,
                RecipientState.Deleted => JournalRecordType.Delete,
                RecipientState.Deferred => JournalRecordType.Deferred,
                _ => (JournalRecordType)0,
            };
            if (type == 0) continue;
            long next = type == JournalRecordType.Deferred ? entry.NextAttemptUnixMs : 0;
            into.Add(At(Record(type, entry, i, rcpt.Attempts, rcpt.Code, default, rcpt.PossiblyDelivered, now, next), segment, offset));
        }
        // A recipient an attempt handed out but never reported stays Pending in memory while the journal's whole-message
        // Deferred (FinishAttempt) already counts the attempt: restated the same way.
        if (pending && entry.Attempts > 0)
        {
            into.Add(At(Record(JournalRecordType.Deferred, entry, JournalRecord.WholeMessage, entry.Attempts, 0, default, false, now,
                entry.NextAttemptUnixMs), segment, offset));
        }
        if (entry.Held) into.Add(At(Record(JournalRecordType.Hold, entry, JournalRecord.WholeMessage, 0, 0, default, false, now, 0), segment, offset));
        // BounceQueued speaks for the whole message: while a later Failed recipient's bounce is still due it is left
        // out, so that the next start bounces again (a duplicate notice at worst, never a lost one).
        if (entry.BounceReference != 0 && !bouncePending)
        {
            into.Add(At(Record(JournalRecordType.BounceQueued, entry, JournalRecord.WholeMessage, 0, 0, default, false, now, entry.BounceReference),
                segment, offset));
        }
    }

    private static JournalRecord At(JournalRecord r, long segment, long offset) => r with { Segment = segment, Offset = offset };
}

/// <summary>What the delivery agent found at start.</summary>
public readonly record struct RecoverySummary(int Live, int Held, int BouncesDue, long JournalRecords, long DamagedRecords);
