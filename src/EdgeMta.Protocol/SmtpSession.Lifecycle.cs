// Contract: what the host tells a session besides bytes: a timeout, a shutdown, TLS established, reuse.
//
// A timeout closes with 421 4.4.2 (RFC 5321 §4.5.3.2); a shutdown closes idle sessions with 421 4.3.2 and
// lets a message being read or committed finish first (PROTOCOL.md); after the TLS handshake the session
// forgets everything the client said before (RFC 3207 §4.2); Reset makes a pooled session new again.
using System.Buffers;

namespace EdgeMta.Protocol;

public sealed partial class SmtpSession
{
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
    /// or after the first command that ends its BDAT transaction otherwise (RSET, say).
    /// </summary>
    public SessionStatus OnShutdown(IBufferWriter<byte> output)
    {
        if (_phase == Phase.Closed)
        {
            return SessionStatus.Close;
        }
        if (_state == SmtpState.WritingMail || _chunking || _chunkActive || _phase == Phase.AwaitingCommit)
        {
            _shuttingDown = true;
            return SessionStatus.Continue;
        }
        AbortMessage();
        output.Write(_prepared.ShuttingDown);
        return Close();
    }

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
        _phase = Phase.Idle;
        _state = SmtpState.Closed;
        _errors = 0;
        _skippingLongLine = false;
        _tls = false;
        _shuttingDown = false;
        _discard = 0;
        EndTransaction();
        _envelope.ReleaseGrownStorage();
        _directory = _defaultDirectory; // a reloaded directory is not kept alive by an idle pooled session
    }
}
