// The handler as the session's message store: the protocol's envelope and message text go into one
// spool record. Storage trouble is always 4xx (docs/PROTOCOL.md): the spool says Failed (451 4.3.0) or Full
// (452 4.3.1), and the client tries again later; nothing acknowledged is ever lost.
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Spool;
using SpoolCommit = EdgeMta.Spool.CommitResult;

namespace EdgeMta.Server;

internal sealed partial class SmtpConnectionHandler : IMessageStore
{
    private SpoolMessage? _message;
    private long _messageStartedAt;

    public StoreReadiness Readiness => _context.Spool.Readiness switch
    {
        SpoolReadiness.Ready => StoreReadiness.Ready,
        SpoolReadiness.Full => StoreReadiness.Full,
        _ => StoreReadiness.Failing,
    };

    public StoreBeginResult Begin(Envelope envelope)
    {
        MessageSpool spool = _context.Spool;
        switch (spool.Readiness)
        {
            case SpoolReadiness.Full: return StoreBeginResult.Full;
            // A write failed since MAIL: 451 now, not a 354 and a whole message refused at its dot.
            case SpoolReadiness.Failing: return StoreBeginResult.Failed;
        }
        SpoolMessage message;
        try
        {
            message = spool.Begin(envelope.ClientAddress, envelope.HeloName, envelope.ReversePath, envelope.MailParameters);
            for (int i = 0; i < envelope.RecipientCount; i++)
            {
                message.AddRecipient(envelope.GetForwardPath(i), envelope.GetRecipientParameters(i));
            }
        }
        catch (IOException e)
        {
            _context.Log.Begin(LogEvent.SpoolTrouble).Field("error"u8, e.Message).End();
            return StoreBeginResult.Failed;
        }
        _message = message;
        _messageStartedAt = _context.Clock.GetTimestamp();
        BeginBody();
        return StoreBeginResult.Started(message.QueueId);
    }

    public void Append(ReadOnlySpan<byte> octets)
    {
        if (_body is not null) _body.Append(octets); // --rspamd: kept until the verdict (SmtpConnectionHandler.Rspamd.cs)
        else _message!.Append(octets);
    }

    public void Abort() => AbortOpenMessage();

    private void AbortOpenMessage()
    {
        if (_message is null || Volatile.Read(ref _commitState) != Idle) return;
        DropBody();
        _message.Abort();
        _message = null;
    }

    // Reads the commit's result once (a pooled IValueTaskSource may be reused after) and logs the message.
    private CommitOutcome TakeCommitOutcome()
    {
        SpoolMessage message = _message!;
        _message = null;
        // Copied before GetResult: after it the spool may hand the pooled message to another session.
        Span<byte> id = stackalloc byte[64];
        int idLength = Math.Min(message.QueueId.Length, id.Length);
        message.QueueId[..idLength].CopyTo(id);
        id = id[..idLength];
        long size = message.Size;
        SpoolCommit result;
        try
        {
            result = _commit.GetResult();
        }
        catch (IOException)
        {
            result = SpoolCommit.Failed;
        }
        Envelope envelope = _session.Envelope;
        if (result == SpoolCommit.Committed)
        {
            _messages++;
            _context.Counters.MessageAccepted(size);
            _context.Log.Begin(LogEvent.MessageAccepted)
                .Field("id"u8, id)
                .Field("client"u8, ClientAddress)
                .Field("from"u8, envelope.ReversePath)
                .Field("rcpts"u8, envelope.RecipientCount)
                .Field("size"u8, size)
                .Field("us"u8, (long)_context.Clock.GetElapsedTime(_messageStartedAt).TotalMicroseconds)
                .End();
            return CommitOutcome.Committed;
        }
        LogRefused(id, result == SpoolCommit.Full);
        return result == SpoolCommit.Full ? CommitOutcome.Full452 : CommitOutcome.Failed451;
    }

    // `spool=error` alone told an operator nothing: the errno of the spool's last storage error says why
    // (EROFS, EIO, ...). It is the spool's last, not necessarily this commit's own: under one fault they agree.
    private void LogRefused(ReadOnlySpan<byte> id, bool full)
    {
        var line = _context.Log.Begin(LogEvent.MessageRefused)
            .Field("id"u8, id)
            .Field("client"u8, ClientAddress)
            .Field("spool"u8, full ? "full"u8 : "error"u8);
        int errno = full ? 0 : _context.Spool.LastStorageError;
        if (errno != 0)
        {
            ReadOnlySpan<byte> name = Errno.Name(errno);
            if (name.IsEmpty) line = line.Field("errno"u8, errno);
            else line = line.Field("errno"u8, name);
        }
        line.End();
    }
}
