// Contract: message text: DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), and the end of a message.
//
// The DATA and BDAT readers (Data/) find the end of data, unstuff, count size, bare newlines and
// Received: headers; this part opens the message in the store (Received: first, RFC 5321 §4.4), decides
// the reply when the text ends, and hands a good message to the host to commit (AwaitingCommit).
// A message refused at its end (too big 552 5.3.4, bare CR/LF 550 5.6.0, mail loop 554 5.4.6) is aborted
// in the store and the session returns to state 3. A refused BDAT still has its octets read and dropped.
using System.Buffers;
using System.Buffers.Text;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol;

public sealed partial class SmtpSession
{
    /// <summary>RFC 5321 §6.3: a message with more Received: headers than this is looping (554 5.4.6).</summary>
    public const int MaxReceivedHeaders = 100;

    /// <summary>
    /// data = "DATA" CRLF                              ; RFC 5321 §4.1.1.4
    /// State 5: 354 → 6. State 4: 554 5.5.1 when every RCPT was refused, else 503 (PROTOCOL.md).
    /// </summary>
    private SessionStatus Data(IBufferWriter<byte> output)
    {
        if (_state == SmtpState.SenderApproved)
        {
            return RefuseStatus(_recipientTried ? Replies.NoValidRecipients : Replies.BadSequence, output);
        }
        if (_envelope.Body == BodyType.BinaryMime)
        {
            return RefuseStatus(Replies.DataAfterBinaryMime, output); // RFC 3030 §3: BINARYMIME needs BDAT
        }
        if (_chunking)
        {
            return RefuseStatus(Replies.BdatAfterData, output); // RFC 3030 §2: DATA and BDAT do not mix
        }
        if (!BeginMessage(output, out SessionStatus refused))
        {
            return refused;
        }
        _dataReader.Reset();
        _state = SmtpState.WritingMail;
        output.Write(Replies.StartMailInput);
        return SessionStatus.Continue;
    }

    /// <summary>The reader found CRLF.CRLF: refuse the message, or await its commit.</summary>
    private SessionStatus EndOfData(IBufferWriter<byte> output)
    {
        if (_dataReader.OverSize)
        {
            return RefuseMessage(Replies.MessageTooBig, output);
        }
        if (_dataReader.SawBareNewline && _options.BareNewlines == BareNewlinePolicy.Reject)
        {
            return RefuseMessage(Replies.BareNewlineInMessage, output);
        }
        if (_dataReader.ReceivedHeaderCount > MaxReceivedHeaders)
        {
            return RefuseMessage(Replies.MailLoop, output);
        }
        _phase = Phase.AwaitingCommit;
        return SessionStatus.AwaitingCommit;
    }

    private SessionStatus RefuseMessage(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        AbortMessage();
        EndTransaction();
        _state = SmtpState.Wait;
        return RefuseStatus(reply, output); // during a shutdown, Process then sends 421 (EndsForShutdown)
    }

    /// <summary>
    /// bdat-cmd   = "BDAT" SP chunk-size [ SP end-marker ] CRLF     ; RFC 3030 §2
    /// chunk-size = 1*DIGIT
    /// end-marker = "LAST"
    /// States 4 (554/503) and 5: the chunk is read; 250 per chunk; LAST ends the message. Refused, its octets are skipped.
    /// A malformed line (501) whose chunk size still reads has those octets skipped too, and ends a message
    /// in progress (RFC 3030 §2: a failed chunk fails the transaction): chunk octets are never read as commands.
    /// </summary>
    private SessionStatus Bdat(ReadOnlySpan<byte> argument, IBufferWriter<byte> output)
    {
        BdatSyntax syntax = ParseBdat(argument, out long length, out bool last);
        if (syntax != BdatSyntax.Valid)
        {
            if (_chunking)
            {
                AbortMessage();
                EndTransaction();
                _state = SmtpState.Wait;
            }
            if (syntax == BdatSyntax.SizeUnreadable)
            {
                // No count, so nothing says where the octets end: what follows is read as commands (Postfix does the same).
                return RefuseStatus(Replies.BdatSyntax, output);
            }
            if (syntax == BdatSyntax.SizeTooLarge)
            {
                // More octets announced than anyone sends: they cannot be skipped, and must not be read as commands.
                output.Write(Replies.BdatSyntax);
                return Close();
            }
            _discard = length;
            return RefuseStatus(Replies.BdatSyntax, output);
        }
        if (_state != SmtpState.RecipientApproved)
        {
            _discard = length;
            bool noValid = _state == SmtpState.SenderApproved && _recipientTried;
            return RefuseStatus(noValid ? Replies.NoValidRecipients : Replies.BadSequence, output);
        }
        if (!_chunking)
        {
            if (!BeginMessage(output, out SessionStatus refused))
            {
                _discard = length;
                return refused;
            }
            _bdatReader.Reset();
            _chunking = true;
        }
        _bdatReader.BeginChunk(length);
        _chunkActive = true;
        _chunkLast = last;
        _chunkLength = length;
        return SessionStatus.Continue;
    }

    /// <summary>Reads chunk octets (or skips a refused chunk's). True: go on with the next command; false: return <paramref name="status"/>.</summary>
    private bool ReadChunk(ReadOnlySpan<byte> rest, IBufferWriter<byte> output, ref int consumed, out SessionStatus status)
    {
        status = SessionStatus.Continue;
        if (_discard > 0)
        {
            int take = (int)Math.Min(_discard, rest.Length);
            consumed += take;
            _discard -= take;
            return _discard == 0;
        }
        if (_bdatReader.ChunkRemaining > 0)
        {
            if (rest.IsEmpty)
            {
                return false;
            }
            DataStatus read = _bdatReader.Read(rest, _sink, out int used);
            consumed += used;
            if (read == DataStatus.NeedMore)
            {
                return false;
            }
        }
        _chunkActive = false;
        if (_bdatReader.OverSize)
        {
            status = RefuseMessage(Replies.MessageTooBig, output);
            return status == SessionStatus.Continue;
        }
        if (!_chunkLast)
        {
            output.Write(Replies.ChunkOkPrefix);
            Span<byte> digits = output.GetSpan(20);
            Utf8Formatter.TryFormat(_chunkLength, digits, out int n);
            output.Advance(n);
            output.Write(Replies.ChunkOkSuffix);
            return true;
        }
        if (_bdatReader.ReceivedHeaderCount > MaxReceivedHeaders)
        {
            status = RefuseMessage(Replies.MailLoop, output);
            return status == SessionStatus.Continue;
        }
        _phase = Phase.AwaitingCommit;
        status = SessionStatus.AwaitingCommit;
        return false;
    }

    /// <summary>Opens the message in the store and writes the Received: header first; a store refusal is 451 4.3.0 / 452 4.3.1.</summary>
    private bool BeginMessage(IBufferWriter<byte> output, out SessionStatus status)
    {
        StoreBeginResult begun = _store!.Begin(_envelope);
        if (begun.Status != StoreBeginStatus.Started)
        {
            output.Write(begun.Status == StoreBeginStatus.Full ? Replies.StoreFull : Replies.StoreFailed); // not a client error
            status = SessionStatus.Continue;
            return false;
        }
        _queueIdLength = Math.Min(begun.QueueId.Length, _queueId.Length);
        begun.QueueId[.._queueIdLength].CopyTo(_queueId);
        _storeOpen = true;
        // On the stack, not a per-session array: 1.4 KB less for every idle connection.
        Span<byte> header = stackalloc byte[ReceivedHeader.MaxLength];
        int n = ReceivedHeader.Write(header, _envelope, _prepared.HostName, _queueId.AsSpan(0, _queueIdLength), _clock.GetUtcNow());
        _store.Append(header[..n]);
        status = SessionStatus.Continue;
        return true;
    }

    private enum BdatSyntax { Valid, SizeUnreadable, SizeTooLarge, BadMarker }

    /// <summary>Reads "count [LAST]". Leading zeros do not count toward the 18 digits a count may have.</summary>
    private static BdatSyntax ParseBdat(ReadOnlySpan<byte> argument, out long length, out bool last)
    {
        length = 0;
        last = false;
        int i = 0;
        int significant = 0;
        while (i < argument.Length && argument[i] >= (byte)'0' && argument[i] <= (byte)'9')
        {
            if (length > 0 || argument[i] != (byte)'0')
            {
                if (++significant > 18)
                {
                    return BdatSyntax.SizeTooLarge; // 10^18 octets or more: not a chunk anyone can send
                }
                length = length * 10 + (argument[i] - '0');
            }
            i++;
        }
        if (i == 0)
        {
            return BdatSyntax.SizeUnreadable;
        }
        if (i == argument.Length)
        {
            return BdatSyntax.Valid;
        }
        ReadOnlySpan<byte> marker = argument[i..];
        last = marker.Length == 5 && marker[0] == (byte)' ' && System.Text.Ascii.EqualsIgnoreCase(marker[1..], "LAST"u8);
        return last ? BdatSyntax.Valid : BdatSyntax.BadMarker;
    }

    /// <summary>The host's durable write ended: 250 with the queue id → 7, or 451 / 452 → 3. With
    /// <see cref="CommitOutcome.Refused"/>, <paramref name="refusal"/> is the whole reply (CRLF included) → 3.</summary>
    public SessionStatus CompleteMessage(CommitOutcome outcome, IBufferWriter<byte> output, ReadOnlySpan<byte> refusal = default)
    {
        if (_phase != Phase.AwaitingCommit)
        {
            throw new InvalidOperationException("CompleteMessage without AwaitingCommit");
        }
        _phase = Phase.Commands;
        _storeOpen = false;
        EndTransaction();
        switch (outcome)
        {
            case CommitOutcome.Committed:
                output.Write(Replies.QueuedAsPrefix);
                output.Write(_queueId.AsSpan(0, _queueIdLength));
                output.Write(Replies.Crlf);
                _state = SmtpState.ReadyToDeliver;
                break;
            // Storage trouble is the server's, not a client mistake: it does not count toward the error limit.
            case CommitOutcome.Full452:
                _state = SmtpState.Wait;
                output.Write(Replies.StoreFull);
                break;
            // A content check refused it (docs/SCREENING.md): the host's reply. Like storage trouble it does not
            // count toward the error limit: the client made no protocol mistake.
            case CommitOutcome.Refused when !refusal.IsEmpty:
                _state = SmtpState.Wait;
                output.Write(refusal);
                break;
            default:
                _state = SmtpState.Wait;
                output.Write(Replies.StoreFailed);
                break;
        }
        if (_shuttingDown && !_quitPipelined)
        {
            output.Write(_prepared.ShuttingDown);
            return Close();
        }
        return SessionStatus.Continue; // a pipelined QUIT, offered next, gets its 221 (EndsForShutdown)
    }
}
