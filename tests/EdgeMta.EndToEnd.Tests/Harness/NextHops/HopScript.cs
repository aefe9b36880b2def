using System.Net;
using System.Net.Sockets;

namespace EdgeMta.EndToEnd.Tests.Harness;

// The vocabulary a test uses to script a ScriptedHop, and what the hop records. Pure data: no sockets here.
// A rule sees every step of every connection (HopEvent) and answers the reply text to send, null for the
// default reply (a well-behaved Postfix-like next hop), or ScriptedHop.Drop to close the connection without
// replying. What the rule cannot script, on purpose: STARTTLS, AUTH, BDAT (the hop never advertises them, so a
// client per RFC 3207 §4, RFC 4954 §3 and RFC 3030 §2 does not use them); PostfixHop covers TLS.

/// <summary>The points at which a <see cref="ScriptedHop"/> asks its rule what to do.</summary>
public enum HopStep
{
    /// <summary>A connection was accepted: the reply is the greeting (RFC 5321 §4.3.1). Drop: accept and close.</summary>
    Connect,
    /// <summary>EHLO or HELO (LHLO in LMTP mode, RFC 2033 §4.1): the reply lists the extensions.</summary>
    Hello,
    Mail,
    /// <summary>One RCPT; <see cref="HopEvent.RecipientIndex"/> counts from 0 within the transaction.</summary>
    Rcpt,
    Data,
    /// <summary>Once per transaction, when <see cref="ScriptedHop.MidDataBytes"/> of data have arrived and the final
    /// dot has not: Drop resets the connection before the client could have sent the final dot.</summary>
    MidData,
    /// <summary>The final dot arrived. SMTP: one reply. LMTP: one per accepted recipient (RFC 2033 §4.2), with
    /// <see cref="HopEvent.RecipientIndex"/> and <see cref="HopEvent.Recipient"/> set.</summary>
    EndOfData,
    /// <summary>RSET, NOOP, QUIT and anything else.</summary>
    Other,
}

/// <summary>What a rule is asked about. <see cref="Connection"/> and <see cref="Transaction"/> count from 0 over the
/// hop's life (the Nth connection accepted, the Nth MAIL command); <see cref="Line"/> is the command without CRLF.</summary>
public sealed record HopEvent(HopStep Step, int Connection, int Transaction, string Line, int RecipientIndex = -1, string Recipient = "");

/// <summary>One RCPT command and the code the hop answered.</summary>
public sealed record HopRecipient(string Address, int Code);

/// <summary>
/// One transaction (a MAIL command and what followed it) as the hop saw it. <see cref="Data"/> is the message
/// dot-unstuffed (RFC 5321 §4.5.2), null until the final dot arrived; <see cref="DeliveredTo"/> the recipients the
/// hop took responsibility for (a 2xx to the final dot; in LMTP, each recipient's own 2xx).
/// </summary>
public sealed class HopTransaction
{
    public int Connection { get; init; }
    public int Index { get; init; }
    /// <summary>The reverse-path without angle brackets ("" for the null sender).</summary>
    public string Sender { get; init; } = "";
    /// <summary>The whole MAIL command line, parameters included.</summary>
    public string MailLine { get; init; } = "";
    public List<HopRecipient> Recipients { get; } = [];
    public byte[]? Data { get; internal set; }
    /// <summary>The connection ended during DATA, before the final dot.</summary>
    public bool AbortedInData { get; internal set; }
    public List<string> DeliveredTo { get; } = [];

    public IEnumerable<string> AcceptedRecipients => Recipients.Where(r => r.Code is >= 200 and < 300).Select(r => r.Address);

    public string Text => Data is null ? "" : System.Text.Encoding.UTF8.GetString(Data);

    public override string ToString() =>
        $"#{Index} conn {Connection} MAIL <{Sender}> RCPT [{string.Join(", ", Recipients.Select(r => $"{r.Address}={r.Code}"))}] " +
        $"data {(Data is null ? AbortedInData ? "aborted" : "none" : Data.Length + " bytes")} delivered [{string.Join(", ", DeliveredTo)}]";
}

/// <summary>Loopback ports for hops and servers.</summary>
public static class LoopbackPort
{
    /// <summary>A port nothing listens on right now (the kernel's pick, released): connections to it are refused
    /// until a hop is started on it.</summary>
    public static int Free()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Waits (bounded) until something accepts TCP connections on the port.</summary>
    public static async Task<bool> WaitListeningAsync(int port, TimeSpan bound, Func<bool>? gaveUp = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < bound && gaveUp?.Invoke() != true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(2));
                return true;
            }
            catch (Exception e) when (e is SocketException or TimeoutException)
            {
                await Task.Delay(50);
            }
        }
        return false;
    }
}
