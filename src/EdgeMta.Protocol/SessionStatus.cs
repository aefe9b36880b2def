// Contract: the values that pass between a session and its host: what the host does after a call
// (SessionStatus), why a session screened a client out on its own (ScreenedOut), and what the host tells it
// about the client (ClientInfo). SmtpSession.cs says when each is returned.
namespace EdgeMta.Protocol;

/// <summary>What the host does after a call.</summary>
public enum SessionStatus : byte
{
    /// <summary>Read more input and call Process again.</summary>
    Continue,
    /// <summary>Commit the message to the store durably, then call CompleteMessage.</summary>
    AwaitingCommit,
    /// <summary>Send the output (220), then start the TLS handshake; then call OnTlsEstablished.</summary>
    StartTls,
    /// <summary>Send the output, then close the connection.</summary>
    Close,
    /// <summary>Send the output, then wait for the screening's verdict without reading (SessionScreening.cs);
    /// then offer the same input again.</summary>
    AwaitingVerdict,
}

/// <summary>Why a session closed on the client's behaviour alone, before any policy was asked: the host logs
/// and counts these with the other screening decisions (docs/SCREENING.md "Early talkers").</summary>
public enum ScreenedOut : byte
{
    /// <summary>Not screened out (the session goes on, or closed for another reason).</summary>
    None,
    /// <summary>It sent bytes before the final greeting line while --greet-delay ran: 554 5.5.0.</summary>
    EarlyTalker,
    /// <summary>Its first words were a web or proxy request (CONNECT, GET, POST, Host:): 221 2.7.0.</summary>
    NonSmtp,
}

/// <summary>What the host knows about the client when it connects.</summary>
public readonly ref struct ClientInfo
{
    public ClientInfo(ReadOnlySpan<byte> address)
    {
        Address = address;
    }

    /// <summary>The client's IP address as ASCII text ("192.0.2.1", "2001:db8::1").</summary>
    public ReadOnlySpan<byte> Address { get; }
}
