// Contract: the series `GET /metrics` serves, read from the counters each library keeps where its work happens
// (TransportCounters, CommandCounters, SessionCounters, SpoolCounters, DeliveryCounters) and from the spool's directory and
// statvfs at scrape time. docs/OPERATIONS.md lists them with their meaning; the names follow Prometheus'
// conventions: the `edgemta_` prefix, `_total` on counters, base units (`_bytes`, `_seconds`).
// Labels are low-cardinality by construction: a result, a verb from a fixed list, a three-digit code, the
// version. No client address, name or sender ever becomes a label (one series per client would grow
// without bound and publish who talks to the server).
// What it does not do: keep state. Every scrape reads the counters afresh; two scrapes never interfere.
// How it fails: an unreadable spool directory throws, and the responder answers 500 for that scrape.
using System.Reflection;
using System.Text;
using EdgeMta.Metrics;
using EdgeMta.Protocol;
using EdgeMta.Server;
using EdgeMta.Server.Rspamd;
using EdgeMta.Spool;
using EdgeMta.Transport;

namespace EdgeMta;

internal sealed class ServerMetrics(EdgeMtaServer server)
{
    // The verbs in SmtpVerb order, as the label spells them; Unknown and the lone "." share "unknown".
    private static readonly byte[][] VerbLabels = BuildVerbLabels();

    private readonly byte[] _version = Encoding.UTF8.GetBytes(
        typeof(ServerMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown");

    public void Write(PrometheusTextWriter w)
    {
        w.Family("edgemta_build_info"u8, "gauge"u8, "Always 1; the version label names the running build."u8);
        w.Sample("edgemta_build_info"u8, "version"u8, _version, 1);

        TransportCounters t = server.Counters;
        w.Family("edgemta_connections_total"u8, "counter"u8, "SMTP connections since start: accepted, or rejected_limit (421 at --max-connections or --max-connections-per-ip)."u8);
        w.Sample("edgemta_connections_total"u8, "result"u8, "accepted"u8, t.Accepted);
        w.Sample("edgemta_connections_total"u8, "result"u8, "rejected_limit"u8, t.Rejected);
        w.Family("edgemta_connections_open"u8, "gauge"u8, "SMTP connections open now."u8);
        w.Sample("edgemta_connections_open"u8, t.Open);
        w.Family("edgemta_connections_aborted_total"u8, "counter"u8, "SMTP connections the server cut: send_timeout (a peer that stopped reading), input_overflow, handler_fault."u8);
        w.Sample("edgemta_connections_aborted_total"u8, "reason"u8, "send_timeout"u8, t.SendTimedOut);
        w.Sample("edgemta_connections_aborted_total"u8, "reason"u8, "input_overflow"u8, t.InputOverflows);
        w.Sample("edgemta_connections_aborted_total"u8, "reason"u8, "handler_fault"u8, t.Faulted);
        w.Family("edgemta_tls_handshakes_total"u8, "counter"u8, "STARTTLS handshakes: ok, or failed (each failure closed its connection)."u8);
        w.Sample("edgemta_tls_handshakes_total"u8, "result"u8, "ok"u8, t.TlsEstablished);
        w.Sample("edgemta_tls_handshakes_total"u8, "result"u8, "failed"u8, t.TlsFailed);

        if (server.Commands is { } commands) WriteCommands(w, commands); // the host always gives the sessions one
        WriteReplies(w, server.Sessions);
        WriteMessages(w, server.Sessions);
        WriteScreenedOut(w, server.Sessions);
        WriteSpool(w, server.SpoolCounters, server.MeasureSpoolUsage());
        WriteDelivery(w, server);
        WriteProxy(w, t);
        WriteDnsbl(w, server.Blocklists);
        WriteRateLimited(w, server.RateLimited);
        WriteStress(w, server.Stress);
        WriteRspamd(w, server);
    }

    // docs/SCREENING.md "Per-client rate limits": each count is one `rate-limited` log line.
    private static void WriteRateLimited(PrometheusTextWriter w, EdgeMta.Server.Screening.RateLimitCounters r)
    {
        w.Family("edgemta_rate_limited_total"u8, "counter"u8, "Commands refused by a per-client rate limit: conn (421, closed), mail and rcpt (450)."u8);
        w.Sample("edgemta_rate_limited_total"u8, "kind"u8, "connection"u8, r.Connections);
        w.Sample("edgemta_rate_limited_total"u8, "kind"u8, "mail"u8, r.Mails);
        w.Sample("edgemta_rate_limited_total"u8, "kind"u8, "rcpt"u8, r.Recipients);
    }

    // docs/SCREENING.md "Slow clients": the stress state, its transitions, and the slow clients cut.
    private static void WriteStress(PrometheusTextWriter w, ConnectionStress stress)
    {
        w.Family("edgemta_stress"u8, "gauge"u8, "1 while the server is under stress (open connections above --stress-threshold % of --max-connections, until 10 points below): short timeouts, error limit 1."u8);
        w.Sample("edgemta_stress"u8, stress.Active ? 1 : 0);
        w.Family("edgemta_stress_total"u8, "counter"u8, "Times stress began since start."u8);
        w.Sample("edgemta_stress_total"u8, stress.Entered);
        w.Family("edgemta_request_timeouts_total"u8, "counter"u8, "Sessions cut with 421 4.4.2: a command line not complete within its deadline (command), or message text too slow or stopped (data)."u8);
        w.Sample("edgemta_request_timeouts_total"u8, "phase"u8, "command"u8, stress.CommandTimeouts);
        w.Sample("edgemta_request_timeouts_total"u8, "phase"u8, "data"u8, stress.DataTimeouts);
    }

    // docs/SCREENING.md "Content check by rspamd": one count per message checked; absent without --rspamd.
    private static void WriteRspamd(PrometheusTextWriter w, EdgeMtaServer server)
    {
        if (server.Rspamd is not { } r) return;
        w.Family("edgemta_rspamd_total"u8, "counter"u8, "Messages rspamd gave a verdict on, by its action (other: a custom action, accepted)."u8);
        for (int i = 0; i < RspamdCounters.ActionCount; i++) w.Sample("edgemta_rspamd_total"u8, "action"u8, RspamdCounters.ActionLabel(i), r.Actions(i));
        w.Family("edgemta_rspamd_failures_total"u8, "counter"u8, "Checks with no verdict (then --rspamd-fail decides): connect, timeout, protocol (a bad reply), stopping."u8);
        w.Sample("edgemta_rspamd_failures_total"u8, "reason"u8, "connect"u8, r.Failures("connect"u8));
        w.Sample("edgemta_rspamd_failures_total"u8, "reason"u8, "timeout"u8, r.Failures("timeout"u8));
        w.Sample("edgemta_rspamd_failures_total"u8, "reason"u8, "protocol"u8, r.Failures("protocol"u8));
        w.Sample("edgemta_rspamd_failures_total"u8, "reason"u8, "stopping"u8, r.Failures("stopping"u8));
    }

    // docs/DELIVERY.md "Log lines": each counted event is one of those lines; zero without --relay.
    private static void WriteDelivery(PrometheusTextWriter w, EdgeMtaServer server)
    {
        var d = server.Delivery;
        w.Family("edgemta_delivery_recipients_total"u8, "counter"u8, "Recipient outcomes at the next hop: delivered, deferred (per attempt), failed (bounced or expired)."u8);
        w.Sample("edgemta_delivery_recipients_total"u8, "result"u8, "delivered"u8, d.Delivered);
        w.Sample("edgemta_delivery_recipients_total"u8, "result"u8, "deferred"u8, d.Deferred);
        w.Sample("edgemta_delivery_recipients_total"u8, "result"u8, "failed"u8, d.Failed);
        w.Family("edgemta_bounces_total"u8, "counter"u8, "Delivery status notifications spooled for senders."u8);
        w.Sample("edgemta_bounces_total"u8, d.Bounces);
        w.Family("edgemta_possible_duplicates_total"u8, "counter"u8, "Attempts that may have delivered twice: a connection lost after the final dot, or a journal write that failed."u8);
        w.Sample("edgemta_possible_duplicates_total"u8, d.PossibleDuplicates);
        w.Family("edgemta_relay_dead_total"u8, "counter"u8, "Times a next hop was marked dead."u8);
        w.Sample("edgemta_relay_dead_total"u8, d.RelayDead);
        w.Family("edgemta_spool_segments_compacted_total"u8, "counter"u8, "Spool segments emptied by copying their few live messages forward (FORMAT.md Copy-forward)."u8);
        w.Sample("edgemta_spool_segments_compacted_total"u8, d.SegmentsCompacted);
        w.Family("edgemta_spool_copied_bytes_total"u8, "counter"u8, "Message bytes copy-forward wrote again at the spool's tail."u8);
        w.Sample("edgemta_spool_copied_bytes_total"u8, d.CopiedBytes);
        w.Family("edgemta_journal_files_deleted_total"u8, "counter"u8, "Delivery journal files deleted during the run, every segment they named gone (FORMAT.md Delivery journal)."u8);
        w.Sample("edgemta_journal_files_deleted_total"u8, d.JournalFilesDeleted);
        var (writes, records) = server.DeliveryJournal;
        w.Family("edgemta_journal_writes_total"u8, "counter"u8, "Durable writes of the delivery journal (one pwrite and fdatasync per batch)."u8);
        w.Sample("edgemta_journal_writes_total"u8, writes);
        w.Family("edgemta_journal_records_total"u8, "counter"u8, "Journal records those writes made durable; records / writes is the group commit's sharing."u8);
        w.Sample("edgemta_journal_records_total"u8, records);
        w.Family("edgemta_queue_messages"u8, "gauge"u8, "Messages the delivery agent holds: not yet delivered, failed with their bounce queued, or deleted."u8);
        w.Sample("edgemta_queue_messages"u8, server.QueueLength);
    }

    private static void WriteCommands(PrometheusTextWriter w, CommandCounters commands)
    {
        w.Family("edgemta_commands_total"u8, "counter"u8, "Command lines answered, by verb; unknown: any line naming no known verb."u8);
        long unknown = commands[SmtpVerb.Unknown] + commands[SmtpVerb.Dot];
        for (int v = 1; v < VerbLabels.Length; v++)
        {
            if ((SmtpVerb)v != SmtpVerb.Dot) w.Sample("edgemta_commands_total"u8, "command"u8, VerbLabels[v], commands[(SmtpVerb)v]);
        }
        w.Sample("edgemta_commands_total"u8, "command"u8, "unknown"u8, unknown);
    }

    private static void WriteReplies(PrometheusTextWriter w, SessionCounters sessions)
    {
        w.Family("edgemta_replies_total"u8, "counter"u8, "Replies written, by three-digit code (a multi-line reply counts once); codes never sent are absent."u8);
        Span<byte> code = stackalloc byte[3];
        for (int c = SessionCounters.LowestCode; c <= SessionCounters.HighestCode; c++)
        {
            long n = sessions.Replies(c);
            if (n == 0) continue;
            code[0] = (byte)('0' + c / 100);
            code[1] = (byte)('0' + c / 10 % 10);
            code[2] = (byte)('0' + c % 10);
            w.Sample("edgemta_replies_total"u8, "code"u8, code, n);
        }
    }

    private static void WriteMessages(PrometheusTextWriter w, SessionCounters sessions)
    {
        Span<long> counts = stackalloc long[SessionCounters.MessageSizeBucketBounds.Length + 1];
        sessions.ReadMessageSizeBuckets(counts);
        long accepted = 0;
        foreach (long n in counts) accepted += n;
        long bytes = sessions.AcceptedBytes;
        w.Family("edgemta_messages_accepted_total"u8, "counter"u8, "Messages committed to the spool and answered 250."u8);
        w.Sample("edgemta_messages_accepted_total"u8, accepted);
        w.Family("edgemta_messages_accepted_bytes_total"u8, "counter"u8, "Bytes of those messages as spooled (the Received: header added here included)."u8);
        w.Sample("edgemta_messages_accepted_bytes_total"u8, bytes);
        Span<double> bounds = stackalloc double[SessionCounters.MessageSizeBucketBounds.Length];
        for (int i = 0; i < bounds.Length; i++) bounds[i] = SessionCounters.MessageSizeBucketBounds[i];
        w.Histogram("edgemta_message_size_bytes"u8, "Sizes of accepted messages (postfix_exporter's buckets, 1e3 to 1e9 bytes)."u8, bounds, counts, bytes);
    }

    private static void WriteScreenedOut(PrometheusTextWriter w, SessionCounters sessions)
    {
        w.Family("edgemta_screened_out_total"u8, "counter"u8, "Sessions closed on the client's own behaviour: talking before the final greeting line (pregreet) or a web request (non_smtp)."u8);
        w.Sample("edgemta_screened_out_total"u8, "reason"u8, "pregreet"u8, sessions.EarlyTalkers);
        w.Sample("edgemta_screened_out_total"u8, "reason"u8, "non_smtp"u8, sessions.NonSmtpClients);
    }

    private static void WriteSpool(PrometheusTextWriter w, SpoolCounters spool, SpoolUsage usage)
    {
        w.Family("edgemta_spool_segments"u8, "gauge"u8, "Segment files in the spool directory now."u8);
        w.Sample("edgemta_spool_segments"u8, usage.Segments);
        w.Family("edgemta_spool_bytes"u8, "gauge"u8, "Bytes of those segment files (pre-allocated: the disk the spool holds)."u8);
        w.Sample("edgemta_spool_bytes"u8, usage.Bytes);
        w.Family("edgemta_spool_disk_free_bytes"u8, "gauge"u8, "Bytes still free to the server on the spool's filesystem (statvfs f_bavail); -1 when unreadable."u8);
        w.Sample("edgemta_spool_disk_free_bytes"u8, usage.FreeBytes);

        ReadOnlySpan<long> micros = SpoolCounters.FlushBucketBoundsMicroseconds;
        Span<double> bounds = stackalloc double[micros.Length];
        for (int i = 0; i < bounds.Length; i++) bounds[i] = micros[i] / 1e6;
        Span<long> counts = stackalloc long[micros.Length + 1];
        spool.ReadFlushBuckets(counts);
        w.Histogram("edgemta_spool_flush_seconds"u8, "Time of each durable spool write or sync (one per batch of commits); none with --sync none."u8,
            bounds, counts, spool.FlushMicroseconds / 1e6);
    }

    private static byte[][] BuildVerbLabels()
    {
        var labels = new byte[VerbTable.Count][];
        for (int v = 0; v < labels.Length; v++)
        {
            labels[v] = Encoding.ASCII.GetBytes(((SmtpVerb)v) switch
            {
                SmtpVerb.Unknown or SmtpVerb.Dot => "unknown",
                SmtpVerb.StartTls => "STARTTLS",
                SmtpVerb verb => verb.ToString().ToUpperInvariant(),
            });
        }
        return labels;
    }
    // docs/SCREENING.md "DNS blocklists and allowlists"; zero without --dnsbl.
    private static void WriteDnsbl(PrometheusTextWriter w, EdgeMta.Server.Screening.Blocklists? lists)
    {
        EdgeMta.Server.Screening.DnsblCounters? c = lists?.Counters;
        w.Family("edgemta_dnsbl_queries_total"u8, "counter"u8, "Blocklist queries, one per zone per connection not cached: listed (the site's filter matched), clean, error (SERVFAIL, REFUSED, malformed, not sent), timeout (--dns-timeout; counts as not listed)."u8);
        w.Sample("edgemta_dnsbl_queries_total"u8, "result"u8, "listed"u8, c?.QueriesListed ?? 0);
        w.Sample("edgemta_dnsbl_queries_total"u8, "result"u8, "clean"u8, c?.QueriesClean ?? 0);
        w.Sample("edgemta_dnsbl_queries_total"u8, "result"u8, "error"u8, c?.QueriesError ?? 0);
        w.Sample("edgemta_dnsbl_queries_total"u8, "result"u8, "timeout"u8, c?.QueriesTimeout ?? 0);
        w.Family("edgemta_dnsbl_blocked_total"u8, "counter"u8, "Connections whose score reached --dnsbl-threshold, by --dnsbl-action: enforce and drop when refused, ignore when the verdict was known."u8);
        w.Sample("edgemta_dnsbl_blocked_total"u8, "action"u8, "enforce"u8, c?.Blocked(EdgeMta.Server.Screening.DnsblAction.Enforce) ?? 0);
        w.Sample("edgemta_dnsbl_blocked_total"u8, "action"u8, "drop"u8, c?.Blocked(EdgeMta.Server.Screening.DnsblAction.Drop) ?? 0);
        w.Sample("edgemta_dnsbl_blocked_total"u8, "action"u8, "ignore"u8, c?.Blocked(EdgeMta.Server.Screening.DnsblAction.Ignore) ?? 0);
        w.Family("edgemta_dnsbl_cache_entries"u8, "gauge"u8, "Client verdicts held in the blocklist cache (bounded; expired ones count until replaced)."u8);
        w.Sample("edgemta_dnsbl_cache_entries"u8, lists?.Cache.Count ?? 0);
    }

    // docs/SCREENING.md "PROXY protocol": each rejection is also one proxy-rejected log line with its reason.
    private static void WriteProxy(PrometheusTextWriter w, TransportCounters t)
    {
        w.Family("edgemta_proxy_headers_total"u8, "counter"u8, "Connections to --listen-proxy listeners: accepted (a whole PROXY header, LOCAL included), or rejected (untrusted peer, invalid or over-long header, timeout, closed first; no reply)."u8);
        w.Sample("edgemta_proxy_headers_total"u8, "result"u8, "accepted"u8, t.ProxyAccepted);
        w.Sample("edgemta_proxy_headers_total"u8, "result"u8, "rejected"u8, t.ProxyRejected);
    }
}
