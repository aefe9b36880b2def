using System.Text;
using System.Text.RegularExpressions;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// Runs swaks (the SMTP test client, /usr/bin/swaks) against a port and reads its transcript:
/// ` -> LINE` is what swaks sent, `&lt;-  LINE` a reply it expected, `&lt;** LINE` one it did not
/// (`~>`, `&lt;~`, `&lt;~*` the same inside TLS).
/// Exit codes (swaks(1) "EXIT CODES"): 0 ok, 23 MAIL refused, 24 no RCPT accepted, 25 DATA refused,
/// 26 message refused after data.
/// </summary>
public sealed partial class Swaks
{
    public const string Binary = "/usr/bin/swaks";

    public ToolResult Result { get; }
    private readonly List<(bool Client, string Line)> _lines = [];

    private Swaks(ToolResult result)
    {
        Result = result;
        foreach (string raw in result.StandardOutput.Split('\n'))
        {
            string l = raw.TrimEnd('\r');
            Match m = TranscriptLine().Match(l);
            if (!m.Success) continue;
            bool client = m.Groups[1].Value is "->" or "~>";
            _lines.Add((client, client ? m.Groups[2].Value : m.Groups[2].Value.TrimStart()));
        }
    }

    [GeneratedRegex(@"^\s*(->|~>|<-|<\*\*|<~\*|<~) ?(.*)$")]
    private static partial Regex TranscriptLine();

    public static async Task<Swaks> RunAsync(int port, ITestOutputHelper output, params string[] args)
    {
        string binary = File.Exists(Binary) ? Binary : "swaks";
        ToolResult r = await ToolRun.RunAsync(binary,
            ["--server", $"127.0.0.1:{port}", "--timeout", "10", "--hide-informational", .. args], TimeSpan.FromSeconds(30), output);
        return new Swaks(r);
    }

    /// <summary>The first line swaks read: the server's greeting.</summary>
    public string Banner() => _lines.Count > 0 && !_lines[0].Client ? _lines[0].Line : "";

    /// <summary>The code of the first server line after the first client line starting with <paramref name="command"/>.</summary>
    public int ReplyTo(string command)
    {
        for (int i = 0; i < _lines.Count; i++)
        {
            if (!_lines[i].Client || !_lines[i].Line.StartsWith(command, StringComparison.OrdinalIgnoreCase)) continue;
            for (int j = i + 1; j < _lines.Count; j++)
            {
                if (!_lines[j].Client) return int.Parse(_lines[j].Line.AsSpan(0, 3));
            }
        }
        Assert.Fail($"swaks transcript has no reply to `{command}`\n{Result}");
        return 0;
    }

    /// <summary>The full text of the first server reply line after <paramref name="command"/>.</summary>
    public string ReplyLineTo(string command)
    {
        ReplyTo(command);
        int i = _lines.FindIndex(l => l.Client && l.Line.StartsWith(command, StringComparison.OrdinalIgnoreCase));
        return _lines.Skip(i + 1).First(l => !l.Client).Line;
    }

    /// <summary>Every server line of the reply to the first client line starting with <paramref name="command"/>.</summary>
    public List<string> ReplyLinesTo(string command)
    {
        int i = _lines.FindIndex(l => l.Client && l.Line.StartsWith(command, StringComparison.OrdinalIgnoreCase));
        Assert.True(i >= 0, $"swaks never sent `{command}`\n{Result}");
        return _lines.Skip(i + 1).SkipWhile(l => l.Client).TakeWhile(l => !l.Client).Select(l => l.Line).ToList();
    }

    /// <summary>
    /// What swaks sent as message data, rebuilt from its transcript (the lines between the 354 and the lone
    /// dot) and dot-unstuffed: what the spool must hold after its Received: header.
    /// </summary>
    public byte[] SentMessage()
    {
        int data = _lines.FindIndex(l => l.Client && l.Line.Equals("DATA", StringComparison.OrdinalIgnoreCase));
        Assert.True(data >= 0, $"swaks sent no DATA\n{Result}");
        int start = _lines.FindIndex(data + 1, l => !l.Client) + 1;
        var sb = new StringBuilder();
        for (int i = start; i < _lines.Count && _lines[i].Client && _lines[i].Line != "."; i++)
        {
            string l = _lines[i].Line;
            sb.Append(l.StartsWith('.') ? l[1..] : l).Append("\r\n");
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>The queue id in the 250 to the end of data.</summary>
    public string QueueId()
    {
        int dot = _lines.FindIndex(l => l.Client && l.Line == ".");
        Assert.True(dot >= 0, $"swaks sent no end of data\n{Result}");
        string reply = _lines.Skip(dot + 1).First(l => !l.Client).Line;
        var r = new SmtpReply(int.Parse(reply.AsSpan(0, 3)), [reply.Length > 4 ? reply[4..] : ""]);
        Assert.True(r.QueueId is { Length: > 0 }, $"The 250 to the end of data should read `250 2.0.0 OK queued as <id>`, it was `{reply}`");
        return r.QueueId!;
    }
}
