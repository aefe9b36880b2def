using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// A golden SMTP session in a file (Transcripts/*.smtp), replayed against a fresh edgemta. The format,
/// close to the RFC examples:
/// <code>
/// # a comment
/// #! flags: --vrfy enabled --legacy-send        server flags (space-separated), any number of lines
/// #! recipient: Admin.MRC@foo.com Mark Crispin    one recipient-directory line (then --recipients is passed)
/// #! spool: 1                                     after the session: stop, export, expect this many messages
/// S: 220                                          a reply: its code,
/// S: 250 2.1.5                                    optionally its enhanced code,
/// S: 250 2.1.5 "Mark Crispin"                     optionally text its last line must contain
/// S: close                                        the server closes the connection (no more replies)
/// C: MAIL FROM:&lt;a@b&gt;                              a client line; CRLF is appended
/// C~ MAIL FROM:&lt;a@b&gt;\n                            a client line sent as written, no CRLF appended
/// </code>
/// In C lines `\0 \r \n \t \\` are escapes. Consecutive C lines go out in ONE write (pipelining), and
/// the S lines after them are read in order.
/// </summary>
public sealed class Transcript
{
    public string Name { get; }
    public List<string> Flags { get; } = [];
    public List<string> Recipients { get; } = [];
    public int? SpoolCount { get; private set; }
    private readonly List<(int LineNumber, char Kind, string Text)> _steps = [];

    private Transcript(string name) => Name = name;

    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Transcripts");

    public static Transcript Load(string name)
    {
        var t = new Transcript(name);
        string[] lines = File.ReadAllLines(Path.Combine(Directory, name));
        for (int i = 0; i < lines.Length; i++)
        {
            string l = lines[i];
            if (l.StartsWith("#! flags:", StringComparison.Ordinal)) t.Flags.AddRange(l[9..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
            else if (l.StartsWith("#! recipient:", StringComparison.Ordinal)) t.Recipients.Add(l[13..].Trim());
            else if (l.StartsWith("#! spool:", StringComparison.Ordinal)) t.SpoolCount = int.Parse(l[9..].Trim());
            else if (l.Length == 0 || l[0] == '#') continue;
            else if (l.StartsWith("S: ", StringComparison.Ordinal)) t._steps.Add((i + 1, 'S', l[3..].Trim()));
            else if (l.StartsWith("C: ", StringComparison.Ordinal) || l == "C:") t._steps.Add((i + 1, 'C', Unescape(l.Length > 3 ? l[3..] : "") + "\r\n"));
            else if (l.StartsWith("C~ ", StringComparison.Ordinal)) t._steps.Add((i + 1, 'C', Unescape(l[3..])));
            else throw new FormatException($"{name}:{i + 1}: a line must start with `S: `, `C: `, `C~ ` or `#`: {l}");
        }
        return t;
    }

    public async Task ReplayAsync(ITestOutputHelper output)
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, Flags,
            Recipients.Count > 0 ? string.Join('\n', Recipients) + "\n" : null);
        await using (SmtpConnection c = await server.ConnectAsync())
        {
            var pending = new StringBuilder();
            string lastCommand = "the greeting";
            foreach ((int line, char kind, string text) in _steps)
            {
                if (kind == 'C')
                {
                    pending.Append(text);
                    lastCommand = text.TrimEnd('\r', '\n');
                    continue;
                }
                if (pending.Length > 0)
                {
                    await c.SendAsync(Encoding.UTF8.GetBytes(pending.ToString()));
                    pending.Clear();
                }
                string where = $"{Name}:{line}";
                string after = $"{lastCommand} ({where})";
                if (text == "close")
                {
                    Assert.True(await c.IsClosedAsync(SmtpConnection.ReadTimeout), $"{where}: expected the server to close\n{c.Transcript}");
                    continue;
                }
                (int code, string? enhanced, string? contains) = ParseExpectation(text, where);
                SmtpReply reply = await c.ExpectAsync(code, enhanced, after);
                if (contains is not null)
                {
                    Assert.True(reply.Text.Contains(contains, StringComparison.Ordinal), $"{where}: expected the reply to contain \"{contains}\", got `{reply}`\n{c.Transcript}");
                }
            }
            if (pending.Length > 0) await c.SendAsync(Encoding.UTF8.GetBytes(pending.ToString()));
            output.WriteLine(c.Transcript);
        }
        if (SpoolCount is int expected)
        {
            SpoolExport export = await server.StopAndExportAsync();
            Assert.True(export.Count == expected, $"{Name}: the spool should hold {expected} message(s), it holds {export.Count}");
        }
    }

    private static (int Code, string? Enhanced, string? Contains) ParseExpectation(string text, string where)
    {
        string? contains = null;
        int quote = text.IndexOf('"');
        if (quote >= 0)
        {
            Assert.True(text.EndsWith('"') && text.Length > quote + 1, $"{where}: unbalanced quotes in `{text}`");
            contains = text[(quote + 1)..^1];
            text = text[..quote].Trim();
        }
        string[] parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(parts.Length is 1 or 2 && int.TryParse(parts[0], out _), $"{where}: an S line is `S: NNN [X.Y.Z] [\"text\"]`, not `{text}`");
        return (int.Parse(parts[0]), parts.Length == 2 ? parts[1] : null, contains);
    }

    private static string Unescape(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\' || i + 1 == s.Length) { sb.Append(s[i]); continue; }
            char e = s[++i];
            sb.Append(e switch { '0' => '\0', 'r' => '\r', 'n' => '\n', 't' => '\t', '\\' => '\\', _ => throw new FormatException($"unknown escape \\{e}") });
        }
        return sb.ToString();
    }
}
