// Contract: every fixed reply the protocol core sends, as u8 constants (no string is built per reply).
//
// Codes follow RFC 5321 §4.2 and §4.3.2; the second triple is the RFC 3463 enhanced status code
// (ENHANCEDSTATUSCODES, RFC 2034, is advertised by default). Texts are short ASCII and name no software
// version. Replies that carry variable text (the host name, a forward address, a queue id) are not here:
// see ReplyWriter and the host-name replies precomputed in SmtpSessionOptions.
namespace EdgeMta.Protocol;

/// <summary>Fixed replies, each a complete line with CRLF.</summary>
public static class Replies
{
    // 2xx
    public static ReadOnlySpan<byte> SenderOk => "250 2.1.0 Ok\r\n"u8;
    public static ReadOnlySpan<byte> RecipientOk => "250 2.1.5 Ok\r\n"u8;
    public static ReadOnlySpan<byte> Ok => "250 2.0.0 Ok\r\n"u8;
    public static ReadOnlySpan<byte> ResetOk => "250 2.0.0 Ok\r\n"u8;
    public static ReadOnlySpan<byte> CannotVerify => "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"u8;
    public static ReadOnlySpan<byte> ReadyToStartTls => "220 2.0.0 Ready to start TLS\r\n"u8;
    public static ReadOnlySpan<byte> WebClientGoodbye => "221 2.7.0 Error: this is an SMTP server, not a web server\r\n"u8;

    // 3xx
    public static ReadOnlySpan<byte> StartMailInput => "354 End data with <CR><LF>.<CR><LF>\r\n"u8;

    // 4xx
    public static ReadOnlySpan<byte> TooManyRecipients => "452 4.5.3 Error: too many recipients\r\n"u8;
    public static ReadOnlySpan<byte> StoreFailed => "451 4.3.0 Error: queue file write error\r\n"u8;
    public static ReadOnlySpan<byte> StoreFull => "452 4.3.1 Insufficient system storage\r\n"u8;

    // 5xx: syntax and sequence
    public static ReadOnlySpan<byte> CommandUnrecognized => "500 5.5.2 Error: command not recognized\r\n"u8;
    public static ReadOnlySpan<byte> EmptyLine => "500 5.5.2 Error: bad syntax, empty line\r\n"u8;
    public static ReadOnlySpan<byte> NulInLine => "500 5.5.2 Error: bad syntax, NUL in command\r\n"u8;
    public static ReadOnlySpan<byte> BareLineFeed => "500 5.5.2 Error: bad syntax, command line ends in bare LF\r\n"u8;
    public static ReadOnlySpan<byte> LineTooLong => "500 5.5.6 Error: line too long\r\n"u8;
    public static ReadOnlySpan<byte> NoArgumentsAllowed => "501 5.5.4 Syntax error: no arguments allowed\r\n"u8;
    public static ReadOnlySpan<byte> HeloSyntax => "501 5.5.4 Syntax: HELO hostname\r\n"u8;
    public static ReadOnlySpan<byte> EhloSyntax => "501 5.5.4 Syntax: EHLO hostname\r\n"u8;
    public static ReadOnlySpan<byte> MailSyntax => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"u8;
    public static ReadOnlySpan<byte> RcptSyntax => "501 5.5.4 Syntax: RCPT TO:<address>\r\n"u8;
    public static ReadOnlySpan<byte> VrfySyntax => "501 5.5.4 Syntax: VRFY address\r\n"u8;
    public static ReadOnlySpan<byte> ExpnSyntax => "501 5.5.4 Syntax: EXPN list\r\n"u8;
    public static ReadOnlySpan<byte> BdatSyntax => "501 5.5.4 Syntax: BDAT count [LAST]\r\n"u8;
    public static ReadOnlySpan<byte> BadSenderSyntax => "501 5.1.7 Bad sender address syntax\r\n"u8;
    public static ReadOnlySpan<byte> BadRecipientSyntax => "501 5.1.3 Bad recipient address syntax\r\n"u8;
    public static ReadOnlySpan<byte> SenderPathTooLong => "501 5.1.7 Path too long\r\n"u8;
    public static ReadOnlySpan<byte> RecipientPathTooLong => "501 5.1.3 Path too long\r\n"u8;
    public static ReadOnlySpan<byte> NullRecipient => "501 5.1.3 Bad recipient address syntax: null path\r\n"u8;
    public static ReadOnlySpan<byte> BadParameterValue => "501 5.5.4 Bad parameter value\r\n"u8;
    public static ReadOnlySpan<byte> NotImplemented => "502 5.5.1 Error: command not implemented\r\n"u8;
    public static ReadOnlySpan<byte> BadSequence => "503 5.5.1 Error: bad sequence of commands\r\n"u8;
    public static ReadOnlySpan<byte> AlreadyTls => "503 5.5.1 Error: TLS already active\r\n"u8;
    public static ReadOnlySpan<byte> DataAfterBinaryMime => "503 5.5.1 Error: BODY=BINARYMIME requires BDAT\r\n"u8;
    public static ReadOnlySpan<byte> BdatAfterData => "503 5.5.1 Error: BDAT and DATA cannot be mixed\r\n"u8;
    public static ReadOnlySpan<byte> HelpTopicUnknown => "504 5.5.4 Help topic unknown\r\n"u8;
    public static ReadOnlySpan<byte> TlsRequired => "530 5.7.0 Must issue a STARTTLS command first\r\n"u8;
    public static ReadOnlySpan<byte> UnknownParameter => "555 5.5.4 Unsupported parameter\r\n"u8;

    // 5xx: addresses and policy
    public static ReadOnlySpan<byte> SenderNotAllowed => "553 5.1.7 Sender address not allowed\r\n"u8;
    public static ReadOnlySpan<byte> RecipientNotAllowed => "553 5.1.3 Recipient address not allowed\r\n"u8;
    public static ReadOnlySpan<byte> Utf8NeedsSmtpUtf8 => "553 5.6.7 UTF-8 address requires SMTPUTF8\r\n"u8;
    public static ReadOnlySpan<byte> SenderRefused => "550 5.7.1 Sender address rejected by policy\r\n"u8;
    public static ReadOnlySpan<byte> UserUnknown => "550 5.1.1 Recipient address rejected: user unknown\r\n"u8;
    public static ReadOnlySpan<byte> RelayDenied => "550 5.7.1 Relay access denied\r\n"u8;
    public static ReadOnlySpan<byte> VrfyUnknown => "550 5.1.1 User unknown\r\n"u8;
    public static ReadOnlySpan<byte> VrfyAmbiguous => "553 5.1.4 User ambiguous\r\n"u8;
    public static ReadOnlySpan<byte> ExpnNotAList => "550 5.1.1 Not a mailing list\r\n"u8;
    public static ReadOnlySpan<byte> MessageTooBig => "552 5.3.4 Message size exceeds fixed limit\r\n"u8;
    public static ReadOnlySpan<byte> NoValidRecipients => "554 5.5.1 Error: no valid recipients\r\n"u8;
    public static ReadOnlySpan<byte> SynchronizationError => "554 5.5.0 Error: SMTP protocol synchronization\r\n"u8;
    public static ReadOnlySpan<byte> BareNewlineInMessage => "550 5.6.0 Message contains bare CR or LF\r\n"u8;
    public static ReadOnlySpan<byte> MailLoop => "554 5.4.6 Too many Received headers: mail loop\r\n"u8;

    // Pieces of replies with variable text.
    public static ReadOnlySpan<byte> QueuedAsPrefix => "250 2.0.0 OK queued as "u8;
    public static ReadOnlySpan<byte> WillForwardPrefix => "251 2.1.5 User not local; will forward to <"u8;
    public static ReadOnlySpan<byte> TryInsteadPrefix => "551 5.1.6 User not local; please try <"u8;
    public static ReadOnlySpan<byte> ChunkOkPrefix => "250 2.0.0 Ok: "u8;
    public static ReadOnlySpan<byte> ChunkOkSuffix => " octets received\r\n"u8;
    public static ReadOnlySpan<byte> Crlf => "\r\n"u8;
}
