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
        WriteSpool(w, server.SpoolCounters, server.MeasureSpoolUsage());
        WriteDelivery(w, server);
        WriteProxy(w, t);
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

    // docs/SCREENING.md "PROXY protocol": each rejection is also one proxy-rejected log line with its reason.
    private static void WriteProxy(PrometheusTextWriter w, TransportCounters t)
    {
        w.Family("edgemta_proxy_headers_total"u8, "counter"u8, "Connections to --listen-proxy listeners: accepted (a whole PROXY header, LOCAL included), or rejected (untrusted peer, invalid or over-long header, timeout, closed first; no reply)."u8);
        w.Sample("edgemta_proxy_headers_total"u8, "result"u8, "accepted"u8, t.ProxyAccepted);
        w.Sample("edgemta_proxy_headers_total"u8, "result"u8, "rejected"u8, t.ProxyRejected);
    }
}
