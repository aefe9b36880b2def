// Contract: how a session asks its screening (SessionScreening.cs) and acts on the answer: at connect
// (before the 220, after any --greet-delay), and in EHLO/HELO, MAIL and RCPT after the session's own checks
// of the command and before its positive reply.
//
// - Accept: nothing happens here; the command goes on.
// - Refuse: the screening wrote the reply; the command fails and counts toward the error limit, as Postfix's
//   smtpd counts every command whose action fails, its anvil rate refusals included (smtpd.c: a non-zero
//   action result increments error_count), so a client hammering past its rate still meets the limit's 421.
// - RefuseAndClose: the reply is written; the session closes.
// - Pending: nothing is written or changed. At a command, Process gives the line back unconsumed and answers
//   AwaitingVerdict; the same line, offered again, is parsed again but not reported to the observer or
//   counted by verb a second time. At connect the greeting waits (AwaitingVerdict); the host calls
//   ContinueAfterVerdict, which asks again.
//
// At connect there is no command to fail, so Refuse there closes too: RFC 5321 §3.1 allows a 554 greeting
// followed by a wait for QUIT, but a client refused at connect by a rate or a listing is not worth a slot.
// With --greet-delay the question comes when the delay ends, so the greeting goes when both the delay and
// the verdict allow it, and an early talker is answered as one (PROTOCOL.md) before anyone is asked.
using System.Buffers;

namespace EdgeMta.Protocol;

public sealed partial class SmtpSession
{
    /// <summary>True while the greeting waits for the screening's verdict on the connection (the host calls
    /// <see cref="ContinueAfterVerdict"/> once it is known).</summary>
    public bool AwaitingConnectVerdict => _phase == Phase.AwaitingConnectVerdict;

    /// <summary>
    /// The verdict the greeting waited for (Start or OnGreetDelayElapsed answered AwaitingVerdict) is known:
    /// asks the screening again and writes the 220, or its refusal and Close, or answers AwaitingVerdict again.
    /// A call at any other time does nothing (a late or spurious wake-up) and answers the session's status.
    /// </summary>
    public SessionStatus ContinueAfterVerdict(IBufferWriter<byte> output)
    {
        if (_phase == Phase.AwaitingConnectVerdict)
        {
            return Greet(output);
        }
        return _phase == Phase.Closed ? SessionStatus.Close : SessionStatus.Continue;
    }

    /// <summary>Asks OnConnect, then writes the greeting if the answer allows it.</summary>
    private SessionStatus Greet(IBufferWriter<byte> output)
    {
        if (_screening is not null)
        {
            switch (_screening.OnConnect(output))
            {
                case ScreeningAnswer.Pending:
                    _phase = Phase.AwaitingConnectVerdict;
                    return SessionStatus.AwaitingVerdict;
                case ScreeningAnswer.Refuse:
                case ScreeningAnswer.RefuseAndClose:
                    return Close();
            }
        }
        _phase = Phase.Commands;
        output.Write(_prepared.Greeting);
        return SessionStatus.Continue;
    }

    /// <summary>Acts on a command's screening answer. True when the command ends here with
    /// <paramref name="status"/>; false for Accept (the command goes on).</summary>
    private bool Ask(ScreeningAnswer answer, IBufferWriter<byte> output, out SessionStatus status)
    {
        switch (answer)
        {
            case ScreeningAnswer.Accept:
                status = SessionStatus.Continue;
                return false;
            case ScreeningAnswer.Pending:
                status = SessionStatus.AwaitingVerdict;
                return true;
            case ScreeningAnswer.RefuseAndClose:
                status = Close();
                return true;
            default:
                status = CountError(output);
                return true;
        }
    }
}
