// The real rspamd (Debian's /usr/bin/rspamd), started once per test class (IClassFixture) for docs/SCREENING.md's
// content check. It reaches for the internet at start (maps.rspamd.com, fuzzy servers, RBLs), so it runs inside
// `unshare -n` with only loopback up: nothing leaves the machine, and every lookup fails at once instead of
// waiting. Its configuration is Debian's /etc/rspamd/rspamd.conf with a private LOCAL_CONFDIR, RUNDIR, DBDIR and
// LOGDIR in a temporary directory (never /etc/rspamd): one normal worker on 127.0.0.1:11333 and one local rule,
// a multimap on the Subject that forces `reject` with a message of its own, so a test can make one message rspamd
// rejects and one it accepts.
// Who talks to it: only processes in its network namespace. A test starts edgemta (and its SMTP client) with
// Launcher, `nsenter --net=/proc/PID/ns/net`, which execs them there; the namespace lives as long as rspamd.
// Waits: `GET /ping` until "pong", bounded by ReadyTimeout (it takes about 20 s alone, over a minute on a loaded
// 2-core machine while it compiles its regular expressions); stopped by its pid (SIGTERM, then SIGKILL).
using System.Diagnostics;

namespace EdgeMta.EndToEnd.Tests.Harness;

public sealed class RspamdServer : IAsyncLifetime
{
    public const string Binary = "/usr/bin/rspamd";
    public const string RejectSubject = "edgemta-reject-me";
    public const string RejectMessage = "Rejected by the edgemta test rule";
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(180);

    private Process? _process;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("edgemta-rspamd-").FullName;

    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("rspamd is not running");

    /// <summary>Prefix for a command that must run in rspamd's network namespace (it execs the command).</summary>
    public IReadOnlyList<string> Launcher => ["nsenter", $"--net=/proc/{ProcessId}/ns/net"];

    public string Url => "http://127.0.0.1:11333";

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(Binary), "rspamd is not installed (tests/run.sh installs it: apt-get install --no-install-recommends rspamd)");
        string d = Directory;
        foreach (string sub in (string[])["local.d", "run", "db", "log"]) System.IO.Directory.CreateDirectory(Path.Combine(d, sub));
        File.WriteAllText(Path.Combine(d, "reject-subjects.map"), $"/{RejectSubject}/\n");
        File.WriteAllText(Path.Combine(d, "local.d", "multimap.conf"), $$"""
            EDGEMTA_TEST_REJECT {
              type = "header";
              header = "Subject";
              regexp = true;
              map = "${LOCAL_CONFDIR}/reject-subjects.map";
              action = "reject";
              message = "{{RejectMessage}}";
              score = 0.0;
            }
            """);
        File.WriteAllText(Path.Combine(d, "local.d", "worker-normal.inc"), "bind_socket = \"127.0.0.1:11333\";\ncount = 1;\n");
        File.WriteAllText(Path.Combine(d, "local.d", "worker-controller.inc"), "bind_socket = \"127.0.0.1:11334\";\ncount = 1;\n");
        File.WriteAllText(Path.Combine(d, "local.d", "worker-proxy.inc"), "bind_socket = \"127.0.0.1:11332\";\ncount = 1;\n");
        File.WriteAllText(Path.Combine(d, "local.d", "logging.inc"), $"type = \"file\";\nfilename = \"{d}/log/rspamd.log\";\nlevel = \"warning\";\n");

        // unshare and bash both exec: the pid started is rspamd's main process, in the new namespace.
        var start = new ProcessStartInfo("unshare") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["-n", "bash", "-c",
                     $"ip link set lo up && exec {Binary} -f -i -u root -g root -c /etc/rspamd/rspamd.conf --var LOCAL_CONFDIR={d} --var RUNDIR={d}/run --var DBDIR={d}/db --var LOGDIR={d}/log"])
        {
            start.ArgumentList.Add(a);
        }
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < ReadyTimeout)
        {
            Assert.False(_process.HasExited, $"rspamd exited with {(_process.HasExited ? _process.ExitCode : 0)}: {Tail()}");
            ToolResult ping = await ToolRun.RunAsync("nsenter", [$"--net=/proc/{_process.Id}/ns/net", "curl", "-s", "-m", "2", Url + "/ping"],
                TimeSpan.FromSeconds(10), output: null);
            if (ping.StandardOutput.Contains("pong", StringComparison.Ordinal)) return;
            await Task.Delay(500);
        }
        Assert.Fail($"rspamd did not answer /ping within {ReadyTimeout.TotalSeconds} s: {Tail()}");
    }

    private string Tail()
    {
        string log = Path.Combine(Directory, "log", "rspamd.log");
        return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(10)) : "(no log)";
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false } p)
        {
            await ToolRun.RunAsync("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5), output: null);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await p.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
            }
        }
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // a worker still closing its log: a leftover temporary directory is not worth failing over
        }
    }
}
