using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>A message a client saw accepted: the queue id from its 250, and its bytes after dot-unstuffing.</summary>
public sealed record SentMessage(string QueueId, byte[] Message, string Sender, IReadOnlyList<string> Recipients);

/// <summary>Message-level helpers: DATA framing (RFC 5321 §4.5.2) and the round-trip assertion.</summary>
public static class Mail
{
    /// <summary>
    /// The DATA payload for <paramref name="message"/>: every line that starts with "." gets one more
    /// (RFC 5321 §4.5.2), then the end-of-data line. The message must be empty or end in CRLF.
    /// </summary>
    public static byte[] DotStuff(ReadOnlySpan<byte> message)
    {
        Assert.True(message.IsEmpty || message.EndsWith("\r\n"u8), "a DATA message must end in CRLF");
        var stuffed = new List<byte>(message.Length + 16);
        bool lineStart = true;
        foreach (byte b in message)
        {
            if (lineStart && b == '.') stuffed.Add((byte)'.');
            stuffed.Add(b);
            lineStart = b == '\n';
        }
        stuffed.AddRange(".\r\n"u8.ToArray());
        return stuffed.ToArray();
    }

    public static byte[] Crlf(params string[] lines) => Encoding.UTF8.GetBytes(string.Concat(lines.Select(l => l + "\r\n")));

    /// <summary>
    /// A whole transaction on an open, greeted session: MAIL, each RCPT, DATA, the stuffed message; asserts
    /// 250/250.../354/250 and returns what was sent with its queue id.
    /// </summary>
    public static async Task<SentMessage> SendMessageAsync(this SmtpConnection c, string from, IReadOnlyList<string> to, byte[] message, string? mailParameters = null)
    {
        await c.CommandAsync($"MAIL FROM:<{from}>" + (mailParameters is null ? "" : " " + mailParameters), 250);
        foreach (string r in to) await c.CommandAsync($"RCPT TO:<{r}>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync(DotStuff(message));
        SmtpReply done = await c.ExpectAsync(250, "2.0.0", "the end of data");
        Assert.True(done.QueueId is { Length: > 0 }, $"The 250 to the end of data should read `250 2.0.0 OK queued as <id>`, it was `{done}`");
        return new SentMessage(done.QueueId!, message, from, to);
    }

    /// <summary>
    /// Every message a client saw 250 for is in the export, and its bytes after the server's Received:
    /// header are exactly the dot-unstuffed message sent; sender and recipients match the envelope.
    /// </summary>
    public static void AssertExportedExactly(SpoolExport export, IEnumerable<SentMessage> sent)
    {
        foreach (SentMessage s in sent)
        {
            ExportedMessage m = export[s.QueueId];
            AssertSameBytes(s.Message, m.ClientMessage, $"{s.QueueId}.eml after its Received: header");
            Assert.True(string.Equals(m.Sender, s.Sender, StringComparison.OrdinalIgnoreCase),
                $"{s.QueueId}.json: sender `{m.Sender}`, the client sent MAIL FROM:<{s.Sender}> (see SpoolExport's envelope assumption)\n{m.EnvelopeJson}");
            Assert.True(s.Recipients.Order(StringComparer.OrdinalIgnoreCase).SequenceEqual(m.Recipients.Order(StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase),
                $"{s.QueueId}.json: recipients [{string.Join(", ", m.Recipients)}], accepted were [{string.Join(", ", s.Recipients)}]\n{m.EnvelopeJson}");
        }
    }

    public static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what)
    {
        if (expected.SequenceEqual(actual)) return;
        int at = expected.CommonPrefixLength(actual);
        Assert.Fail($"{what} differs from what was sent at byte {at} (sent {expected.Length} bytes, stored {actual.Length}).\n" +
                    $"sent:   {Show(expected, at)}\nstored: {Show(actual, at)}");
    }

    private static string Show(ReadOnlySpan<byte> bytes, int at)
    {
        int from = Math.Max(0, at - 20), to = Math.Min(bytes.Length, at + 40);
        var sb = new StringBuilder();
        for (int i = from; i < to; i++)
        {
            byte b = bytes[i];
            sb.Append(b switch { (byte)'\r' => "\\r", (byte)'\n' => "\\n", < 0x20 or >= 0x7f => $"\\x{b:x2}", _ => ((char)b).ToString() });
        }
        return (from > 0 ? "..." : "") + sb + (to < bytes.Length ? "..." : "");
    }
}
