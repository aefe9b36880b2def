using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>One HTTP exchange with the metrics port, as raw bytes: status line, fields, body.</summary>
public sealed record HttpExchange(string StatusLine, IReadOnlyDictionary<string, string> Fields, string Body, bool Reset)
{
    public int Status => StatusLine.Length >= 12 ? int.Parse(StatusLine.AsSpan(9, 3), CultureInfo.InvariantCulture) : 0;
}

/// <summary>
/// The metrics port of a running edgemta (`--metrics-listen 127.0.0.1:0`): where it is (the `metrics on
/// ADDR:PORT` line after `listening on`), raw HTTP exchanges with it, the samples of a scrape, and the
/// real parser's verdict (`promtool check metrics`, Debian's prometheus package; tests/run.sh installs it).
/// Every wait is bounded.
/// </summary>
public static partial class MetricsScrape
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    public const string Promtool = "promtool";

    /// <summary>The port from the `metrics on 127.0.0.1:PORT` stdout line.</summary>
    public static async Task<int> PortAsync(EdgeMtaProcess server)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            Match m = MetricsLine().Match(server.Log);
            if (m.Success) return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.True(DateTime.UtcNow < deadline && !server.HasExited, $"no `metrics on 127.0.0.1:PORT` line within {Timeout.TotalSeconds} s\n{server.Log}");
            await Task.Delay(20);
        }
    }

    [GeneratedRegex(@"^out\| metrics on 127\.0\.0\.1:(\d{1,5})\s*$", RegexOptions.Multiline)]
    private static partial Regex MetricsLine();

    /// <summary>Sends <paramref name="request"/> as is and reads until the server closes (or resets).</summary>
    public static async Task<HttpExchange> ExchangeAsync(int port, string request)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var deadline = new CancellationTokenSource(Timeout);
        await s.ConnectAsync("127.0.0.1", port, deadline.Token);
        bool reset = false;
        try
        {
            await s.SendAsync(Encoding.Latin1.GetBytes(request), SocketFlags.None, deadline.Token);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            reset = true; // closed on us mid-request (over the cap, or past the head limit): read what came
        }
        var all = new MemoryStream();
        var buffer = new byte[16384];
        try
        {
            int n;
            while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0) all.Write(buffer, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            reset = true;
        }
        return Parse(Encoding.UTF8.GetString(all.ToArray()), reset);
    }

    public static HttpExchange Parse(string response, bool reset)
    {
        int end = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0) return new HttpExchange(response, new Dictionary<string, string>(), "", reset);
        string[] lines = response[..end].Split("\r\n");
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            fields[line[..colon]] = line[(colon + 1)..].Trim();
        }
        return new HttpExchange(lines[0], fields, response[(end + 4)..], reset);
    }

    /// <summary>A successful scrape's body; fails the test on anything but 200 with the exposition's type.</summary>
    public static async Task<string> ScrapeAsync(int port)
    {
        HttpExchange r = await ExchangeAsync(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n");
        Assert.True(r.Status == 200, $"scrape: {r.StatusLine}\n{r.Body}");
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", r.Fields["Content-Type"]);
        Assert.Equal(Encoding.UTF8.GetByteCount(r.Body), int.Parse(r.Fields["Content-Length"], CultureInfo.InvariantCulture));
        return r.Body;
    }

    /// <summary>Every sample as `name{labels}` → value (labels as the server wrote them).</summary>
    public static Dictionary<string, double> Samples(string body)
    {
        var samples = new Dictionary<string, double>();
        foreach (string line in body.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            string value = line[(space + 1)..];
            samples[line[..space]] = value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            };
        }
        return samples;
    }

    /// <summary>`promtool check metrics` on the body: its exit code must be 0 and it must say nothing.</summary>
    public static async Task AssertPromtoolAcceptsAsync(string body, ITestOutputHelper output)
    {
        string? found = Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(d => Path.Combine(d, Promtool)).FirstOrDefault(File.Exists);
        Assert.True(found is not null, "promtool is missing: `apt-get install prometheus` (tests/run.sh does) to validate the exposition with the real parser.");
        ToolResult r = await ToolRun.RunAsync(found, ["check", "metrics"], TimeSpan.FromSeconds(30), output, Encoding.UTF8.GetBytes(body));
        Assert.True(r.ExitCode == 0 && r.StandardOutput.Trim().Length == 0 && r.StandardError.Trim().Length == 0,
            $"promtool check metrics refused the exposition:\n{r}\n--- body ---\n{body}");
    }
}
