// Contract: a small, obvious MIME reader for the bounce tests, written from RFC 5322 §2.2 (header fields,
// unfolding) and RFC 2046 §5.1.1 (delimiter lines), independent of the composer's code so a test can read the
// notice back as a mail client would. It handles only what the tests need: CRLF text, one level of
// multipart, a quoted or bare boundary parameter. Anything malformed fails the test with an assertion.

using System.Text;

namespace EdgeMta.Delivery.Tests;

internal sealed record MimeEntity(List<KeyValuePair<string, string>> Fields, byte[] Body)
{
    /// <summary>The unfolded value of the only field named <paramref name="name"/>; null when absent.</summary>
    public string? Field(string name)
    {
        string? found = null;
        foreach (KeyValuePair<string, string> f in Fields)
        {
            if (string.Equals(f.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                Assert.Null(found);
                found = f.Value;
            }
        }

        return found;
    }

    public string BodyText => Encoding.UTF8.GetString(Body);
}

internal static class MimeSplitter
{
    /// <summary>Splits header from body at the first empty line and unfolds the header fields.</summary>
    public static MimeEntity Parse(ReadOnlySpan<byte> entity)
    {
        int end = entity.IndexOf("\r\n\r\n"u8);
        if (entity.StartsWith("\r\n"u8))
        {
            return new MimeEntity([], entity[2..].ToArray());
        }

        Assert.True(end >= 0, "an entity has no empty line after its header");
        return new MimeEntity(Fields(Encoding.UTF8.GetString(entity[..(end + 2)])), entity[(end + 4)..].ToArray());
    }

    /// <summary>Header fields of a block of CRLF lines; a line starting with white space continues the last.</summary>
    public static List<KeyValuePair<string, string>> Fields(string block)
    {
        var fields = new List<KeyValuePair<string, string>>();
        string[] lines = block.Split("\r\n");
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.Length == 0)
            {
                continue;
            }

            if (line[0] is ' ' or '\t')
            {
                Assert.NotEmpty(fields);
                KeyValuePair<string, string> last = fields[^1];
                // Unfolding removes the CRLF only (RFC 5322 §2.2.3).
                fields[^1] = new(last.Key, last.Value + line);
                continue;
            }

            int colon = line.IndexOf(':');
            Assert.True(colon > 0, "not a header field: " + line);
            fields.Add(new(line[..colon], line[(colon + 1)..].TrimStart()));
        }

        return fields;
    }

    /// <summary>The boundary parameter of a multipart Content-Type value.</summary>
    public static string Boundary(string contentType)
    {
        int at = contentType.IndexOf("boundary=", StringComparison.OrdinalIgnoreCase);
        Assert.True(at >= 0);
        string rest = contentType[(at + "boundary=".Length)..];
        return rest.StartsWith('"') ? rest[1..rest.IndexOf('"', 1)] : rest.Split(';')[0].Trim();
    }

    /// <summary>The body parts between "--boundary" lines and the closing "--boundary--" line.</summary>
    public static List<byte[]> Parts(byte[] body, string boundary)
    {
        byte[] delimiter = Encoding.ASCII.GetBytes("\r\n--" + boundary);
        // The first delimiter may start the body, with no CRLF before it (RFC 2046 §5.1.1).
        var text = new List<byte>(2 + body.Length);
        text.AddRange("\r\n"u8.ToArray());
        text.AddRange(body);
        byte[] all = [.. text];
        int at = all.AsSpan().IndexOf(delimiter);
        Assert.True(at >= 0, "no first delimiter");
        var parts = new List<byte[]>();
        while (true)
        {
            int after = at + delimiter.Length;
            if (all.AsSpan(after).StartsWith("--"u8))
            {
                return parts;
            }

            Assert.True(all.AsSpan(after).StartsWith("\r\n"u8), "a delimiter line has more on it");
            int start = after + 2;
            int next = all.AsSpan(start).IndexOf(delimiter);
            Assert.True(next >= 0, "no closing delimiter");
            parts.Add(all.AsSpan(start, next).ToArray());
            at = start + next;
        }
    }

    /// <summary>Each line ends in CRLF (no bare CR or LF) and is under 998 octets (RFC 5322 §2.1.1).</summary>
    public static void AssertLines(ReadOnlySpan<byte> message)
    {
        Assert.True(message.EndsWith("\r\n"u8));
        while (!message.IsEmpty)
        {
            int lf = message.IndexOf((byte)'\n');
            Assert.True(lf > 0 && message[lf - 1] == '\r', "a bare LF");
            ReadOnlySpan<byte> line = message[..(lf - 1)];
            Assert.DoesNotContain((byte)'\r', line.ToArray());
            Assert.True(line.Length < 998, "a line of " + line.Length + " octets");
            message = message[(lf + 1)..];
        }
    }
}
