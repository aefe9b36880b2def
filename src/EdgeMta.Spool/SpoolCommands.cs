// The operator commands of PROTOCOL.md ("Command line"), as library entry points the host's
// System.CommandLine handlers call: `edgemta spool stats|list|export|verify|drain`. list, export and drain
// read the delivery journal too (SpoolCommands.Journal.cs): only what is not yet delivered goes out.
// Each writes to the TextWriter it is given and returns the process exit code:
//   0 success; 1 damage found (verify, drain); 2 the spool cannot be read or locked.
// JSON goes through Utf8JsonWriter (AOT-safe, no reflection). Envelope fields are bytes: valid UTF-8 is
// written as a string, anything else as "<name>_base64".
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace EdgeMta.Spool;

public static partial class SpoolCommands
{
    public const int Ok = 0, Damage = 1, Error = 2;

    /// <summary>`spool stats --spool DIR [--json]`: messages, bytes, segments, damaged records.</summary>
    public static int Stats(string spool, bool json, TextWriter output)
    {
        if (!TryRead(spool, null, output, out var report)) return Error;
        if (json)
        {
            WriteJson(output, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("messages"u8, report.Messages);
                w.WriteNumber("bytes"u8, report.Bytes);
                w.WriteNumber("segments"u8, report.Segments);
                w.WriteNumber("damaged"u8, report.Damaged.Count);
                w.WriteNumber("quarantined"u8, report.PreviouslyQuarantined);
                w.WriteNumber("torn_tail_bytes"u8, report.TornTailBytes);
                w.WriteEndObject();
            });
        }
        else
        {
            output.WriteLine($"messages: {report.Messages}");
            output.WriteLine($"bytes: {report.Bytes}");
            output.WriteLine($"segments: {report.Segments}");
            output.WriteLine($"damaged records: {report.Damaged.Count}");
            output.WriteLine($"quarantined records: {report.PreviouslyQuarantined}");
            if (report.TornTailBytes > 0) output.WriteLine($"torn tail bytes: {report.TornTailBytes}");
        }
        return Ok;
    }

    /// <summary>`spool list --spool DIR [--json]`: one line a message: id, time, delivery state (pending, held,
    /// deferred, partial, done: from the journal), sender, recipients, size. JSON adds each recipient's state.</summary>
    public static int List(string spool, bool json, TextWriter output)
    {
        if (!TryReadLiveness(spool, output, out var liveness)) return Error;
        if (json)
        {
            int rc = Ok;
            WriteJson(output, w =>
            {
                w.WriteStartArray();
                if (!TryRead(spool, (in SpoolRecord r) =>
                {
                    if (IsMessage(liveness, r, out var m)) WriteEnvelopeJson(w, r, m, pendingOnly: false);
                }, TextWriter.Null, out _)) rc = Error;
                w.WriteEndArray();
            });
            return rc;
        }
        var line = new StringBuilder();
        return TryRead(spool, (in SpoolRecord r) =>
        {
            if (!IsMessage(liveness, r, out var folded)) return;   // a copy-forward's dead copy: listed once
            line.Clear();
            var e = r.Envelope;
            line.Append(r.QueueIdString).Append(' ')
                .Append(r.Arrival.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture)).Append(' ')
                .Append(Text(e.ReversePath.IsEmpty ? "<>"u8 : e.ReversePath)).Append(' ');
            bool first = true;
            foreach (var rcpt in e.GetRecipients())
            {
                if (!first) line.Append(',');
                line.Append(Text(rcpt.ForwardPath));
                first = false;
            }
            // docs/PROTOCOL.md fixes the first five fields (scripts read them); the delivery state comes last.
            line.Append(' ').Append(r.Data.Length).Append(' ').Append(Word(ProgressOf(folded, e.RecipientCount)));
            output.WriteLine(line.ToString());
        }, output, out _) ? Ok : Error;
    }

    /// <summary>`spool export --spool DIR --out DIR`: one &lt;id&gt;.eml (exact accepted octets) and &lt;id&gt;.json
    /// (envelope) per message not yet delivered; a partly delivered one with only its pending recipients
    /// (FORMAT.md "Delivery journal"). The spool is not changed.</summary>
    public static int Export(string spool, string outDir, TextWriter output)
    {
        if (!TryReadLiveness(spool, output, out var liveness)) return Error;
        Directory.CreateDirectory(outDir);
        long n = 0, done = 0;
        if (!TryRead(spool, (in SpoolRecord r) =>
        {
            if (!IsMessage(liveness, r, out var m)) return;
            if (ProgressOf(m, r.Envelope.RecipientCount) == DeliveryProgress.Done) { done++; return; }
            ExportOne(r, m, outDir, durable: false);
            n++;
        }, output, out var report)) return Error;
        output.WriteLine($"exported {n} messages to {outDir}");
        if (done > 0) output.WriteLine($"{done} messages already delivered (or failed or deleted) were not exported");
        if (report.Damaged.Count > 0) output.WriteLine($"{report.Damaged.Count} damaged records were not exported (see verify)");
        return Ok;
    }

    /// <summary>`spool verify --spool DIR`: checks every record; exit 1 on damage.</summary>
    public static int Verify(string spool, TextWriter output)
    {
        if (!TryRead(spool, null, output, out var report)) return Error;
        foreach (var d in report.Damaged)
            output.WriteLine($"damaged: {d.Segment} offset {d.Offset} length {d.Length}: {d.Reason}");
        if (report.TornTailBytes > 0)
            output.WriteLine($"torn tail: {report.TornTailBytes} bytes of unfinished writes (cut at the next start)");
        output.WriteLine($"{report.Messages} messages in {report.Segments} segments, {report.Damaged.Count} damaged, {report.PreviouslyQuarantined} quarantined earlier");
        return report.Damaged.Count > 0 ? Damage : Ok;
    }

    private static bool TryRead(string spool, SpoolRecordVisitor? visitor, TextWriter output, out RecoveryReport report)
    {
        report = new RecoveryReport();
        try
        {
            report = SpoolReader.Read(spool, visitor);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            output.WriteLine($"error: {e.Message}");
            return false;
        }
    }

    private static bool TryReadLiveness(string spool, TextWriter output, out RecordLiveness liveness)
    {
        try
        {
            liveness = ReadLiveness(spool);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            output.WriteLine($"error: journal: {e.Message}");
            liveness = new RecordLiveness(new JournalFold());
            return false;
        }
    }

    // The envelope file names only the recipients still to go when the journal says others are final.
    internal static void ExportOne(in SpoolRecord r, FoldedMessage? m, string outDir, bool durable)
    {
        string id = r.QueueIdString;
        WriteFile(Path.Combine(outDir, id + ".eml"), r.Data, durable);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(512 + r.EncodedEnvelope.Length * 2);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            WriteEnvelopeJson(w, r, m, pendingOnly: true);
        WriteFile(Path.Combine(outDir, id + ".json"), buffer.WrittenSpan, durable);
    }

    private static void WriteFile(string path, ReadOnlySpan<byte> bytes, bool durable)
    {
        using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
        RandomAccess.Write(h, bytes, 0);
        if (durable && Native.LibC.Fdatasync((int)h.DangerousGetHandle()) != 0)
            throw new IOException($"fdatasync {path}: errno {Native.LibC.LastError}");
    }

    // pendingOnly (export, drain): recipients already final are left out. Otherwise (list) each carries its state.
    private static void WriteEnvelopeJson(Utf8JsonWriter w, in SpoolRecord r, FoldedMessage? m, bool pendingOnly)
    {
        var e = r.Envelope;
        w.WriteStartObject();
        w.WriteString("id"u8, r.QueueId);
        w.WriteString("arrival"u8, r.Arrival);
        w.WriteNumber("size"u8, r.Data.Length);
        if (!pendingOnly)
        {
            w.WriteString("state"u8, Word(ProgressOf(m, e.RecipientCount)));
            w.WriteBoolean("held"u8, m is { Held: true });
        }
        Bytes(w, "client_address", e.ClientAddress);
        Bytes(w, "helo", e.HeloName);
        Bytes(w, "mail_from", e.ReversePath);
        Bytes(w, "mail_parameters", e.MailParameters);
        w.WriteStartArray("rcpt"u8);
        int index = 0;
        foreach (var rcpt in e.GetRecipients())
        {
            var state = StateOf(m, index++);
            if (pendingOnly && IsFinal(state)) continue;
            w.WriteStartObject();
            Bytes(w, "to", rcpt.ForwardPath);
            Bytes(w, "parameters", rcpt.Parameters);
            if (!pendingOnly) w.WriteString("state"u8, Word(state));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Bytes(Utf8JsonWriter w, string name, ReadOnlySpan<byte> value)
    {
        if (Utf8.IsValid(value)) w.WriteString(name, value);
        else w.WriteBase64String(name + "_base64", value);
    }

    private static string Text(ReadOnlySpan<byte> value)
        => Utf8.IsValid(value) ? Encoding.UTF8.GetString(value) : Convert.ToBase64String(value);

    private static void WriteJson(TextWriter output, Action<Utf8JsonWriter> body)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            body(w);
        output.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
    }
}
