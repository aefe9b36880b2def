// The text the queue commands print (docs/DELIVERY.md "Queue commands"), the same from the running server and
// from the offline spool:
//   list: a line per message: id, arrival (ISO 8601 UTC), size, sender (<> for the null sender), "held" when
//         held; then a line per recipient, indented two spaces: address, state, attempts=N, next=TIME or -,
//         reply=TEXT or - (last, so a reply's own spaces need no quoting).
//   list --json: one JSON object per line (fields id, arrival, size, sender, held, recipients[{address, state,
//         attempts, next, reply}]), through Utf8JsonWriter: AOT-safe, no reflection.
//   show: the envelope and each recipient with its state and last reply. The journal keeps per recipient the
//         attempt count and the last reply, not every attempt (FORMAT.md "Delivery journal"), and show says so.
// What it does not do: decide states or read anything; it formats what a control found.
// How it fails: it does not: a remote reply's control characters are printed as '?' (a reply comes from
// another host and must not drive the operator's terminal), and text that is not valid UTF-16 is escaped by
// the JSON writer.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace EdgeMta.Delivery;

public static class QueueFormatter
{
    private const string TimeFormat = "yyyy-MM-ddTHH:mm:ss'Z'";

    /// <summary>The list text (or JSON lines) for <paramref name="items"/>, in the order given.</summary>
    public static string List(IReadOnlyList<QueueItem> items, bool json)
    {
        var text = new StringBuilder();
        if (json)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
            foreach (var item in items)
            {
                buffer.ResetWrittenCount();
                using (var w = new Utf8JsonWriter(buffer)) WriteJson(w, item);
                text.Append(Encoding.UTF8.GetString(buffer.WrittenSpan)).Append('\n');
            }
            return text.ToString();
        }
        foreach (var item in items)
        {
            Header(text, item);
            foreach (var r in item.Recipients)
            {
                text.Append("  ").Append(Clean(r.Address)).Append(' ').Append(r.State)
                    .Append(" attempts=").Append(r.Attempts.ToString(CultureInfo.InvariantCulture))
                    .Append(" next=").Append(r.NextAttempt is { } next ? Time(next) : "-")
                    .Append(" reply=").Append(r.LastReply is { Length: > 0 } reply ? Clean(reply) : "-").Append('\n');
            }
        }
        return text.ToString();
    }

    /// <summary>The show text for <paramref name="items"/>: each message's envelope and recipients, a blank line
    /// between messages. <paramref name="replyTextKept"/>: whether last replies carry their text (the running
    /// server) or only what the journal keeps (offline: the code).</summary>
    public static string Show(IReadOnlyList<QueueItem> items, bool json, bool replyTextKept)
    {
        if (json) return List(items, json: true);
        var text = new StringBuilder();
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i];
            if (i > 0) text.Append('\n');
            text.Append("id: ").Append(item.QueueId).Append('\n')
                .Append("arrival: ").Append(Time(item.Arrival)).Append('\n')
                .Append("size: ").Append(item.Size.ToString(CultureInfo.InvariantCulture)).Append('\n')
                .Append("sender: ").Append(Sender(item.Sender)).Append('\n')
                .Append("held: ").Append(item.Held ? "yes" : "no").Append('\n');
            for (int n = 0; n < item.Recipients.Count; n++)
            {
                var r = item.Recipients[n];
                text.Append("recipient ").Append((n + 1).ToString(CultureInfo.InvariantCulture)).Append(": ").Append(Clean(r.Address)).Append('\n')
                    .Append("  state: ").Append(r.State).Append('\n')
                    .Append("  attempts: ").Append(r.Attempts.ToString(CultureInfo.InvariantCulture)).Append('\n');
                if (r.NextAttempt is { } next) text.Append("  next attempt: ").Append(Time(next)).Append('\n');
                if (r.LastReply is { Length: > 0 } reply) text.Append("  last reply: ").Append(Clean(reply)).Append('\n');
            }
            text.Append(replyTextKept
                ? "history: the journal keeps each recipient's attempt count and last reply, not every attempt\n"
                : "history: the journal keeps each recipient's attempt count and last reply code, not every attempt; "
                  + "reply texts are in the server's log\n");
        }
        return text.ToString();
    }

    private static void Header(StringBuilder text, QueueItem item)
    {
        text.Append(item.QueueId).Append(' ').Append(Time(item.Arrival)).Append(' ')
            .Append(item.Size.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(Sender(item.Sender));
        if (item.Held) text.Append(" held");
        text.Append('\n');
    }

    private static void WriteJson(Utf8JsonWriter w, QueueItem item)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, item.QueueId);
        w.WriteString("arrival"u8, Time(item.Arrival));
        w.WriteNumber("size"u8, item.Size);
        w.WriteString("sender"u8, Sender(item.Sender));
        w.WriteBoolean("held"u8, item.Held);
        w.WriteStartArray("recipients"u8);
        foreach (var r in item.Recipients)
        {
            w.WriteStartObject();
            w.WriteString("address"u8, r.Address);
            w.WriteString("state"u8, r.State);
            w.WriteNumber("attempts"u8, r.Attempts);
            if (r.NextAttempt is { } next) w.WriteString("next"u8, Time(next));
            else w.WriteNull("next"u8);
            if (r.LastReply is { } reply) w.WriteString("reply"u8, reply);
            else w.WriteNull("reply"u8);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    private static string Sender(string sender) => sender.Length == 0 ? "<>" : Clean(sender);

    // Control characters (a reply's CR LF, an ESC sequence) become '?': one item stays one line.
    private static string Clean(string s)
    {
        int i = 0;
        while (i < s.Length && !char.IsControl(s[i])) i++;
        if (i == s.Length) return s;
        var chars = s.ToCharArray();
        for (; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i])) chars[i] = '?';
        }
        return new string(chars);
    }
}
