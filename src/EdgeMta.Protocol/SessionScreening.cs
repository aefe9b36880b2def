// Contract: the session's questions to the screening policy (docs/SCREENING.md), asked at four points of
// a session, and the one way an answer can wait.
//
// The session asks; it never knows why. Rates, blocklists and whatever comes later are the host's
// (src/EdgeMta.Server), which implements this per connection and passes it to SmtpSession.Start. Each
// question comes after the session's own checks of that command (syntax, sequence, TLS required, the
// store's readiness, the recipient limit) and before its own positive reply, so a refusal here never hides
// a protocol error, and a client refused by the protocol is never counted as screened.
//
// Answers:
// - Accept: the session goes on as without screening.
// - Refuse: the screening wrote the whole reply (e.g. "450 4.7.1 Error: too much mail from ADDR\r\n");
//   the command fails as a refused one does (for RCPT: no recipient is added; it counts toward the error
//   limit, as Postfix counts its rate refusals), and the session goes on. At OnConnect there is no command to
//   fail: Refuse closes as RefuseAndClose does.
// - RefuseAndClose: as Refuse, then the session closes (421 or 521 at connect, drop actions).
// - Pending: the verdict is not known yet (a DNS lookup in flight). The session writes nothing and does
//   NOT consume the command's line: Process returns SessionStatus.AwaitingVerdict with the line still in
//   the input. The host pauses reading (nothing is read, nothing times out: the screening owns that wait's
//   deadline, e.g. --dns-timeout), and once the verdict is known resumes the connection and offers the same
//   input again; the session then parses the same line and asks again. At OnConnect, Pending holds the
//   greeting back instead, and the host calls SmtpSession.ContinueAfterVerdict. The line offered again is not
//   reported to the observer or counted by verb a second time. With --greet-delay, OnConnect is asked when
//   the delay ends, so the greeting goes when both allow it. How the screening tells the host that a verdict
//   is known is the host's (src/EdgeMta.Server/Screening/ConnectionScreening.cs, IVerdictListener).
//   Asking again must not count twice: a screening counts an event (a MAIL for --client-message-rate) when
//   it answers Accept or Refuse, never when it answers Pending.
//
// Threading: called only from the session's calls, so never concurrently for one session. A screening
// must not block: it answers from what it knows now.
using System.Buffers;

namespace EdgeMta.Protocol;

/// <summary>A screening policy's answer to one question (SessionScreening.cs).</summary>
public enum ScreeningAnswer : byte
{
    /// <summary>Go on as if there were no screening.</summary>
    Accept,

    /// <summary>The screening wrote the reply; the command fails, the session goes on.</summary>
    Refuse,

    /// <summary>The screening wrote the reply; the session closes after it.</summary>
    RefuseAndClose,

    /// <summary>Not known yet: wait, then ask again (the command is not consumed).</summary>
    Pending,
}

/// <summary>The per-connection screening the session consults (SessionScreening.cs).</summary>
public interface ISessionScreening
{
    /// <summary>Before the greeting (after any --greet-delay): e.g. a connection rate exceeded (421), or a
    /// blocklist verdict already known with the drop action (521).</summary>
    ScreeningAnswer OnConnect(IBufferWriter<byte> output);

    /// <summary>Before the reply to EHLO or HELO.</summary>
    ScreeningAnswer OnHello(IBufferWriter<byte> output);

    /// <summary>Before the 250 to MAIL FROM, once the session would accept it.</summary>
    ScreeningAnswer OnMail(IBufferWriter<byte> output);

    /// <summary>Before the recipient directory is asked about a RCPT TO the session would otherwise take.</summary>
    ScreeningAnswer OnRecipient(IBufferWriter<byte> output);
}
