using System.Text;
using System.Text.Json;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// One message as `edgemta spool export` wrote it: `&lt;id&gt;.eml` holds the exact accepted bytes, which
/// begin with the server's own `Received:` trace header (RFC 5321 §4.4), then the client's message after
/// dot-unstuffing; `&lt;id&gt;.json` holds the envelope.
/// </summary>
public sealed record ExportedMessage(string Id, byte[] Eml, string? Sender, IReadOnlyList<string> Recipients, string EnvelopeJson)
{
    /// <summary>The server's Received: header, folded lines included, with its final CRLF.</summary>
    public string ReceivedHeader => Encoding.UTF8.GetString(Eml, 0, ClientMessageOffset());

    /// <summary>The client's message: everything after the first Received: header.</summary>
    public ReadOnlySpan<byte> ClientMessage => Eml.AsSpan(ClientMessageOffset());

    /// <summary>
    /// Where the first header ends: it must be `Received:`, and it goes on over every following line that
    /// starts with a space or a tab (folding, RFC 5322 §2.2.3).
    /// </summary>
    public int ClientMessageOffset()
    {
        Assert.True(Eml.AsSpan().StartsWith("Received:"u8),
            $"{Id}.eml should begin with the server's `Received:` header, it begins `{Encoding.UTF8.GetString(Eml, 0, Math.Min(80, Eml.Length))}`");
        int at = 0;
        while (true)
        {
            int lf = Array.IndexOf(Eml, (byte)'\n', at);
            Assert.True(lf > 0 && Eml[lf - 1] == '\r', $"{Id}.eml: the Received: header has a line not ended by CRLF");
            at = lf + 1;
            if (at >= Eml.Length || (Eml[at] != ' ' && Eml[at] != '\t')) return at;
        }
    }
}

/// <summary>
/// Everything `spool export` wrote into one directory, by queue id.
///
/// THE ENVELOPE ASSUMPTION (one place, for the integrator to pin once the spool's JSON is fixed):
/// the .json file is a JSON object; somewhere in it (searched depth-first, top level first) is
///  - a string property whose name contains "sender", "from" or "reversepath" (case-insensitive): the
///    reverse-path, without angle brackets ("" for the null path), and
///  - an array property whose name contains "recipient", "rcpt" or "forwardpath", or is "to": the
///    forward-paths, as strings, or as objects holding the address in a string property named "to",
///    "address" or "forward_path" (else their first string property).
/// Angle brackets around either are tolerated and removed.
/// As of the spool branch (SpoolCommands.WriteEnvelopeJson) the file reads
/// {"id", "arrival", "size", "client_address", "helo", "mail_from", "mail_parameters",
///  "rcpt": [{"to", "parameters"}]}, which this matches; non-UTF-8 values become "&lt;name&gt;_base64" (not read here).
/// </summary>
public sealed class SpoolExport
{
    public string Directory { get; }
    public IReadOnlyDictionary<string, ExportedMessage> ById { get; }
    public int Count => ById.Count;

    private SpoolExport(string directory, Dictionary<string, ExportedMessage> byId)
    {
        Directory = directory;
        ById = byId;
    }

    public static SpoolExport Read(string directory)
    {
        var byId = new Dictionary<string, ExportedMessage>(StringComparer.Ordinal);
        foreach (string eml in System.IO.Directory.EnumerateFiles(directory, "*.eml"))
        {
            string id = Path.GetFileNameWithoutExtension(eml);
            string jsonPath = Path.ChangeExtension(eml, ".json");
            Assert.True(File.Exists(jsonPath), $"spool export wrote {id}.eml without {id}.json");
            string json = File.ReadAllText(jsonPath);
            using JsonDocument doc = JsonDocument.Parse(json);
            string? sender = FindSender(doc.RootElement);
            IReadOnlyList<string> recipients = FindRecipients(doc.RootElement) ?? [];
            byId[id] = new ExportedMessage(id, File.ReadAllBytes(eml), sender, recipients, json);
        }
        foreach (string json in System.IO.Directory.EnumerateFiles(directory, "*.json"))
        {
            Assert.True(File.Exists(Path.ChangeExtension(json, ".eml")), $"spool export wrote {Path.GetFileName(json)} without its .eml");
        }
        return new SpoolExport(directory, byId);
    }

    public ExportedMessage this[string id]
    {
        get
        {
            Assert.True(ById.TryGetValue(id, out ExportedMessage? m),
                $"The client saw `250 ... queued as {id}`, but spool export has no {id}.eml (it has {Count} messages: {string.Join(", ", ById.Keys.Take(10))})");
            return m;
        }
    }

    private static string? FindSender(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        foreach (JsonProperty p in e.EnumerateObject())
        {
            string n = p.Name.ToLowerInvariant();
            if (p.Value.ValueKind == JsonValueKind.String && (n.Contains("sender") || n.Contains("from") || n.Contains("reversepath")))
            {
                return Unbracket(p.Value.GetString()!);
            }
        }
        foreach (JsonProperty p in e.EnumerateObject())
        {
            if (FindSender(p.Value) is { } s) return s;
        }
        return null;
    }

    private static List<string>? FindRecipients(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        foreach (JsonProperty p in e.EnumerateObject())
        {
            string n = p.Name.ToLowerInvariant();
            if (p.Value.ValueKind == JsonValueKind.Array && (n.Contains("recipient") || n.Contains("rcpt") || n.Contains("forwardpath") || n == "to"))
            {
                var list = new List<string>();
                foreach (JsonElement item in p.Value.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String) list.Add(Unbracket(item.GetString()!));
                    else if (item.ValueKind == JsonValueKind.Object && AddressOf(item) is { } address)
                    {
                        list.Add(Unbracket(address));
                    }
                }
                return list;
            }
        }
        foreach (JsonProperty p in e.EnumerateObject())
        {
            if (FindRecipients(p.Value) is { } r) return r;
        }
        return null;
    }

    private static string? AddressOf(JsonElement item)
    {
        string? first = null;
        foreach (JsonProperty q in item.EnumerateObject())
        {
            if (q.Value.ValueKind != JsonValueKind.String) continue;
            string n = q.Name.ToLowerInvariant();
            if (n is "to" or "address" or "forward_path" or "forwardpath") return q.Value.GetString();
            first ??= q.Value.GetString();
        }
        return first;
    }

    private static string Unbracket(string s) => s.Length >= 2 && s[0] == '<' && s[^1] == '>' ? s[1..^1] : s;
}
