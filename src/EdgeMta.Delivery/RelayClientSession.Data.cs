// Contract: the message octets and the replies to them. DATA (RFC 5321 §4.1.1.4): the spooled octets exactly,
// a "." doubled at the start of every line (§4.5.2), a CRLF added when the data does not end with one, then
// ".", CRLF. BDAT (RFC 3030 §2): the octets as they are, in chunks of at most 1 MiB, each chunk's reply read
// before the next is sent, the last one "BDAT n LAST". Either way the octets leave in writes of at most 64 KiB
// (HandlerStatus.WriteMore, OnWritable), copied from the transaction's memory with no allocation and no string.
// The final reply is every accepted recipient's answer in SMTP, and LMTP sends one reply per accepted recipient
// in RCPT order (RFC 2033 §4.2). The final dot (or BDAT LAST) counts as sent once OnWritable says every octet
// before it has left: only then can a lost reply mean "possibly delivered" (RFC 1047).
using System.Buffers;
using System.Buffers.Text;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

public sealed partial class RelayClientSession
{
    /// <summary>The most octets one write of message data takes: a bounded share of the transport's output
    /// buffer (TransportOptions.MaxOutputBytes is 256 KiB), small enough to interleave with other connections.</summary>
    internal const int BlockBytes = 64 * 1024;

    /// <summary>The most octets one BDAT chunk carries: large enough that the per-chunk reply costs little,
    /// small enough that a refusal wastes little (RFC 3030 §2 sets no limit).</summary>
    internal const int ChunkBytes = 1024 * 1024;

    private int _dataOffset;
    private bool _atLineStart;
    /// <summary>DATA or BDAT was sent and the data's final reply is not in: QUIT now would be read as data.</summary>
    private bool _inData;
    /// <summary>The final dot or the last BDAT chunk is in the output.</summary>
    private bool _finalWritten;
    /// <summary>... and the transport said it has left (OnWritable).</summary>
    private bool _finalSent;
    private int _chunkEnd;
    private bool _chunkLast;
    private bool _chunkWritten;
    private int _lmtpNext;

    private HandlerStatus StartData(IBufferWriter<byte> output)
    {
        _phase = Phase.DataStream;
        _dataOffset = 0;
        _atLineStart = true;
        // RFC 5321 §4.5.3.2.3: 3 minutes for each block sent.
        _info.SetIdleTimeout(_options.DataBlockTimeout);
        return WriteData(output);
    }

    private HandlerStatus WriteData(IBufferWriter<byte> output)
    {
        if (_finalWritten)
            return FinalSent();

        var data = _tx!.Data.Span;
        var block = output.GetSpan(BlockBytes);
        int limit = Math.Min(block.Length, BlockBytes);
        int written = 0;
        // Bounded: each pass copies at least one octet; 3 octets of room leave space for a doubled dot and one more.
        while (_dataOffset < data.Length && limit - written >= 3)
        {
            if (_atLineStart && data[_dataOffset] == '.')
                block[written++] = (byte)'.';
            var window = data[_dataOffset..];
            int room = limit - written;
            if (window.Length > room)
                window = window[..room];
            int lineFeed = window.IndexOf((byte)'\n');
            int take = lineFeed < 0 ? window.Length : lineFeed + 1;
            _atLineStart = lineFeed >= 0;
            window[..take].CopyTo(block[written..]);
            written += take;
            _dataOffset += take;
        }

        if (_dataOffset == data.Length && limit - written >= 5)
        {
            var end = data.IsEmpty || data.EndsWith("\r\n"u8) ? ".\r\n"u8 : "\r\n.\r\n"u8;
            end.CopyTo(block[written..]);
            written += end.Length;
            _finalWritten = true;
        }

        output.Advance(written);
        return HandlerStatus.WriteMore;
    }

    private HandlerStatus FinalSent()
    {
        _finalSent = true;
        _phase = Phase.FinalReply;
        // RFC 5321 §4.5.3.2.6: 10 minutes for the reply to the end of the data.
        _info.SetIdleTimeout(_options.FinalReplyTimeout);
        return HandlerStatus.Continue;
    }

    private HandlerStatus StartBdat(IBufferWriter<byte> output)
    {
        _dataOffset = 0;
        _inData = true;
        return BeginChunk(output);
    }

    private HandlerStatus BeginChunk(IBufferWriter<byte> output)
    {
        int length = _tx!.Data.Length;
        int size = Math.Min(ChunkBytes, length - _dataOffset);
        _chunkEnd = _dataOffset + size;
        _chunkLast = _chunkEnd == length;
        _chunkWritten = false;
        // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF   (RFC 3030 §2)
        Span<byte> command = stackalloc byte[32];
        "BDAT "u8.CopyTo(command);
        Utf8Formatter.TryFormat(size, command[5..], out int digits);
        int used = 5 + digits;
        var tail = _chunkLast ? " LAST\r\n"u8 : "\r\n"u8;
        tail.CopyTo(command[used..]);
        used += tail.Length;
        output.Write(command[..used]);
        _phase = Phase.BdatStream;
        _info.SetIdleTimeout(_options.DataBlockTimeout);
        return WriteChunk(output, BlockBytes - used);
    }

    private HandlerStatus WriteBdat(IBufferWriter<byte> output)
    {
        if (!_chunkWritten)
            return WriteChunk(output, BlockBytes);
        if (_chunkLast)
            return FinalSent();
        _phase = Phase.BdatReply;
        return HandlerStatus.Continue;
    }

    private HandlerStatus WriteChunk(IBufferWriter<byte> output, int room)
    {
        int size = Math.Min(room, _chunkEnd - _dataOffset);
        output.Write(_tx!.Data.Span.Slice(_dataOffset, size));
        _dataOffset += size;
        if (_dataOffset == _chunkEnd)
        {
            _chunkWritten = true;
            _finalWritten = _chunkLast;
        }

        return HandlerStatus.WriteMore;
    }

    private HandlerStatus OnBdatReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code / 100 == 2)
            return BeginChunk(output);
        // RFC 3030 §2: a refused chunk ends the transaction; the octets already sent are dropped by the server.
        string words = ReplyText(reply);
        for (int k = 0; k < _acceptedCount; k++)
            SetOutcome(ref _tx!.Outcomes[_accepted[k]], reply, words);
        return Finish(output, rsetNeeded: true);
    }

    private HandlerStatus OnFinalReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        string words = ReplyText(reply);
        if (_lmtp)
        {
            // RFC 2033 §4.2: one reply for each RCPT that succeeded, in the order of the RCPTs.
            FinalOutcome(_accepted[_lmtpNext++], reply, words);
            if (_lmtpNext < _acceptedCount)
                return HandlerStatus.Continue;
        }
        else
        {
            for (int k = 0; k < _acceptedCount; k++)
                FinalOutcome(_accepted[k], reply, words);
        }

        return Finish(output, rsetNeeded: false);
    }

    private void FinalOutcome(int index, SmtpReply reply, string words)
    {
        var tx = _tx!;
        ref var outcome = ref tx.Outcomes[index];
        SetOutcome(ref outcome, reply, words);
        // docs/DELIVERY.md: the hop cannot carry NOTIFY=SUCCESS without DSN, so the agent sends the notice.
        if (outcome.Kind == OutcomeKind.Delivered && !Offers(SmtpExtensions.Dsn))
            outcome.RelayedWithoutDsn = AsksSuccessNotice(tx.RecipientParameters[index].Span);
    }
}
