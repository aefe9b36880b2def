// Contract: the server's rspamd client (docs/SCREENING.md "Content check by rspamd"): --rspamd URL, --rspamd-timeout,
// --rspamd-fail. Check starts one `POST /checkv2` of a message on the transport's own outbound connections
// (TransportServer.Connect: a non-blocking connect, then the same drive loop as every connection), so no thread
// ever waits for rspamd; the verdict comes back to the session's handler through IRspamdWaiter, on a pool thread.
// One connection per message (`Connection: close`): nothing is shared between checks, so a slow or broken reply
// can only ever fail its own message.
// What it does not do: decide what a verdict means for the session (SmtpConnectionHandler.Rspamd.cs does), retry,
// or fall back to another rspamd (one URL; put a load balancer or rspamd's proxy worker in front for more).
// Counting and logging: one `rspamd` line per verdict, one `rspamd-failed` line per failure (both written by the
// handler, which knows the client and the queue id), and the counters published as edgemta_rspamd_total and
// edgemta_rspamd_failures_total.
using System.Net;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Transport;

namespace EdgeMta.Server.Rspamd;

/// <summary>What --rspamd-fail says an error or a timeout means.</summary>
public enum RspamdFailMode : byte
{
    /// <summary>The message is accepted unscanned (logged and counted).</summary>
    Accept,
    /// <summary>451 4.7.1; the client tries again later.</summary>
    Tempfail,
}

/// <summary>The --rspamd flags, checked by the host.</summary>
public sealed record RspamdOptions
{
    /// <summary>--rspamd-timeout's default: below Postfix's 300 s milter_content_timeout, above rspamd's own DNS timeouts.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Where rspamd's normal worker listens (an IPEndPoint, or a DnsEndPoint resolved at each connect).</summary>
    public required EndPoint EndPoint { get; init; }

    /// <summary>The Host field of each request: the URL's host and port as given.</summary>
    public required string Authority { get; init; }

    /// <summary>Connect, send and reply, all within this; then --rspamd-fail decides.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    public RspamdFailMode Fail { get; init; } = RspamdFailMode.Accept;

    /// <summary>Reads `http://HOST:PORT` (a trailing "/" allowed): false with a one-line reason otherwise.</summary>
    public static bool TryParseUrl(string text, out EndPoint endPoint, out string authority, out string error)
    {
        endPoint = null!;
        authority = "";
        error = $"'{text}' is not http://HOST:PORT (e.g. http://127.0.0.1:11333)";
        if (!text.StartsWith("http://", StringComparison.Ordinal)) return false;
        string rest = text["http://".Length..].TrimEnd('/');
        if (rest.Length == 0 || rest.Contains('/') || rest.Contains('@') || rest.Contains('?')) return false;
        int colon = rest.LastIndexOf(':');
        if (colon <= 0 || (rest[0] == '[' && rest[colon - 1] != ']')) return false;
        if (!ushort.TryParse(rest.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ushort port) || port == 0)
        {
            return false;
        }
        string host = rest[..colon];
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        if (IPAddress.TryParse(host, out IPAddress? address)) endPoint = new IPEndPoint(address, port);
        else if (Uri.CheckHostName(host) == UriHostNameType.Dns) endPoint = new DnsEndPoint(host, port);
        else return false;
        authority = rest;
        error = "";
        return true;
    }
}

/// <summary>Hears the verdict of one Check, exactly once, on a pool thread.</summary>
internal interface IRspamdWaiter
{
    void OnRspamdDone();
}

/// <summary>The rspamd client of one server (RspamdClient.cs).</summary>
internal sealed class RspamdClient
{
    private static readonly byte[] CheckPath = "/checkv2"u8.ToArray();
    private readonly Action<EndPoint, IOutboundHandler, TimeSpan> _connect;

    /// <param name="connect">Opens an outbound connection (TransportServer.Connect; a test's stand-in).</param>
    public RspamdClient(RspamdOptions options, Action<EndPoint, IOutboundHandler, TimeSpan> connect, TimeProvider clock)
    {
        Options = options;
        _connect = connect;
        Clock = clock;
        Host = Encoding.ASCII.GetBytes(options.Authority);
    }

    public RspamdOptions Options { get; }
    public TimeProvider Clock { get; }
    internal byte[] Host { get; }
    public RspamdCounters Counters { get; } = new();

    /// <summary>Sends <paramref name="body"/> (the exact accepted octets) with the envelope's fields; the verdict goes
    /// into <paramref name="outcome"/>, then <paramref name="waiter"/> hears it. The envelope is read now, the body
    /// until it has been sent (the request holds it: MessageBuffer.Hold).</summary>
    public void Check(Envelope envelope, ReadOnlySpan<byte> queueId, ReadOnlySpan<byte> tlsVersion, ReadOnlySpan<byte> tlsCipher,
        MessageBuffer body, RspamdOutcome outcome, IRspamdWaiter waiter)
    {
        var exchange = new RspamdExchange(this, body, outcome, waiter);
        exchange.WriteHead(CheckPath, envelope, queueId, tlsVersion, tlsCipher);
        exchange.Start(_connect);
    }
}

/// <summary>Why a check has no verdict.</summary>
internal enum RspamdFailure : byte
{
    None,
    /// <summary>The connect was refused, unreachable, or not resolved.</summary>
    Connect,
    /// <summary>--rspamd-timeout passed first.</summary>
    Timeout,
    /// <summary>A reply that is not a 200 with usable JSON, or a connection closed before it was whole.</summary>
    Protocol,
    /// <summary>The server is stopping.</summary>
    Stopping,
}

/// <summary>One check's result, owned by the waiting handler and filled once by the check that settles.</summary>
internal sealed class RspamdOutcome
{
    public RspamdFailure Failure;
    /// <summary>For the log line of a failure: "ConnectionRefused", "status=500", "invalid-json", ...</summary>
    public string Detail = "";
    public RspamdAction Action;
    public double Score;
    public double RequiredScore;
    public readonly byte[] SmtpMessage = new byte[RspamdResult.MaxMessageBytes];
    public int SmtpMessageLength;
    public long Milliseconds;

    public void Reset()
    {
        Failure = RspamdFailure.None;
        Detail = "";
        Action = RspamdAction.NoAction;
        Score = RequiredScore = 0;
        SmtpMessageLength = 0;
        Milliseconds = 0;
    }
}

/// <summary>Checks by action and failures by reason, for the metrics endpoint.</summary>
public sealed class RspamdCounters
{
    private readonly long[] _actions = new long[(int)RspamdAction.Other + 1];
    private readonly long[] _failures = new long[(int)RspamdFailure.Stopping + 1];

    /// <summary>The action labels, in the order Actions(i) counts them.</summary>
    public static int ActionCount => (int)RspamdAction.Other + 1;

    public static ReadOnlySpan<byte> ActionLabel(int i) => RspamdResult.LabelOf((RspamdAction)i);

    public long Actions(int i) => Volatile.Read(ref _actions[i]);

    /// <summary>connect, timeout, protocol (bad reply), stopping.</summary>
    public long Failures(ReadOnlySpan<byte> reason) => reason switch
    {
        _ when reason.SequenceEqual("connect"u8) => Volatile.Read(ref _failures[(int)RspamdFailure.Connect]),
        _ when reason.SequenceEqual("timeout"u8) => Volatile.Read(ref _failures[(int)RspamdFailure.Timeout]),
        _ when reason.SequenceEqual("protocol"u8) => Volatile.Read(ref _failures[(int)RspamdFailure.Protocol]),
        _ when reason.SequenceEqual("stopping"u8) => Volatile.Read(ref _failures[(int)RspamdFailure.Stopping]),
        _ => 0,
    };

    internal void Count(RspamdOutcome outcome)
    {
        if (outcome.Failure == RspamdFailure.None) Interlocked.Increment(ref _actions[(int)outcome.Action]);
        else Interlocked.Increment(ref _failures[(int)outcome.Failure]);
    }
}
