// Contract: what the host tells a session besides bytes: a timeout, a shutdown, TLS established, reuse, a lower
// error limit under stress (docs/SCREENING.md "Slow clients");
// and how a session that a shutdown let finish its transaction ends (421, or 221 to a pipelined QUIT).
//
// A timeout closes with 421 4.4.2 (RFC 5321 §4.5.3.2); a shutdown closes idle sessions with 421 4.3.2 and
// lets a message being read or committed finish first (PROTOCOL.md); after the TLS handshake the session
// forgets everything the client said before (RFC 3207 §4.2); Reset makes a pooled session new again.
using System.Buffers;

namespace EdgeMta.Protocol;

public sealed partial class SmtpSession
{
    /// <summary>Message text is expected next (DATA's, a BDAT chunk's, or a refused chunk's to skip), not a command line.</summary>
    public bool ReadingMessageText => _state == SmtpState.WritingMail || _chunkActive || _discard > 0;
    /// <summary>
    /// Errors that close the session: the options' <see cref="SmtpSessionOptions.ErrorLimit"/> until the host lowers
    /// it (a server under stress, docs/SCREENING.md "Slow clients": Postfix smtpd_hard_error_limit ${stress?{1}:{20}}).
    /// At least 1; Reset restores the options' limit.
    /// </summary>
    public int ErrorLimit
    {
        get => _errorLimit;
        set => _errorLimit = Math.Max(1, value);
    }

    /// <summary>The client was idle past <see cref="CurrentTimeout"/>: 421 4.4.2, close.</summary>
    public SessionStatus OnTimeout(IBufferWriter<byte> output)
    {
        if (_phase == Phase.Closed)
        {
            return SessionStatus.Close;
        }
        AbortMessage();
        output.Write(_prepared.Timeout);
        return Close();
    }

    /// <summary>
    /// The server is stopping: 421 4.3.2 and Close for an idle session; a session reading or committing a
    /// message (DATA, or BDAT between chunks too) goes on (Continue) and gets its 421 after the message's reply,
    /// or after the first command that ends its BDAT transaction otherwise (RSET, say). A QUIT already received
    /// after the message is answered 221 rather than 421 (RFC 5321 §4.1.1.10).
    /// </summary>
    public SessionStatus OnShutdown(IBufferWriter<byte> output)
    {
        if (_phase == Phase.Closed)
        {
            return SessionStatus.Close;
        }
        // _quitPipelined: the message just committed had a QUIT pipelined after it, offered next (RFC 5321
        // §4.1.1.10: 221). The transport delivers a shutdown that came during the commit only after it.
        if (_state == SmtpState.WritingMail || _chunking || _chunkActive || _phase == Phase.AwaitingCommit || _quitPipelined)
        {
            _shuttingDown = true;
            return SessionStatus.Continue;
        }
        AbortMessage();
        output.Write(_prepared.ShuttingDown);
        return Close();
    }

    /// <summary>
    /// During a shutdown, once the transaction it let finish has ended (its reply written): 421 4.3.2 and
    /// Close, unless the next command, already received, is QUIT (RFC 5321 §4.1.1.10: answered 221, as
    /// outside a shutdown; docs/PROTOCOL.md: 421 to idle sessions). True when it closed.
    /// </summary>
    private bool EndsForShutdown(ReadOnlySpan<byte> next, IBufferWriter<byte> output)
    {
        if (!_shuttingDown || _chunking || _state == SmtpState.WritingMail || QuitIsNext(next))
        {
            return false;
        }
        output.Write(_prepared.ShuttingDown);
        Close();
        return true;
    }

    /// <summary>Whether <paramref name="input"/> starts with a whole QUIT line that would be answered 221.</summary>
    private bool QuitIsNext(ReadOnlySpan<byte> input) =>
        CommandParser.TryParse(input, _lineLimit, out SmtpCommand next) == ParseStatus.Complete
        && next.Verb == SmtpVerb.Quit && next.Error == LineError.None && next.ArgumentStart >= next.LineLength;

    /// <summary>The TLS handshake after STARTTLS succeeded: the session starts over in state 2 (RFC 3207 §4.2).</summary>
    public void OnTlsEstablished()
    {
        _tls = true;
        _envelope.Tls = true;
        _envelope.ForgetHelo();
        _envelope.ResetTransaction();
        _state = SmtpState.Connected;
    }

    /// <summary>Makes the session ready for another connection; abandons any message in progress.</summary>
    public void Reset()
    {
        AbortMessage();
        _store = null;
        _screening = null;
        _lineReoffered = false;
        _phase = Phase.Idle;
        _state = SmtpState.Closed;
        _errors = 0;
        _errorLimit = _options.ErrorLimit;
        _skippingLongLine = false;
        _tls = false;
        _shuttingDown = false;
        _screenedOut = ScreenedOut.None;
        _quitPipelined = false;
        _discard = 0;
        EndTransaction();
        _envelope.ReleaseGrownStorage();
        _directory = _defaultDirectory; // a reloaded directory is not kept alive by an idle pooled session
    }
}
