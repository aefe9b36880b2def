// Contract: the per-client rate limits of docs/SCREENING.md ("Per-client rate limits", as Postfix's anvil
// and smtpd): one connection's screening, pooled with its handler, asking the server's RateTable.
//
// - OnConnect, with --client-connection-rate N: the client's N+1th connection in its window is answered
//   "421 4.7.0 Error: too many connections from ADDR" and closed (smtpd.c's text and code).
// - OnMail, with --client-message-rate N: the N+1th MAIL gets "450 4.7.1 Error: too much mail from ADDR".
// - OnRecipient, with --client-recipient-rate N: the N+1th RCPT gets "450 4.7.1 Error: too many recipients
//   from ADDR".
// Each event is counted when asked, refused ones included (anvil counts every request it is sent; the
// session never asks again for an answer it got, since this screening is never Pending). 0 turns a limit
// off, and then nothing is counted for it. Clients in --trusted-network are exempt from all three (Postfix's
// smtpd_client_event_limit_exceptions = $mynetworks), and so is a connection whose address is unknown. ADDR
// is the client's address; the table counts its ClientKey (an IPv6 client by its /N, --client-ipv6-prefix).
// Each refusal is one log line, `rate-limited client=ADDR kind=connection|mail|rcpt limit=N`, and one count
// in RateLimitCounters (edgemta_rate_limited_total{kind}).
//
// What it does not do: blocklists (their own screening; the host composes the two), or anything at EHLO.
// It never blocks: the table's lock is held for an 8-slot scan. It never fails: a full table evicts (fails
// open, RateTable.cs).
using System.Buffers;
using System.Net;
using EdgeMta.Policy;
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;

namespace EdgeMta.Server.Screening;

/// <summary>What every connection's <see cref="ClientScreening"/> shares: the limits, the table, the log.</summary>
internal sealed class RateLimits
{
    public RateLimits(ServerOptions options, ServerLog log, TimeProvider clock)
    {
        ConnectionRate = options.ClientConnectionRate;
        MessageRate = options.ClientMessageRate;
        RecipientRate = options.ClientRecipientRate;
        Trusted = options.TrustedNetworks;
        IPv6Prefix = options.ClientIpv6Prefix;
        Table = new RateTable(RateTable.DefaultCapacity, clock);
        Log = log;
    }

    public int ConnectionRate { get; }
    public int MessageRate { get; }
    public int RecipientRate { get; }
    public ClientNetworks Trusted { get; }
    public int IPv6Prefix { get; }
    public RateTable Table { get; }
    public ServerLog Log { get; }
    public RateLimitCounters Counters { get; } = new();

    /// <summary>True when any limit is on: without one the handlers get no screening at all.</summary>
    public static bool AnyOn(ServerOptions options) =>
        options.ClientConnectionRate > 0 || options.ClientMessageRate > 0 || options.ClientRecipientRate > 0;
}

/// <summary>Clients refused by each rate limit since start (edgemta_rate_limited_total).</summary>
public sealed class RateLimitCounters
{
    private long _connections, _mails, _recipients;

    public long Connections => Volatile.Read(ref _connections);
    public long Mails => Volatile.Read(ref _mails);
    public long Recipients => Volatile.Read(ref _recipients);

    internal void Count(RateKind kind)
    {
        switch (kind)
        {
            case RateKind.Connection: Interlocked.Increment(ref _connections); break;
            case RateKind.Mail: Interlocked.Increment(ref _mails); break;
            default: Interlocked.Increment(ref _recipients); break;
        }
    }
}

/// <summary>One connection's rate checks (see the file's contract).</summary>
internal sealed class ClientScreening(RateLimits limits) : IConnectionScreening
{
    // An IPv6 address is at most 45 characters as text (RFC 4291 §2.2 with an embedded IPv4 part).
    private readonly byte[] _address = new byte[64];
    private int _addressLength;
    private bool _screened;
    private ClientKey _key;

    private ReadOnlySpan<byte> Address => _address.AsSpan(0, _addressLength);

    public void Open(IPAddress? client, long connection)
    {
        _addressLength = 0;
        _screened = client is not null && !limits.Trusted.Contains(client);
        if (!_screened)
        {
            return;
        }
        if (client!.IsIPv4MappedToIPv6)
        {
            client = client.MapToIPv4(); // named as the key counts it (ClientKey.cs); the rare dual-stack case
        }
        _key = ClientKey.From(client, limits.IPv6Prefix);
        client.TryFormat(_address, out _addressLength);
    }

    public void Close() => _screened = false;

    public ScreeningAnswer OnConnect(IBufferWriter<byte> output) =>
        Check(RateKind.Connection, limits.ConnectionRate, "421 4.7.0 Error: too many connections from "u8, output)
            ? ScreeningAnswer.RefuseAndClose : ScreeningAnswer.Accept;

    public ScreeningAnswer OnHello(IBufferWriter<byte> output) => ScreeningAnswer.Accept;

    public ScreeningAnswer OnMail(IBufferWriter<byte> output) =>
        Check(RateKind.Mail, limits.MessageRate, "450 4.7.1 Error: too much mail from "u8, output)
            ? ScreeningAnswer.Refuse : ScreeningAnswer.Accept;

    public ScreeningAnswer OnRecipient(IBufferWriter<byte> output) =>
        Check(RateKind.Recipient, limits.RecipientRate, "450 4.7.1 Error: too many recipients from "u8, output)
            ? ScreeningAnswer.Refuse : ScreeningAnswer.Accept;

    /// <summary>Counts the event; true (reply written, logged, counted) when it is over the limit.</summary>
    private bool Check(RateKind kind, int limit, ReadOnlySpan<byte> replyPrefix, IBufferWriter<byte> output)
    {
        if (limit <= 0 || !_screened || limits.Table.Add(_key, kind) <= limit)
        {
            return false;
        }
        output.Write(replyPrefix);
        output.Write(Address);
        output.Write("\r\n"u8);
        limits.Counters.Count(kind);
        limits.Log.Begin(LogEvent.RateLimited)
            .Field("client"u8, Address)
            .Field("kind"u8, kind switch { RateKind.Connection => "connection"u8, RateKind.Mail => "mail"u8, _ => "rcpt"u8 })
            .Field("limit"u8, limit)
            .End();
        return true;
    }
}
