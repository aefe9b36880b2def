// The queue commands with no server running (docs/DELIVERY.md "Queue commands"): the spool itself, under its
// directory lock, so no server can start on it meanwhile (and a running server's lock refuses us: exit 2).
// list and show read every committed record and the folded journal (FORMAT.md "Delivery journal"); hold,
// release and delete append one whole-message record (recipient 0xFFFF) per message, bounce one Failed record
// (550, 5.0.0) per recipient still pending, all in one durable journal append before the answer. The server
// composes those bounces when it next starts; flush has nothing to do without a server, and says so.
// A message whose every recipient is final is not in the queue: not listed, and its id is "not found" (exit 1).
// What it does not do: deliver, bounce, or release spool records: that is the server's, at its next start.
// Last replies: the journal keeps a reply's code (and a text record the server may write); offline shows the code.
// How it fails: no spool or a lock held elsewhere is exit 2 with a line; a journal write that fails is exit 2
// and says that none of the changes is sure to be durable (each is safe to repeat). Never throws for bad input.
using System.Globalization;
using System.Text;
using EdgeMta.Spool;
using EdgeMta.Spool.Native;

namespace EdgeMta.Delivery;

public sealed class OfflineQueue : IQueueControl
{
    private readonly string _spool;
    private readonly TimeProvider _time;

    public OfflineQueue(string spoolDirectory, TimeProvider? time = null)
    {
        _spool = spoolDirectory;
        _time = time ?? TimeProvider.System;
    }

    // One live message as read from the spool and the journal.
    private sealed record Live(QueueItem Item, long Segment, long Offset, FoldedMessage? Folded);

    public ValueTask<QueueResult> RunAsync(QueueRequest request, CancellationToken cancel)
    {
        if (!QueueRequestLine.Check(request, out string usage)) return ValueTask.FromResult(new QueueResult(2, usage + "\n"));
        if (!Directory.Exists(_spool)) return ValueTask.FromResult(new QueueResult(2, $"error: no spool at {_spool}\n"));
        string dir = Path.GetFullPath(_spool);
        int lockFd;
        try { lockFd = MessageSpool.TakeDirectoryLock(dir); }
        catch (IOException e) { return ValueTask.FromResult(new QueueResult(2, $"error: {e.Message}\n")); }
        try
        {
            cancel.ThrowIfCancellationRequested();
            List<Live> live = Read(dir);
            return ValueTask.FromResult(Run(dir, request, live));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return ValueTask.FromResult(new QueueResult(2, $"error: {e.Message}\n"));
        }
        finally
        {
            LibC.Close(lockFd);
        }
    }

    private QueueResult Run(string dir, QueueRequest request, List<Live> live)
    {
        var output = new StringBuilder();
        var targets = Targets(request, live, output, out bool missing);
        int found = missing ? 1 : 0;
        switch (request.Verb)
        {
            case QueueVerb.List:
                return new QueueResult(0, QueueFormatter.List(Items(live), request.Json));
            case QueueVerb.Show:
                output.Insert(0, QueueFormatter.Show(Items(targets), request.Json, replyTextKept: false));
                return new QueueResult(found, output.ToString());
            case QueueVerb.Flush:
                output.Append("the server is not running: nothing is tried now; it tries deferred mail when it starts\n");
                return new QueueResult(found, output.ToString());
        }
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var records = new List<JournalRecord>();
        var done = new StringBuilder();
        foreach (var m in targets)
        {
            string id = m.Item.QueueId;
            switch (request.Verb)
            {
                case QueueVerb.Hold when m.Item.Held:
                    done.Append(id).Append(": already held\n");
                    break;
                case QueueVerb.Release when !m.Item.Held:
                    done.Append(id).Append(": not held\n");
                    break;
                case QueueVerb.Hold or QueueVerb.Release or QueueVerb.Delete:
                    var type = request.Verb switch
                    {
                        QueueVerb.Hold => JournalRecordType.Hold,
                        QueueVerb.Release => JournalRecordType.Release,
                        _ => JournalRecordType.Delete,
                    };
                    records.Add(Whole(type, m, now));
                    done.Append(id).Append(request.Verb switch
                    {
                        QueueVerb.Hold => ": held\n",
                        QueueVerb.Release => ": released\n",
                        _ => ": deleted (no bounce)\n",
                    });
                    break;
                case QueueVerb.Bounce:
                    int failed = Fail(m, now, records);
                    done.Append(id).Append(": ").Append(failed.ToString(CultureInfo.InvariantCulture))
                        .Append(m.Item.Sender.Length == 0
                            ? " recipients failed (5.0.0); no bounce for a null sender\n"
                            : " recipients failed (5.0.0); the server sends the bounce when it next starts\n");
                    break;
            }
        }
        if (records.Count > 0)
        {
            int err = Append(dir, records);
            if (err != 0)
                return new QueueResult(2, output + $"error: the journal write failed (errno {err}): none of these changes is sure to be durable; run the command again\n");
        }
        return new QueueResult(found, output.Append(done).ToString());
    }

    // The messages a request names (in its order, each once), or every live one for --all; unknown ids noted.
    private static List<Live> Targets(QueueRequest request, List<Live> live, StringBuilder output, out bool missing)
    {
        missing = false;
        if (request.All) return live;
        var byId = new Dictionary<string, Live>(live.Count, StringComparer.Ordinal);
        foreach (var m in live) byId[m.Item.QueueId] = m;
        var targets = new List<Live>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string id in request.Ids)
        {
            if (!seen.Add(id)) continue;
            if (byId.TryGetValue(id, out var m)) targets.Add(m);
            else
            {
                output.Append(id).Append(": not in the queue\n");
                missing = true;
            }
        }
        return targets;
    }

    private static List<QueueItem> Items(List<Live> live)
    {
        var items = new List<QueueItem>(live.Count);
        foreach (var m in live) items.Add(m.Item);
        return items;
    }

    private static JournalRecord Whole(JournalRecordType type, Live m, long now)
        => new(type, m.Segment, m.Offset, m.Item.QueueId, JournalRecord.WholeMessage, 0, 0, 0, 0, 0, false, now, 0);

    // A Failed record (550 5.0.0) per recipient not yet final; returns how many.
    private static int Fail(Live m, long now, List<JournalRecord> records)
    {
        int n = 0;
        // Recipient indexes are 16 bits in the journal, 0xFFFF meaning the whole message (FORMAT.md).
        for (int i = 0; i < Math.Min(m.Item.Recipients.Count, JournalRecord.WholeMessage); i++)
        {
            var state = m.Folded?.Recipient((ushort)i) ?? default;
            if (state.State is RecipientState.Delivered or RecipientState.Failed or RecipientState.Deleted) continue;
            records.Add(new JournalRecord(JournalRecordType.Failed, m.Segment, m.Offset, m.Item.QueueId, (ushort)i,
                state.Attempts, 550, 5, 0, 0, false, now, 0));
            n++;
        }
        return n;
    }

    // One durable append for the whole command (FORMAT.md: operator records before the command's reply).
    private static int Append(string dir, List<JournalRecord> records)
    {
        // Sized to the records: a file per offline command, its unused end punched when let go.
        long size = Math.Max(16L << 10, Segment.Block + (records.Count + 8L) * JournalRecord.Size);
        using var journal = DeliveryJournal.Open(dir, Math.Min(size, 4L << 20));
        return journal.Append(records.ToArray());
    }

    // Every committed record whose recipients are not all final, with its folded state, in spool order.
    private static List<Live> Read(string dir)
    {
        RecordLiveness liveness = SpoolCommands.ReadLiveness(dir);
        var live = new List<Live>();
        SpoolReader.Read(dir, (in SpoolRecord r) =>
        {
            // A copy-forward's dead copy is not the message (FORMAT.md "Copy-forward"): each message once.
            if (!SpoolCommands.IsMessage(liveness, r, out var folded)) return;
            var e = r.Envelope;
            var recipients = new List<QueueItemRecipient>();
            bool anyLeft = false;
            int index = 0;
            foreach (var rcpt in e.GetRecipients())
            {
                var f = folded is null || index >= JournalRecord.WholeMessage ? default : folded.Recipient((ushort)index);
                bool final = f.State is RecipientState.Delivered or RecipientState.Failed or RecipientState.Deleted;
                anyLeft |= !final;
                string state = !final && folded is { Held: true } ? "held" : SpoolCommands.Word(f.State);
                DateTimeOffset? next = f.State == RecipientState.Deferred && f.NextAttemptUnixMs > 0
                    ? DateTimeOffset.FromUnixTimeMilliseconds(f.NextAttemptUnixMs) : null;
                string? reply = f.ReplyCode != 0 ? f.ReplyCode.ToString(CultureInfo.InvariantCulture) : null;
                recipients.Add(new QueueItemRecipient(Text(rcpt.ForwardPath), state, f.Attempts, next, reply));
                index++;
            }
            if (!anyLeft) return;   // every recipient final: no longer in the queue
            var item = new QueueItem(r.QueueIdString, r.Arrival, r.Data.Length, Text(e.ReversePath), folded is { Held: true }, recipients);
            live.Add(new Live(item, SpoolRecovery.SequenceOf(r.Segment), r.Offset, folded));
        });
        return live;
    }

    private static string Text(ReadOnlySpan<byte> bytes)
        => System.Text.Unicode.Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : Convert.ToBase64String(bytes);
}
