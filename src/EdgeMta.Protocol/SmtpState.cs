// Contract: the session states of the seed state table (docs/seeds/000) and which verbs each state
// takes, declared once and run as masks.
//
// The declaration below reads like PROTOCOL.md's table: a verb a state does not list is answered
// 503 5.5.1 (bad sequence of commands) and changes nothing. What an allowed verb then does (its reply and
// next state, deviations D1-D6) is written in the handler named after the verb (SmtpSession.Commands.cs,
// SmtpSession.Data.cs). State 6 is absent on purpose: there every line is message text (D6).
namespace EdgeMta.Protocol;

/// <summary>The states of the seed state table (docs/seeds/000), numbered as there.</summary>
public enum SmtpState : byte
{
    /// <summary>1: no connection (after QUIT, a 421, or before Start).</summary>
    Closed = 1,
    /// <summary>2: greeting sent, no HELO/EHLO yet.</summary>
    Connected = 2,
    /// <summary>3: greeted; no transaction.</summary>
    Wait = 3,
    /// <summary>4: MAIL accepted.</summary>
    SenderApproved = 4,
    /// <summary>5: at least one RCPT accepted.</summary>
    RecipientApproved = 5,
    /// <summary>6: after 354, reading message data.</summary>
    WritingMail = 6,
    /// <summary>7: message accepted (250) and spooled; no transaction open.</summary>
    ReadyToDeliver = 7,
}

/// <summary>Per-state masks of the verbs a state takes; everything else is 503 5.5.1.</summary>
public static class StateTable
{
    // Verbs every greeted or ungreeted state takes. RSET (D2, RFC 5321 §4.1.1.5 "may be issued at any
    // time"), NOOP (D4, §4.1.1.9), QUIT (§4.1.1.10), HELO/EHLO (D1, §4.1.4), VRFY/EXPN/HELP (§4.1.1.6-8
    // carry no state), TURN/STARTTLS (answered by their own handlers: 502, or 220 / 503 in a transaction).
    private static readonly SmtpVerb[] Anywhere =
    [
        SmtpVerb.Helo, SmtpVerb.Ehlo, SmtpVerb.Rset, SmtpVerb.Noop, SmtpVerb.Quit,
        SmtpVerb.Vrfy, SmtpVerb.Expn, SmtpVerb.Help, SmtpVerb.Turn, SmtpVerb.StartTls,
    ];

    /// <summary>The declaration: each state and the verbs it takes besides <see cref="Anywhere"/>.</summary>
    private static readonly (SmtpState State, SmtpVerb[] Verbs)[] Declaration =
    [
        // 2 Connected: MAIL, RCPT, DATA, "." are 503 (docs/seeds/000 column 2).
        (SmtpState.Connected, []),
        // 3 Wait: MAIL opens a transaction; RCPT, DATA, "." are 503.
        (SmtpState.Wait, [SmtpVerb.Mail]),
        // 4 SenderApproved: RCPT; DATA answers 503 or 554 by itself; MAIL is 503 (one transaction at a time).
        (SmtpState.SenderApproved, [SmtpVerb.Rcpt, SmtpVerb.Data, SmtpVerb.Bdat]),
        // 5 RecipientApproved: more RCPT, DATA (354 → 6), BDAT (RFC 3030).
        (SmtpState.RecipientApproved, [SmtpVerb.Rcpt, SmtpVerb.Data, SmtpVerb.Bdat]),
        // 7 ReadyToDeliver: a new MAIL (docs/seeds/000: 250 → 4); RCPT, DATA, "." are 503.
        (SmtpState.ReadyToDeliver, [SmtpVerb.Mail]),
    ];

    private static readonly uint[] Masks = Build();

    /// <summary>Whether <paramref name="state"/> takes <paramref name="verb"/> (one AND, no branches on strings).</summary>
    public static bool Allows(SmtpState state, SmtpVerb verb) => (Masks[(int)state] & (1u << (int)verb)) != 0;

    private static uint[] Build()
    {
        var masks = new uint[8];
        foreach ((SmtpState state, SmtpVerb[] verbs) in Declaration)
        {
            uint mask = 0;
            foreach (SmtpVerb v in Anywhere)
            {
                mask |= 1u << (int)v;
            }
            foreach (SmtpVerb v in verbs)
            {
                mask |= 1u << (int)v;
            }
            masks[(int)state] = mask;
        }
        return masks;
    }
}
