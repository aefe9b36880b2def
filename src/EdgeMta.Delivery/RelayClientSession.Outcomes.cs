// Contract: what the session reports. A reply becomes a recipient's outcome (docs/DELIVERY.md "Replies, per
// recipient": 2xx delivered, 5xx failed, anything else deferred), with the reply's enhanced status code when the
// hop advertised ENHANCEDSTATUSCODES (RFC 2034 §3) and else x.0.0 of its class ("Bounces"). A transaction ends
// with IRelayWork.Completed exactly once, every recipient decided (the open ones Deferred); the session ends with
// IRelayWork.Ended exactly once. A connection lost, timed out or talking nonsense defers what is open, and only
// after the final dot left does that count as possibly delivered (RFC 1047). The reply text is made a string
// once per distinct reply: the last one is kept and reused while the server repeats it word for word.
using System.Buffers;
using System.Text;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

public sealed partial class RelayClientSession
{
    /// <summary>RelayTransaction.RecipientOutcome.Reply holds at most this many characters.</summary>
    internal const int MaxReplyChars = 512;

    private readonly byte[] _replyScratch = new byte[MaxReplyChars];
    private readonly byte[] _lastReply = new byte[MaxReplyChars];
    private int _lastReplyLength = -1;
    private string _lastReplyText = string.Empty;

    /// <summary>Why the session stopped in the middle.</summary>
    private enum Lost : byte { Closed, TimedOut, BadReply, Shutdown }

    private void SetOutcome(ref RecipientOutcome outcome, SmtpReply reply, string words)
    {
        int replyClass = reply.Code / 100;
        outcome.Kind = replyClass switch
        {
            2 => OutcomeKind.Delivered,
            5 => OutcomeKind.Failed,
            _ => OutcomeKind.Deferred,
        };
        outcome.Code = (ushort)reply.Code;
        outcome.Status = reply.Enhanced.IsPresent && Offers(SmtpExtensions.EnhancedStatusCodes)
            ? reply.Enhanced
            : new EnhancedStatusCode((byte)(replyClass is 2 or 5 ? replyClass : 4), 0, 0);
        outcome.Reply = words;
        outcome.PossiblyDelivered = false;
    }

    /// <summary>The reply as one line: its lines joined by a space, without the last CRLF, at most 512 characters.</summary>
    private string ReplyText(SmtpReply reply)
    {
        var raw = reply.Raw[..^2];
        int length = 0;
        for (int i = 0; i < raw.Length && length < _replyScratch.Length; i++)
        {
            byte b = raw[i];
            if (b == '\r' && i + 1 < raw.Length && raw[i + 1] == '\n')
            {
                _replyScratch[length++] = (byte)' ';
                i++;
                continue;
            }

            _replyScratch[length++] = b;
        }

        var text = _replyScratch.AsSpan(0, length);
        if (length == _lastReplyLength && text.SequenceEqual(_lastReply.AsSpan(0, length)))
            return _lastReplyText;
        text.CopyTo(_lastReply);
        _lastReplyLength = length;
        // Latin-1: one char per octet, so a server's UTF-8 or stray octets never turn into an exception.
        _lastReplyText = Encoding.Latin1.GetString(text);
        return _lastReplyText;
    }

    private string ReplyLine(SmtpReply reply) => ReplyText(reply);

    /// <summary>Every open recipient of the transaction takes this reply (421, a refused RSET), then Completed.</summary>
    private void DeferOpen(SmtpReply reply, string words)
    {
        var tx = _tx;
        if (tx is null)
            return;
        for (int i = 0; i < _recipients; i++)
        {
            ref var outcome = ref tx.Outcomes[i];
            if (outcome.Kind != OutcomeKind.None)
                continue;
            SetOutcome(ref outcome, reply, words);
            // A 421 is never final for a recipient, whatever it says (RFC 5321 §3.8).
            outcome.Kind = OutcomeKind.Deferred;
            outcome.PossiblyDelivered = _finalSent;
        }

        CompleteTransaction();
    }

    private HandlerStatus ServerClosing(SmtpReply reply)
    {
        string where = PhaseName();
        string words = ReplyText(reply);
        DeferOpen(reply, words);
        End(SessionEnd.Broken, $"{words} ({where})");
        return CloseNow();
    }

    /// <summary>The open recipients are deferred with the session's own words; Completed follows.</summary>
    private void Abandon(Lost why)
    {
        var tx = _tx;
        if (tx is null)
            return;
        // RFC 3463: 4.4.1 no answer from host, 4.4.2 bad connection, 4.3.2 system not accepting messages.
        var (status, words) = why switch
        {
            Lost.TimedOut => (new EnhancedStatusCode(4, 4, 1), "4.4.1 next hop did not answer in time"),
            Lost.BadReply => (new EnhancedStatusCode(4, 4, 2), "4.4.2 next hop sent a reply that breaks RFC 5321 §4.2"),
            Lost.Shutdown => (new EnhancedStatusCode(4, 3, 2), "4.3.2 delivery stopped: the server is stopping"),
            _ => (new EnhancedStatusCode(4, 4, 2), "4.4.2 connection to the next hop lost"),
        };
        // docs/DELIVERY.md: lost after the final dot and before its reply is the one possible duplicate.
        bool possibly = _finalSent && why != Lost.Shutdown;
        for (int i = 0; i < _recipients; i++)
        {
            ref var outcome = ref tx.Outcomes[i];
            if (outcome.Kind != OutcomeKind.None)
                continue;
            outcome = new RecipientOutcome
            {
                Kind = OutcomeKind.Deferred,
                Status = status,
                Reply = words,
                PossiblyDelivered = possibly && IsAccepted(i),
            };
        }

        CompleteTransaction();
    }

    private bool IsAccepted(int index) => Array.IndexOf(_accepted, index, 0, _acceptedCount) >= 0;

    private HandlerStatus Break(Lost why, string detail)
    {
        string where = PhaseName();
        Abandon(why);
        End(EndBeforeGreeting(), why == Lost.TimedOut ? $"timed out {where}" : $"bad reply {where}: {detail}");
        return CloseNow();
    }

    /// <summary>The transaction is over: anything still open is deferred, the agent hears Completed, the session
    /// goes on with the next one (or QUIT when stopping).</summary>
    private HandlerStatus Finish(IBufferWriter<byte> output, bool rsetNeeded)
    {
        _needRset = rsetNeeded;
        var tx = _tx!;
        for (int i = 0; i < _recipients; i++)
        {
            ref var outcome = ref tx.Outcomes[i];
            if (outcome.Kind == OutcomeKind.None)
                outcome = new RecipientOutcome { Kind = OutcomeKind.Deferred, Status = new EnhancedStatusCode(4, 0, 0), Reply = "4.0.0 no reply for this recipient" };
        }

        CompleteTransaction();
        if (_shutdownRequested)
        {
            End(SessionEnd.Shutdown, "server stopping");
            return Quit(output);
        }

        return NextTransaction(output);
    }

    private void CompleteTransaction()
    {
        var tx = _tx;
        if (tx is null)
            return;
        _tx = null;
        _inData = false;
        _work.Completed(tx);
    }

    /// <summary>Broken is for a dialogue that had begun (RelayTransaction.cs); a hop that never greets is as
    /// dead as one that refuses (docs/DELIVERY.md "The next hop as a whole").</summary>
    private SessionEnd EndBeforeGreeting() => _phase == Phase.Greeting ? SessionEnd.Refused : SessionEnd.Broken;

    private void End(SessionEnd end, string reason)
    {
        if (_ended)
            return;
        _ended = true;
        _work.Ended(end, reason);
    }
}
