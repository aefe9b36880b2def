// The inputs of a delivery status notification (docs/DELIVERY.md "Bounces"; RFC 3464 §2.2, §2.3; RFC 3461).
// Plain values the delivery agent already holds for a message and its recipients; BounceComposer checks them
// and BouncePolicy decides whether a notification is due. Nothing here reads the spool or touches I/O.

namespace EdgeMta.Delivery;

/// <summary>The Action field of one recipient (RFC 3464 §2.3.3); only the three this server reports.</summary>
public enum DsnAction
{
    Failed,
    Delayed,
    Relayed,
}

/// <summary>The MAIL parameter RET (RFC 3461 §4.3): how much of the message a failure report returns.</summary>
public enum DsnReturn
{
    /// <summary>No RET given: the whole message when it is at most 50,000 bytes (docs/DELIVERY.md).</summary>
    Unspecified,
    Full,
    Headers,
}

/// <summary>The RCPT parameter NOTIFY (RFC 3461 §4.1); <see cref="Unspecified"/> when it was not given.</summary>
[Flags]
public enum DsnNotify
{
    Unspecified = 0,
    Never = 1,
    Success = 2,
    Failure = 4,
    Delay = 8,
}

/// <summary>
/// The original message's envelope. <see cref="EnvelopeId"/> is the MAIL parameter ENVID as received, still in
/// xtext (RFC 3461 §4); null when none was given. <see cref="Sender"/> is the reverse-path without brackets.
/// </summary>
public readonly record struct BounceEnvelope(
    string Sender, string? EnvelopeId, DsnReturn Return, bool SmtpUtf8, DateTimeOffset ArrivalDate);

/// <summary>
/// One recipient to report. <see cref="OriginalRecipient"/> is the RCPT parameter ORCPT as received
/// ("addr-type;xtext", RFC 3461 §4.2), null when none was given. <see cref="Status"/> is "x.y.z" (RFC 3463).
/// <see cref="RemoteMta"/> and <see cref="DiagnosticReply"/> are null when no reply caused the report.
/// </summary>
public readonly record struct BounceRecipient(
    string FinalRecipient,
    string? OriginalRecipient,
    DsnAction Action,
    string Status,
    string? RemoteMta,
    string? DiagnosticReply,
    DateTimeOffset LastAttemptDate);
