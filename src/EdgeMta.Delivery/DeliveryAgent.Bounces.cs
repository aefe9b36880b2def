// Bounces and expiry (docs/DELIVERY.md "Bounces", "--queue-lifetime", "--bounce-lifetime"). A bounce is an ordinary
// message: composed here (BounceComposer), committed to the spool like a session's message, then delivered by the
// same agent (the spool's observer reports its commit). The original is released only after BounceQueued is
// durable: a crash in between composes it again (a second bounce at worst, never none).
// One bounce per message per batch of failures: every recipient failed since the last bounce goes in one notice.
// While the spool refuses (full disk, I/O error), bounces wait and are tried again every 30 s; deliveries go on.
using System.Buffers;
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    private static readonly TimeSpan BounceRetry = TimeSpan.FromSeconds(30);
    private readonly BounceComposer _composer;
    private readonly Queue<QueueEntry> _bounceDue = new();
    private readonly Queue<Attempt> _relayedDue = new();
    private long _bounceRetryAt;
    private long _messageIds;

    private string NextMessageId() => $"{NowMs:x}.{Interlocked.Increment(ref _messageIds)}@{_options.Hostname}";

    private void ComposeBounces()
    {
        while (true)
        {
            QueueEntry entry;
            lock (_gate)
            {
                if (_bounceRetryAt != 0 && NowMs < _bounceRetryAt) return;
                _bounceRetryAt = 0;
                if (!_bounceDue.TryDequeue(out entry!)) return;
                if (!_entries.ContainsKey(entry.QueueId) || !HasBouncePending(entry)) continue;
            }
            if (!TrySendBounce(entry))
            {
                lock (_gate)
                {
                    _bounceDue.Enqueue(entry);
                    _bounceRetryAt = NowMs + (long)BounceRetry.TotalMilliseconds;
                }
                return;
            }
        }
    }

    /// <summary>Composes and commits the notice for the recipients of <paramref name="entry"/> waiting for one;
    /// false when the spool refused it (tried again later).</summary>
    private bool TrySendBounce(QueueEntry entry)
    {
        var message = Load(entry);
        if (message is null) return false;
        try
        {
            var reported = new List<int>();
            var recipients = new List<BounceRecipient>();
            DateTimeOffset now = _clock.GetUtcNow();
            lock (_gate)
            {
                for (int r = 0; r < entry.Recipients.Length; r++)
                {
                    ref var rcpt = ref entry.Recipients[r];
                    if (!rcpt.BouncePending) continue;
                    if (!BouncePolicy.ShouldNotify(message.Sender, NotifyOf(message, r), DsnAction.Failed))
                    {
                        rcpt.BouncePending = false;   // NOTIFY=NEVER or without FAILURE (RFC 3461 §4.1)
                        continue;
                    }
                    reported.Add(r);
                    string reply = rcpt.LastReply ?? $"{rcpt.Code} failed";
                    recipients.Add(new BounceRecipient(message.Recipient(r), message.Parameter(message.Parameters[r], "ORCPT"),
                        DsnAction.Failed, StatusOf(reply, rcpt.Code), rcpt.Code != 0 ? _hops[0].Name : null, rcpt.Code != 0 ? reply : null, now));
                }
            }
            if (reported.Count == 0)
            {
                lock (_gate) TryReleaseLocked(entry);
                return true;
            }
            var result = SpoolNotice(entry, message, recipients, out string? bounceId, out string? error);
            if (error is not null)
            {
                // Nothing can be said to this sender (a malformed address): the failure stands, logged, no notice.
                _events.Trouble($"delivery: no bounce for {entry.QueueId}: {error}");
                return JournalBounceQueued(entry, reported, 2, null);
            }
            if (result != CommitResult.Committed)
            {
                _events.Trouble($"delivery: bounce for {entry.QueueId} not spooled ({result}); tried again in {BounceRetry.TotalSeconds:0} s");
                return false;
            }
            return JournalBounceQueued(entry, reported, 1, (bounceId!, message.Sender));
        }
        finally
        {
            message.Return();
        }
    }

    /// <summary>Composes a notice (failed, delayed or relayed) about <paramref name="recipients"/> and commits it to
    /// the spool: MAIL FROM:&lt;&gt;, RCPT TO: the original sender (docs/DELIVERY.md "Bounces").</summary>
    private CommitResult SpoolNotice(QueueEntry entry, LoadedMessage message, List<BounceRecipient> recipients, out string? noticeId, out string? error)
    {
        noticeId = null;
        string? ret = message.Parameter(message.MailParameters, "RET");
        var envelope = new BounceEnvelope(message.Sender, message.Parameter(message.MailParameters, "ENVID"),
            ret is null ? DsnReturn.Unspecified : ret.Equals("HDRS", StringComparison.OrdinalIgnoreCase) ? DsnReturn.Headers : DsnReturn.Full,
            message.Parameter(message.MailParameters, "SMTPUTF8") is not null, DateTimeOffset.FromUnixTimeMilliseconds(entry.ArrivalUnixMs));
        var output = new ArrayBufferWriter<byte>(4096 + Math.Min(message.DataLength, BounceComposer.FullReturnLimit * 2));
        if (!_composer.TryWrite(envelope, message.Data.Span, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(recipients), output, out error))
        {
            return CommitResult.Failed;
        }
        var spooled = _spool!.Begin("127.0.0.1"u8, System.Text.Encoding.ASCII.GetBytes(_options.Hostname), default, default);
        noticeId = System.Text.Encoding.ASCII.GetString(spooled.QueueId);
        spooled.AddRecipient(message.Slice(message.ReversePath).Span, default);
        spooled.Append(output.WrittenSpan);
        var pending = spooled.CommitAsync();
        return pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>--delay-warning: one "delayed" notice per message (RFC 3464 Action: delayed) when NOTIFY allows it.
    /// Kept in memory only: after a restart a message may warn once more, which tells the sender nothing false.</summary>
    private void SendDelayNotices()
    {
        while (true)
        {
            QueueEntry entry;
            lock (_gate)
            {
                if (!_scheduler.TryTakeDelayWarning(out entry!)) return;
                entry.DelayNoticeSent = true;
            }
            var message = Load(entry);
            if (message is null) continue;
            var recipients = new List<BounceRecipient>();
            DateTimeOffset now = _clock.GetUtcNow();
            lock (_gate)
            {
                for (int r = 0; r < entry.Recipients.Length; r++)
                {
                    var rcpt = entry.Recipients[r];
                    if (rcpt.IsFinal || !BouncePolicy.ShouldNotify(message.Sender, NotifyOf(message, r), DsnAction.Delayed)) continue;
                    recipients.Add(new BounceRecipient(message.Recipient(r), message.Parameter(message.Parameters[r], "ORCPT"), DsnAction.Delayed,
                        StatusOf(rcpt.LastReply ?? "", rcpt.Code == 0 ? (ushort)400 : rcpt.Code), rcpt.Code != 0 ? _hops[0].Name : null, rcpt.LastReply, now));
                }
            }
            if (recipients.Count > 0 && SpoolNotice(entry, message, recipients, out string? id, out _) == CommitResult.Committed)
            {
                _events.Bounce(id!, entry.QueueId, message.Sender);
            }
            message.Return();
        }
    }

    /// <summary>A "relayed" notice (RFC 3464 Action: relayed) for recipients delivered to a hop without DSN while the
    /// sender asked NOTIFY=SUCCESS (docs/DELIVERY.md): best effort, from the attempt's own copy of the message.</summary>
    private void SendRelayedNotices()
    {
        while (true)
        {
            Attempt a;
            lock (_gate)
            {
                if (!_relayedDue.TryDequeue(out a!)) return;
            }
            try
            {
                SendRelayedNotice(a.Entry, a.Message, a.Relayed, _hops[a.Hop].Name);
            }
            finally
            {
                a.Message.Return();
            }
        }
    }

    private void SendRelayedNotice(QueueEntry entry, LoadedMessage message, List<int> relayed, string relay)
    {
        var recipients = new List<BounceRecipient>();
        DateTimeOffset now = _clock.GetUtcNow();
        foreach (int r in relayed)
        {
            recipients.Add(new BounceRecipient(message.Recipient(r), message.Parameter(message.Parameters[r], "ORCPT"), DsnAction.Relayed,
                "2.0.0", relay, entry.Recipients[r].LastReply, now));
        }
        if (SpoolNotice(entry, message, recipients, out string? id, out _) == CommitResult.Committed) _events.Bounce(id!, entry.QueueId, message.Sender);
    }

    private bool JournalBounceQueued(QueueEntry entry, List<int> reported, long reference, (string Id, string To)? bounce)
    {
        var record = Record(JournalRecordType.BounceQueued, entry, JournalRecord.WholeMessage, 0, 0, default, false, NowMs, reference);
        int err = _journal!.AppendAsync([record]).GetAwaiter().GetResult();
        if (err != 0) return false;   // the bounce is in the spool already: a second one may follow, never none
        lock (_gate)
        {
            foreach (int r in reported) entry.Recipients[r].BouncePending = false;
            entry.BounceReference = reference;
            if (bounce is { } b) _events.Bounce(b.Id, entry.QueueId, b.To);
            TryReleaseLocked(entry);
        }
        return true;
    }

    private static string StatusOf(string reply, ushort code)
    {
        // "550 5.1.1 text": the enhanced code when the reply has one (RFC 3463), else 5.0.0 (docs/DELIVERY.md);
        // the agent's own words start with the code ("4.4.7 message expired").
        if (reply.Length > 5 && reply[1] == '.' && reply.IndexOf(' ') is > 4 and var own && reply[..own].Split('.').Length == 3) return reply[..own];
        int space = reply.IndexOf(' ');
        if (space > 0 && reply.Length > space + 5 && reply[space + 1] is '4' or '5' && reply[space + 2] == '.')
        {
            int end = reply.IndexOf(' ', space + 1);
            string candidate = end < 0 ? reply[(space + 1)..] : reply[(space + 1)..end];
            if (candidate.Split('.').Length == 3) return candidate;
        }
        return code is >= 400 and < 500 ? "4.0.0" : "5.0.0";
    }

    /// <summary>Messages past --queue-lifetime fail their pending recipients (4.4.7) and bounce; null-sender ones
    /// past --bounce-lifetime are dropped with a log line, never bounced.</summary>
    private void ExpireDue()
    {
        while (true)
        {
            QueueEntry entry;
            lock (_gate)
            {
                if (!_scheduler.TryTakeExpired(out entry!)) return;
            }
            var message = Load(entry);
            lock (_gate)
            {
                var records = new List<JournalRecord>();
                long now = NowMs;
                for (int r = 0; r < entry.Recipients.Length; r++)
                {
                    ref var rcpt = ref entry.Recipients[r];
                    if (rcpt.IsFinal) continue;
                    rcpt.State = RecipientState.Failed;
                    rcpt.Code = 0;
                    rcpt.LastReply = "4.4.7 message expired in the queue" + (rcpt.LastReply is null ? "" : "; last reply: " + rcpt.LastReply);
                    rcpt.BouncePending = !entry.NullSender && message is not null
                        && BouncePolicy.ShouldNotify(message.Sender, NotifyOf(message, r), DsnAction.Failed);
                    records.Add(Record(JournalRecordType.Expired, entry, r, rcpt.Attempts, 0, new EnhancedStatusCode(4, 4, 7), false, now, 0));
                    _events.Failed(entry.QueueId, message?.Recipient(r) ?? $"#{r}", rcpt.LastReply);
                }
                message?.Return();
                _journal!.Post(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records), err =>
                {
                    if (err != 0) return;   // not durable: the next start expires it again
                    lock (_gate)
                    {
                        if (HasBouncePending(entry)) _bounceDue.Enqueue(entry);
                        TryReleaseLocked(entry);
                        _wake = true;
                        Monitor.Pulse(_gate);
                    }
                });
            }
        }
    }
}
