// Golden SMTP transcripts (as Postfix's smtpd_token.in/.ref): Transcripts/NAME.in holds the client's bytes,
// NAME.ref the server's exact output, NAME.opts (optional) the session settings, one "key=value" a line.
// Each transcript is fed as a pipelining client sends it (one write per group, RFC 2920), one line a write,
// and one byte a write; all three must give the .ref output. "feed=whole" transcripts (synchronization
// violations, early talkers) are given as one write only, since their point is what arrives together.
// Set EDGEMTA_UPDATE_TRANSCRIPTS=1 to rewrite the .ref files from the current output (then review the diff).
using System.Runtime.CompilerServices;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol.Tests;

public class TranscriptTests
{
    private static string Folder => Path.Combine(AppContext.BaseDirectory, "Transcripts");

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (string file in Directory.GetFiles(Folder, "*.in").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileNameWithoutExtension(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void EachTranscriptGivesItsReferenceOutputHoweverTheInputIsSplit(string name)
    {
        byte[] input = File.ReadAllBytes(Path.Combine(Folder, name + ".in"));
        Dictionary<string, string> opts = ReadOptions(name);
        string[] modes = opts.GetValueOrDefault("feed") == "whole" ? ["whole"] : ["groups", "lines", "bytes"];
        string? first = null;
        foreach (string mode in modes)
        {
            string output = Run(input, opts, mode);
            first ??= output;
            Assert.True(first == output, $"{name}: feeding by {mode} differs from {modes[0]}:\n{output}");
        }
        string refPath = Path.Combine(Folder, name + ".ref");
        if (Environment.GetEnvironmentVariable("EDGEMTA_UPDATE_TRANSCRIPTS") == "1")
        {
            File.WriteAllBytes(Path.Combine(SourceFolder(), name + ".ref"), Encoding.Latin1.GetBytes(first!));
            return;
        }
        Assert.True(File.Exists(refPath), $"{name}.ref is missing");
        Assert.Equal(Encoding.Latin1.GetString(File.ReadAllBytes(refPath)), first);
    }

    private static string SourceFolder([CallerFilePath] string path = "") => Path.Combine(Path.GetDirectoryName(path)!, "Transcripts");

    private static Dictionary<string, string> ReadOptions(string name)
    {
        var opts = new Dictionary<string, string>();
        string path = Path.Combine(Folder, name + ".opts");
        if (File.Exists(path))
        {
            foreach (string raw in File.ReadAllLines(path))
            {
                string line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                {
                    continue;
                }
                int eq = line.IndexOf('=');
                opts[eq < 0 ? line : line[..eq]] = eq < 0 ? "" : line[(eq + 1)..];
            }
        }
        return opts;
    }

    internal static string Run(byte[] input, Dictionary<string, string> opts, string mode)
    {
        var options = new SmtpSessionOptions
        {
            HostName = "foo.com",
            Vrfy = opts.GetValueOrDefault("vrfy") switch { "enabled" => VrfyMode.Enabled, "disabled" => VrfyMode.Disabled, _ => VrfyMode.Ambiguous },
            ExpnEnabled = opts.ContainsKey("expn"),
            LegacySend = opts.ContainsKey("legacy-send"),
            TlsAvailable = opts.ContainsKey("tls"),
            BareNewlines = opts.GetValueOrDefault("bare-newline") == "normalize" ? BareNewlinePolicy.Normalize : BareNewlinePolicy.Reject,
            MaxMessageSize = opts.TryGetValue("max-message-size", out string? size) ? long.Parse(size) : 26_214_400,
            GreetDelay = opts.ContainsKey("greet-delay") ? TimeSpan.FromSeconds(1) : TimeSpan.Zero,
            RefusedSenderDomains = opts.TryGetValue("refused-sender", out string? refused) ? [refused] : [],
            ErrorLimit = opts.TryGetValue("error-limit", out string? errors) ? int.Parse(errors) : 20,
        };
        RecipientDirectory directory = opts.GetValueOrDefault("directory") == "sink" ? RecipientDirectory.Sink : TestDirectories.Seed;
        var driver = new SessionDriver(options, directory);
        var output = new StringBuilder(driver.Start());
        if (driver.Closed)
        {
            return output.ToString();
        }
        if (mode == "groups")
        {
            foreach (byte[] group in Groups(input))
            {
                if (driver.Closed || driver.TlsRequested)
                {
                    break;
                }
                output.Append(driver.Send(group));
            }
        }
        else
        {
            output.Append(driver.Feed(input, mode));
        }
        return output.ToString();
    }

    /// <summary>Splits client bytes into the writes of a client that pipelines correctly: a write ends after a command that ends a group.</summary>
    private static IEnumerable<byte[]> Groups(byte[] input)
    {
        int start = 0, i = 0;
        bool inData = false;
        while (i < input.Length)
        {
            int lf = Array.IndexOf(input, (byte)'\n', i);
            int end = lf < 0 ? input.Length : lf + 1;
            string line = Encoding.Latin1.GetString(input, i, end - i);
            i = end;
            if (inData)
            {
                inData = line != ".\r\n";
                continue;
            }
            SmtpVerb verb = VerbOpcodes.Recognise(Encoding.Latin1.GetBytes(line.TrimEnd('\r', '\n')), out _);
            if (VerbTable.Has(verb, VerbFlags.EndsPipelineGroup) && line.EndsWith("\r\n"))
            {
                inData = verb == SmtpVerb.Data;
                yield return input[start..i];
                start = i;
            }
        }
        if (start < input.Length)
        {
            yield return input[start..];
        }
    }
}
