using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>One delivery event from edgemta's log (docs/DELIVERY.md "Log lines"): its name and key=value fields.</summary>
public sealed record DeliveryLine(string Event, IReadOnlyDictionary<string, string> Fields, string Raw)
{
    /// <summary>A field's value, "" when the line lacks it.</summary>
    public string this[string key] => Fields.TryGetValue(key, out string? v) ? v : "";

    public override string ToString() => Raw;
}

/// <summary>
/// Reads the contract's delivery log lines (`delivered id=ID rcpt=ADDR relay=HOST:PORT reply="250 ..." ...`) out
/// of a running server's stdout, waits for them (bounded, polled every 20 ms), and runs `edgemta queue`
/// commands. A value may be written "quoted" as the contract shows, or bare with %XX escapes as the server's
/// log writer sanitises it; both read back to the same text. Deliberately tolerant of extra fields and of
/// anything before the event name (timestamp, event number).
/// </summary>
public static partial class DeliveryLogLines
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>Every stdout line whose event is <paramref name="name"/> (e.g. "delivered", "relay-dead").</summary>
    public static DeliveryLine[] Events(this EdgeMtaProcess server, string name)
    {
        var found = new List<DeliveryLine>();
        foreach (string raw in server.Log.Split('\n'))
        {
            if (!raw.StartsWith("out| ", StringComparison.Ordinal)) continue;
            DeliveryLine? line = Parse(raw[5..].TrimEnd('\r'));
            if (line is not null && line.Event == name) found.Add(line);
        }
        return [.. found];
    }

    /// <summary>The line parsed, or null when it carries no event name followed by key=value fields.</summary>
    public static DeliveryLine? Parse(string text)
    {
        // The event name: the first of the first four words made of lowercase letters and dashes and followed by a key=value.
        string[] words = text.Split(' ', 5);
        for (int i = 0; i < Math.Min(4, words.Length); i++)
        {
            if (!EventName().IsMatch(words[i]) || i + 1 >= words.Length || !words[i + 1].Split(' ', 2)[0].Contains('=', StringComparison.Ordinal)) continue;
            int at = text.IndexOf(' ' + words[i], StringComparison.Ordinal);
            string rest = i == 0 ? text[words[0].Length..] : text[(at + 1 + words[i].Length)..];
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match m in Field().Matches(rest))
            {
                string value = m.Groups["q"].Success ? m.Groups["q"].Value.Replace("\\\"", "\"", StringComparison.Ordinal) : Unescape(m.Groups["v"].Value);
                fields.TryAdd(m.Groups["k"].Value, value);
            }
            return new DeliveryLine(words[i], fields, text);
        }
        return null;
    }

    [GeneratedRegex(@"^[a-z]+(-[a-z]+)*$")]
    private static partial Regex EventName();

    [GeneratedRegex(@"(?:^|\s)(?<k>[a-z][a-z_-]*)=(?:""(?<q>(?:[^""\\]|\\.)*)""|(?<v>\S*))")]
    private static partial Regex Field();

    private static string Unescape(string value)
    {
        if (!value.Contains('%', StringComparison.Ordinal)) return value;
        var bytes = new List<byte>(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            if (value[i] == '%' && i + 2 < value.Length &&
                byte.TryParse(value.AsSpan(i + 1, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(value[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    /// <summary>Waits until at least <paramref name="count"/> events named <paramref name="name"/> (matching
    /// <paramref name="where"/> when given) are logged; fails the test with the log past the bound or if the
    /// server exits first.</summary>
    public static async Task<DeliveryLine[]> WaitForEventsAsync(this EdgeMtaProcess server, string name, int count = 1,
        Func<DeliveryLine, bool>? where = null, TimeSpan? bound = null, Func<string>? context = null)
    {
        TimeSpan limit = bound ?? Bound;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            DeliveryLine[] lines = server.Events(name).Where(l => where?.Invoke(l) ?? true).ToArray();
            if (lines.Length >= count) return lines;
            if (server.HasExited || clock.Elapsed > limit)
            {
                Assert.Fail($"waited for {count} `{name}` line(s), saw {lines.Length} " +
                            $"({(server.HasExited ? "the server exited" : $"after {limit.TotalSeconds} s")})\n{context?.Invoke()}\n{server.Log}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Runs `edgemta queue SUBCOMMAND --spool &lt;the server's spool&gt; [args]` (bounded: 30 s).</summary>
    public static Task<ToolResult> RunQueueAsync(this EdgeMtaProcess server, ITestOutputHelper output, string subcommand, params string[] args) =>
        RunQueueAsync(server.SpoolDirectory, output, subcommand, args);

    public static Task<ToolResult> RunQueueAsync(string spool, ITestOutputHelper output, string subcommand, params string[] args) =>
        ToolRun.RunAsync(EdgeMtaBinary.Require(), ["queue", subcommand, "--spool", spool, .. args], TimeSpan.FromSeconds(30), output);

    /// <summary>`queue list --json`: one object per line; the lines that mention <paramref name="id"/> (all when null).</summary>
    public static async Task<string[]> QueueJsonAsync(this EdgeMtaProcess server, ITestOutputHelper output, string? id = null)
    {
        ToolResult r = await server.RunQueueAsync(output, "list", "--json");
        Assert.True(r.ExitCode == 0, $"queue list --json failed\n{r}");
        return r.StandardOutput.Split('\n')
            .Where(l => l.TrimStart().StartsWith('{') && (id is null || l.Contains(id, StringComparison.Ordinal))).ToArray();
    }

    /// <summary>Whether a `queue list --json` line says the message is held: `"held": true`, or a recipient in
    /// state "held" (docs/DELIVERY.md lists held among the recipient states).</summary>
    public static bool IsHeld(string jsonLine)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(jsonLine);
        System.Text.Json.JsonElement root = doc.RootElement;
        if (root.TryGetProperty("held", out var held) && held.ValueKind == System.Text.Json.JsonValueKind.True) return true;
        if (!root.TryGetProperty("recipients", out var recipients) || recipients.ValueKind != System.Text.Json.JsonValueKind.Array) return false;
        foreach (var r in recipients.EnumerateArray())
        {
            if (r.ValueKind == System.Text.Json.JsonValueKind.Object && r.TryGetProperty("state", out var state) &&
                state.ValueKind == System.Text.Json.JsonValueKind.String && state.GetString() == "held") return true;
        }
        return false;
    }
}
