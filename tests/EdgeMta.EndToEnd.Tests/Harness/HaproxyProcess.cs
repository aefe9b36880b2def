using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>One server line of a backend: `server NAME ADDR:PORT [send-proxy-v2] [check check-send-proxy]`.</summary>
/// <param name="SendProxyV2">PROXY protocol v2 header on every connection (HAProxy's `send-proxy-v2`).</param>
/// <param name="Check">Health checks every 500 ms that open a connection and, with <paramref name="SendProxyV2"/>,
/// send a v2 LOCAL header first (`check-send-proxy`, HAProxy configuration manual §5.2).</param>
public sealed record HaproxyServer(string Name, string Address, bool SendProxyV2, bool Check);

/// <summary>A `frontend NAME` bound on <paramref name="Bind"/> (ADDR:PORT) whose `default_backend` is `NAME-back`
/// balancing <paramref name="Servers"/> round robin.</summary>
public sealed record HaproxyFrontend(string Name, string Bind, IReadOnlyList<HaproxyServer> Servers);

/// <summary>One row of `show stat` (HAProxy management guide §9.1, CSV): a server's state and last check.</summary>
public sealed record HaproxyServerStat(string Backend, string Server, string Status, string CheckStatus, int CheckFailures);

/// <summary>
/// A private HAProxy (Debian `haproxy`, /usr/sbin/haproxy) for one test: its configuration is written to a
/// temp directory (a `global` section with no daemon, user, group or chroot change, a stats socket in that
/// directory, logs to stdout; `defaults` in `mode tcp` with short timeouts; the frontends the test gives),
/// checked with `haproxy -c`, then run in the foreground (`haproxy -f CFG -db`), optionally inside a network
/// namespace through a launcher that execs it (`ip netns exec NAME`). Ready once its stats socket answers.
/// stdout and stderr (its log, health-check alerts) are kept for failure messages and written to the test
/// output on dispose. Stopped by its pid: SIGTERM (HAProxy's hard stop), a kill past 10 s.
/// What it does not do: HTTP mode, TLS, or reloads. How it fails: a configuration HAProxy refuses, a start
/// that never answers on the stats socket, or any bounded wait run out fails the test with HAProxy's output.
/// </summary>
public sealed partial class HaproxyProcess : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/haproxy";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly Process _process;
    private readonly ITestOutputHelper _output;
    private readonly StringBuilder _log = new();
    private bool _disposed;

    public string Directory { get; }
    public string Configuration { get; }
    public string StatsSocket => Path.Combine(Directory, "stats.sock");
    public int ProcessId => _process.Id;

    /// <summary>HAProxy's stdout and stderr so far, each line prefixed with its stream.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    private HaproxyProcess(Process process, ITestOutputHelper output, string directory, string configuration)
    {
        _process = process;
        _output = output;
        Directory = directory;
        Configuration = configuration;
    }

    /// <summary>A loopback port free right now (the kernel's pick, released at once): HAProxy's `bind` and
    /// edgemta's `--listen-proxy` need the number before either starts.</summary>
    public static int FreeLoopbackPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>The configuration text for <paramref name="frontends"/>, stats socket at <paramref name="statsSocket"/>.</summary>
    public static string ConfigurationFor(IReadOnlyList<HaproxyFrontend> frontends, string statsSocket)
    {
        var c = new StringBuilder();
        // No `daemon`, `user`, `group` or `chroot`: it stays the test's own foreground process (-db).
        c.Append("global\n");
        c.Append("    log stdout format raw local0 info\n");
        c.Append($"    stats socket {statsSocket} mode 600 level admin\n");
        c.Append("defaults\n");
        c.Append("    mode tcp\n    log global\n    option tcplog\n");
        // Short timeouts: every test wait is bounded at 10 s, so HAProxy must give up well before that.
        c.Append("    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout check 1s\n");
        // A refused connect (a node stopped) is tried again on another server: `retries` counts the attempts,
        // `option redispatch` lets the last one go elsewhere (configuration manual §4.2).
        c.Append("    retries 2\n    option redispatch\n");
        foreach (HaproxyFrontend f in frontends)
        {
            c.Append($"frontend {f.Name}\n    bind {f.Bind}\n    default_backend {f.Name}-back\n");
            c.Append($"backend {f.Name}-back\n    balance roundrobin\n");
            foreach (HaproxyServer s in f.Servers)
            {
                c.Append($"    server {s.Name} {s.Address}");
                if (s.SendProxyV2) c.Append(" send-proxy-v2");
                if (s.Check) c.Append(s.SendProxyV2 ? " check check-send-proxy" : " check").Append(" inter 500ms fall 2 rise 2");
                c.Append('\n');
            }
        }
        return c.ToString();
    }

    /// <summary>
    /// Writes the configuration, checks it (`haproxy -c`), starts HAProxy in the foreground and waits (bounded)
    /// until its stats socket answers. <paramref name="launcher"/> (e.g. <see cref="NetworkNamespaces.Exec"/>)
    /// must exec HAProxy in its own process, so that the pid held here is HAProxy's.
    /// </summary>
    public static async Task<HaproxyProcess> StartAsync(ITestOutputHelper output, IReadOnlyList<HaproxyFrontend> frontends,
        IReadOnlyList<string>? launcher = null)
    {
        if (!File.Exists(Binary)) Assert.Fail($"{Binary} is missing (Debian package haproxy; tests/run.sh installs it).");
        string dir = System.IO.Directory.CreateTempSubdirectory("edgemta-haproxy-").FullName;
        string cfg = Path.Combine(dir, "haproxy.cfg");
        string text = ConfigurationFor(frontends, Path.Combine(dir, "stats.sock"));
        await File.WriteAllTextAsync(cfg, text);
        ToolResult check = await ToolRun.RunAsync(Binary, ["-c", "-f", cfg], Bound);
        Assert.True(check.ExitCode == 0, $"HAProxy refused its configuration\n{text}\n{check}");

        var start = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dir,
        };
        foreach (string a in launcher?.Skip(1) ?? []) start.ArgumentList.Add(a);
        if (launcher is { Count: > 0 }) start.ArgumentList.Add(Binary);
        start.ArgumentList.Add("-f");
        start.ArgumentList.Add(cfg);
        start.ArgumentList.Add("-db");

        var process = new Process { StartInfo = start };
        var haproxy = new HaproxyProcess(process, output, dir, text);
        process.OutputDataReceived += (_, e) => haproxy.OnLine("out", e.Data);
        process.ErrorDataReceived += (_, e) => haproxy.OnLine("err", e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await haproxy.DisposeAsync();
                Assert.Fail($"HAProxy exited at start\n{text}\n{haproxy.Log}");
            }
            if (await haproxy.TryCommandAsync("show info") is { Length: > 0 }) return haproxy;
            if (clock.Elapsed > Bound)
            {
                await haproxy.DisposeAsync();
                Assert.Fail($"HAProxy's stats socket did not answer within {Bound.TotalSeconds} s\n{text}\n{haproxy.Log}");
            }
            await Task.Delay(50);
        }
    }

    private void OnLine(string stream, string? line)
    {
        if (line is null) return;
        lock (_log) _log.Append(stream).Append("| ").AppendLine(line);
    }

    /// <summary>One command on the stats socket (management guide §9.3): its whole answer, or null when the
    /// socket is not there or refuses. The socket is a path, so it answers whatever namespace HAProxy runs in.</summary>
    public async Task<string?> TryCommandAsync(string command)
    {
        if (!File.Exists(StatsSocket)) return null;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var deadline = new CancellationTokenSource(Bound);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(StatsSocket), deadline.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"), SocketFlags.None, deadline.Token);
            var answer = new MemoryStream();
            var buffer = new byte[16 * 1024];
            int n;
            // Without `prompt`, HAProxy answers one command and closes the connection.
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0) answer.Write(buffer, 0, n);
            return Encoding.UTF8.GetString(answer.ToArray());
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>Every server row of `show stat` (the CSV's FRONTEND and BACKEND rows left out).</summary>
    public async Task<List<HaproxyServerStat>> ServerStatsAsync()
    {
        string csv = await TryCommandAsync("show stat") ?? "";
        string[] lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0 && lines[0].StartsWith("# ", StringComparison.Ordinal), $"`show stat` answered\n{csv}\n{Log}");
        List<string> header = [.. lines[0][2..].Split(',')];
        int px = header.IndexOf("pxname"), sv = header.IndexOf("svname"), status = header.IndexOf("status"),
            checkStatus = header.IndexOf("check_status"), chkfail = header.IndexOf("chkfail");
        var rows = new List<HaproxyServerStat>();
        foreach (string line in lines.Skip(1))
        {
            string[] f = line.Split(',');
            if (f.Length < header.Count - 1 || f[sv] is "FRONTEND" or "BACKEND") continue;
            rows.Add(new HaproxyServerStat(f[px], f[sv], f[status], f[checkStatus].TrimStart('*', ' '),
                int.TryParse(f[chkfail], out int failures) ? failures : 0));
        }
        return rows;
    }

    /// <summary>Waits (bounded) until <paramref name="backend"/>/<paramref name="server"/> reports
    /// <paramref name="status"/> (`UP`, `DOWN`) after a finished check whose result is <paramref name="checkStatus"/>
    /// (`L4OK` connected, `L4CON` refused, `L4TOUT` timed out); fails the test with the stats and log.
    /// HAProxy counts a checked server UP from the start, before any check: only the check status proves one ran.</summary>
    public async Task<HaproxyServerStat> WaitForServerAsync(string backend, string server, string status, string checkStatus)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            List<HaproxyServerStat> rows = await ServerStatsAsync();
            HaproxyServerStat? row = rows.Find(r => r.Backend == backend && r.Server == server);
            // `* L4OK`: the asterisk marks a check still in progress (management guide §9.1, check_status);
            // the status of the last finished one is what counts.
            if (row is not null && row.Status == status && row.CheckStatus == checkStatus) return row;
            if (clock.Elapsed > Bound)
            {
                Assert.Fail($"HAProxy did not report {backend}/{server} {status} within {Bound.TotalSeconds} s: " +
                            $"{string.Join("; ", rows)}\n{Log}");
            }
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (await ProcessStop.TermThenKillAsync(_process, Bound))
            {
                lock (_log) _log.AppendLine($"harness| HAProxy did not exit within {Bound.TotalSeconds} s of SIGTERM; killed");
            }
            try { _output.WriteLine($"--- HAProxy (pid {_process.Id})\n{Configuration}\n{Log}"); } catch (InvalidOperationException) { }
        }
        finally
        {
            _process.Dispose();
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
