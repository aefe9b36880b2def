using System.CommandLine;
using System.Globalization;
using System.Net;
using EdgeMta.LoadTests;

// edgemta-load: an SMTP load generator with NBomber-style scenarios and reports (README, "Performance work").
// It counts a message as delivered only on 250 after the end-of-data dot, and files every other ending
// under the step and reply code where it failed, so a server that drops or refuses mail cannot look fast.
// Exit status: 0 every attempted message delivered, 1 some failed, 2 bad command line.

// Socket completions run inline on the epoll thread (see docs/PERF-NOTES.md: 80 instead of 249
// µs of CPU per message for a sink); the client's continuations never block, so this is safe here.
// Must be set before the first socket is created; --thread-pool-completions turns it off.
if (Array.IndexOf(args, "--thread-pool-completions") < 0
    && Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

var target = new Option<string>("--target", "-t") { Description = "server ADDR:PORT", DefaultValueFactory = _ => "127.0.0.1:2525" };
var sessions = new Option<int?>("--sessions", "-s") { Description = "concurrent SMTP sessions (default 10)" };
var messages = new Option<long?>("--messages", "-m") { Description = "messages to attempt (default 1000, or unbounded with --duration)" };
var duration = new Option<string?>("--duration") { Description = "stop starting messages after this long: 30s, 2m" };
var rate = new Option<double?>("--rate") { Description = "steady rate, msg/s across all sessions (default: as fast as answered)" };
var ramp = new Option<string?>("--ramp") { Description = "FROM:TO msg/s, linear over --duration" };
var burst = new Option<string?>("--burst") { Description = "SIZE/PERIOD: SIZE messages due together every PERIOD, e.g. 2000/2s" };
var size = new Option<string?>("--size", "-l") { Description = "message size in bytes, headers included (k/m suffixes; default 1024)" };
var sizeMix = new Option<string?>("--size-mix") { Description = "SIZE:WEIGHT,... e.g. 1024:80,65536:20" };
var perMessage = new Option<bool>("--per-message-connections") { Description = "connect, send one message, QUIT, for every message" };
var pipelining = new Option<bool>("--pipelining") { Description = "send MAIL, RCPT, DATA as one group (RFC 2920) when the server advertises PIPELINING" };
var reportDir = new Option<string?>("--report-dir", "-o") { Description = "write report.txt/.md/.html and CSVs here" };
var scenario = new Option<string?>("--scenario") { Description = "a preset (see --list-scenarios) or a name for the reports" };
var listScenarios = new Option<bool>("--list-scenarios") { Description = "print the preset scenarios and exit" };
var timeout = new Option<string>("--timeout") { Description = "per reply/connect timeout", DefaultValueFactory = _ => "30s" };
var interval = new Option<string>("--interval") { Description = "timeline bucket width", DefaultValueFactory = _ => "1s" };
var from = new Option<string>("--from") { Description = "MAIL FROM address", DefaultValueFactory = _ => "load@edgemta.test" };
var to = new Option<string>("--to") { Description = "RCPT TO address", DefaultValueFactory = _ => "sink@example.com" };
var helo = new Option<string>("--helo") { Description = "EHLO name", DefaultValueFactory = _ => "load.edgemta.test" };
var quiet = new Option<bool>("--quiet", "-q") { Description = "no progress lines on stderr" };
var csvSummary = new Option<bool>("--csv-summary") { Description = "print summary.csv on stdout instead of the text report" };
var threadPool = new Option<bool>("--thread-pool-completions") { Description = "dispatch socket completions to the thread pool (default: inline)" };
var slowClients = new Option<int>("--slow-clients") { Description = "first open N slow clients (greeting read, then one byte every --slow-interval, never a line end) and keep them during the run" };
var slowInterval = new Option<string>("--slow-interval") { Description = "time between a slow client's bytes", DefaultValueFactory = _ => "20s" };
var slowSettle = new Option<string>("--slow-settle") { Description = "wait this long after the slow clients connected before the real clients start", DefaultValueFactory = _ => "0s" };
var slowSources = new Option<int>("--slow-sources") { Description = "spread slow clients over 127.0.0.2 and up, this many addresses (loopback targets)", DefaultValueFactory = _ => 16 };
var proxy = new Option<string?>("--proxy") { Description = "v1|v2: send a PROXY header first on every connection (client 203.0.113.x, a new one per connection)" };

var root = new RootCommand("edgemta-load: SMTP load generator with scenarios, per-step latency and reply-code checks")
{
    target, sessions, messages, duration, rate, ramp, burst, size, sizeMix, perMessage, pipelining, reportDir,
    scenario, listScenarios, timeout, interval, from, to, helo, quiet, csvSummary, threadPool,
    slowClients, slowInterval, slowSources, slowSettle, proxy,
};

root.SetAction(async (parse, cancel) =>
{
    if (parse.GetValue(listScenarios))
    {
        foreach (Scenarios.Preset p in Scenarios.All) Console.WriteLine($"{p.Name,-11} {p.What}");
        return 0;
    }
    string? error = null;
    void Fail(string e) => error ??= e;

    Scenarios.Preset? preset = Scenarios.Find(parse.GetValue(scenario));
    if (!LoadOptions.TryParseEndPoint(parse.GetValue(target)!, out IPEndPoint? endPoint)) Fail($"--target '{parse.GetValue(target)}': expected ADDR:PORT");

    TimeSpan? runFor = null;
    string? durationText = parse.GetValue(duration) ?? preset?.Duration;
    if (durationText is not null)
    {
        if (Durations.TryParse(durationText, out TimeSpan d) && d > TimeSpan.Zero) runFor = d;
        else Fail($"--duration '{durationText}': expected e.g. 30s, 2m");
    }
    if (!Durations.TryParse(parse.GetValue(timeout)!, out TimeSpan replyTimeout) || replyTimeout <= TimeSpan.Zero) Fail("--timeout: expected e.g. 30s");
    if (!Durations.TryParse(parse.GetValue(interval)!, out TimeSpan bucket) || bucket < TimeSpan.FromMilliseconds(10)) Fail("--interval: expected e.g. 1s (at least 10ms)");

    // Load shape: the explicit option wins over the preset; only one of rate/ramp/burst.
    string? rampText = parse.GetValue(ramp);
    string? burstText = parse.GetValue(burst);
    double? rateValue = parse.GetValue(rate);
    int given = (rampText is null ? 0 : 1) + (burstText is null ? 0 : 1) + (rateValue is null ? 0 : 1);
    if (given > 1) Fail("give only one of --rate, --ramp, --burst");
    if (given == 0 && preset is not null) { rampText = preset.Ramp; burstText = preset.Burst; rateValue = preset.Rate; }
    LoadShape shape = new LoadShape.Closed();
    if (rampText is not null)
    {
        if (LoadShape.TryParseRamp(rampText, runFor?.TotalSeconds ?? 0, out LoadShape? s, out string e)) shape = s!; else Fail(e);
    }
    else if (burstText is not null)
    {
        if (LoadShape.TryParseBurst(burstText, out LoadShape? s, out string e)) shape = s!; else Fail(e);
    }
    else if (rateValue is double r)
    {
        if (r > 0) shape = new LoadShape.Steady(r); else Fail("--rate must be above 0");
    }

    SizeMix mix = SizeMix.Single(1024);
    string? mixText = parse.GetValue(sizeMix) ?? (parse.GetValue(size) is null ? preset?.SizeMix : null);
    string sizeText = parse.GetValue(size) ?? preset?.Size ?? "1024";
    if (mixText is not null)
    {
        if (SizeMix.TryParse(mixText, out SizeMix? m, out string e)) mix = m!; else Fail(e);
    }
    else if (SizeMix.TryParseSize(sizeText, out int bytes)) mix = SizeMix.Single(bytes);
    else Fail($"--size '{sizeText}': expected {MessageBody.MinimumSize} to 256m bytes");

    int sessionCount = parse.GetValue(sessions) ?? preset?.Sessions ?? 10;
    if (sessionCount is < 1 or > 100_000) Fail("--sessions: 1 to 100000");
    long? count = parse.GetValue(messages) ?? preset?.Messages;
    if (count is <= 0) Fail("--messages must be above 0");

    int slowCount = parse.GetValue(slowClients);
    if (slowCount is < 0 or > 200_000) Fail("--slow-clients: 0 to 200000");
    if (!Durations.TryParse(parse.GetValue(slowInterval)!, out TimeSpan slowEvery) || slowEvery < TimeSpan.FromMilliseconds(100)) Fail("--slow-interval: expected e.g. 20s (at least 100ms)");
    if (parse.GetValue(slowSources) is < 1 or > 250) Fail("--slow-sources: 1 to 250");
    if (!Durations.TryParse(parse.GetValue(slowSettle)!, out TimeSpan settle) || settle < TimeSpan.Zero) Fail("--slow-settle: expected e.g. 15s");

    ProxyVersion proxyVersion = parse.GetValue(proxy) switch
    {
        null => ProxyVersion.None,
        "v1" => ProxyVersion.V1,
        "v2" => ProxyVersion.V2,
        string other => FailProxy($"--proxy '{other}': expected v1 or v2"),
    };
    ProxyVersion FailProxy(string e) { Fail(e); return ProxyVersion.None; }

    if (error is not null)
    {
        Console.Error.WriteLine("edgemta-load: " + error);
        return 2;
    }

    var options = new LoadOptions
    {
        Scenario = parse.GetValue(scenario) ?? "custom",
        Target = endPoint!,
        Sessions = sessionCount,
        Messages = runFor is not null && parse.GetValue(messages) is null ? null : count,
        Duration = runFor,
        Shape = shape,
        Sizes = mix,
        PerMessageConnections = parse.GetValue(perMessage) || (preset?.PerMessage ?? false),
        Pipelining = parse.GetValue(pipelining) || (preset?.Pipelining ?? false),
        Timeout = replyTimeout,
        Interval = bucket,
        From = parse.GetValue(from)!,
        To = parse.GetValue(to)!,
        Helo = parse.GetValue(helo)!,
        ReportDir = parse.GetValue(reportDir),
        Quiet = parse.GetValue(quiet) || parse.GetValue(csvSummary),
        Proxy = proxyVersion,
    };

    // The slow clients take their slots first and keep trickling while the real clients run (docs/SCREENING.md).
    await using SlowClientSwarm? swarm = slowCount == 0 ? null : new SlowClientSwarm(endPoint!, slowCount, slowEvery, parse.GetValue(slowSources));
    if (swarm is not null)
    {
        await swarm.ConnectAsync(TimeSpan.FromMinutes(5), options.Quiet);
        if (settle > TimeSpan.Zero) await Task.Delay(settle, cancel);
    }
    RunResult result = await new LoadRun(options).RunAsync(cancel);
    if (options.ReportDir is not null) Reports.WriteAll(result, options.ReportDir);
    Console.Write(parse.GetValue(csvSummary) ? Reports.SummaryCsv(result) : Reports.Text(result));
    if (swarm is not null)
    {
        Console.Error.WriteLine(swarm.Describe());
        if (options.ReportDir is not null) File.WriteAllText(Path.Combine(options.ReportDir, "slow-clients.txt"), swarm.Describe() + "\n");
    }
    if (options.ReportDir is not null && !parse.GetValue(csvSummary))
        Console.WriteLine("reports in " + Path.GetFullPath(options.ReportDir) + " (report.html has the charts)");
    return result.Metrics.Failed == 0 && result.Attempted > 0 ? 0 : 1;
});

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
return await root.Parse(args).InvokeAsync();
