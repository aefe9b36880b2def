using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// One running `edgemta` on 127.0.0.1 with a port the kernel picked and a fresh spool in its own temp
/// directory. Relies on the command-line contract (PROTOCOL.md): the first stdout line is
/// `listening on 127.0.0.1:PORT`; SIGTERM/SIGINT shut down gracefully and exit 0.
/// stdout and stderr are drained into <see cref="Log"/> all along and written to the test output on
/// dispose (xunit shows it for failed tests). Every wait here is bounded: a hang fails the test.
/// </summary>
public sealed partial class EdgeMtaProcess : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);
    public const int SIGINT = 2, SIGKILL = 9, SIGTERM = 15;

    private readonly Process _process;
    private readonly ITestOutputHelper _output;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<string> _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _disposed;

    public string WorkDirectory { get; }
    public string SpoolDirectory { get; }
    public int Port { get; private set; }
    public int ProcessId => _process.Id;
    public bool HasExited => _process.HasExited;
    public string CommandLine { get; }

    /// <summary>stdout and stderr so far, each line prefixed with its stream.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    private EdgeMtaProcess(Process process, ITestOutputHelper output, string work, string spool, string commandLine)
    {
        _process = process;
        _output = output;
        WorkDirectory = work;
        SpoolDirectory = spool;
        CommandLine = commandLine;
    }

    /// <summary>
    /// Starts `edgemta --listen 127.0.0.1:0 --spool &lt;fresh&gt; [flags]`. When <paramref name="recipients"/>
    /// is given it is written to a file passed as `--recipients`. <paramref name="spool"/> reuses another
    /// run's spool (a restart); the caller then owns that directory.
    /// </summary>
    /// <paramref name="openFileLimit"/> starts it under `prlimit --nofile=N:N` (util-linux), which execs it;
    /// <paramref name="launcher"/> under any other program that execs it in the same process (e.g.
    /// systemd-socket-activate), with <paramref name="listen"/> false to leave out `--listen 127.0.0.1:0`.
    public static async Task<EdgeMtaProcess> StartAsync(ITestOutputHelper output, IEnumerable<string>? flags = null, string? recipients = null,
        string? spool = null, IReadOnlyDictionary<string, string>? environment = null, int? openFileLimit = null,
        IReadOnlyList<string>? launcher = null, bool listen = true)
    {
        string binary = EdgeMtaBinary.Require();
        string work = Directory.CreateTempSubdirectory("edgemta-e2e-").FullName;
        spool ??= System.IO.Path.Combine(work, "spool");
        var start = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : openFileLimit is null ? binary : "prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = work,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (openFileLimit is int limit)
        {
            start.ArgumentList.Add($"--nofile={limit}:{limit}");
            start.ArgumentList.Add("--");
            start.ArgumentList.Add(binary);
        }
        else if (launcher is { Count: > 0 })
        {
            foreach (string a in launcher.Skip(1)) start.ArgumentList.Add(a);
            start.ArgumentList.Add(binary);
        }
        if (listen)
        {
            start.ArgumentList.Add("--listen");
            start.ArgumentList.Add("127.0.0.1:0");
        }
        start.ArgumentList.Add("--spool");
        start.ArgumentList.Add(spool);
        if (recipients is not null)
        {
            string file = System.IO.Path.Combine(work, "recipients");
            File.WriteAllText(file, recipients);
            start.ArgumentList.Add("--recipients");
            start.ArgumentList.Add(file);
        }
        foreach (string f in flags ?? []) start.ArgumentList.Add(f);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var server = new EdgeMtaProcess(process, output, work, spool, start.FileName + " " + string.Join(' ', start.ArgumentList));
        process.OutputDataReceived += (_, e) => server.OnLine("out", e.Data);
        process.ErrorDataReceived += (_, e) => server.OnLine("err", e.Data);
        process.Exited += (_, _) =>
        {
            // Exited can fire before the last output events: drain them (WaitForExit waits for EOF) first.
            try { process.WaitForExit(); } catch (InvalidOperationException) { }
            server._firstLine.TrySetException(new InvalidOperationException($"edgemta exited with code {process.ExitCode} before printing its first line"));
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        string first;
        try
        {
            first = await server._firstLine.Task.WaitAsync(StartTimeout);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            await server.DisposeAsync();
            Assert.Fail($"edgemta did not print `listening on 127.0.0.1:PORT` within {StartTimeout.TotalSeconds} s ({e.Message}).\n" +
                        $"$ {server.CommandLine}\n{server.Log}");
            throw;
        }
        Match m = ListeningLine().Match(first);
        if (!m.Success)
        {
            await server.DisposeAsync();
            Assert.Fail($"The first stdout line of edgemta should be `listening on 127.0.0.1:PORT`, it was `{first}`.\n{server.Log}");
        }
        server.Port = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return server;
    }

    [GeneratedRegex(@"^listening on 127\.0\.0\.1:(\d{1,5})\s*$")]
    private static partial Regex ListeningLine();

    private void OnLine(string stream, string? line)
    {
        if (line is null) return;
        lock (_log) _log.Append(stream).Append("| ").AppendLine(line);
        if (stream == "out") _firstLine.TrySetResult(line);
    }

    /// <summary>A new client connection that has read the 220 greeting.</summary>
    public async Task<SmtpConnection> OpenSessionAsync()
    {
        SmtpConnection c = await SmtpConnection.ConnectAsync(Port);
        await c.ExpectAsync(220);
        return c;
    }

    public Task<SmtpConnection> ConnectAsync() => SmtpConnection.ConnectAsync(Port);

    public void Signal(int signal)
    {
        if (!_process.HasExited && Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>
    /// Sends SIGTERM and waits (bounded) for the exit; past the bound the process is killed and -1 returned,
    /// so a test asserting a graceful exit (0) fails. Idempotent.
    /// </summary>
    public async Task<int> StopAsync(int signal = SIGTERM)
    {
        if (!_process.HasExited) Signal(signal);
        return await WaitForExitAsync(StopTimeout);
    }

    /// <summary>The exit code, or -1 (after a kill) when the process outlives <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return _process.ExitCode;
        }
        catch (TimeoutException)
        {
            lock (_log) _log.AppendLine($"harness| edgemta did not exit within {timeout.TotalSeconds} s; killed");
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            return -1;
        }
    }

    /// <summary>Runs `edgemta spool SUBCOMMAND --spool &lt;this spool&gt; [args]` (bounded: 60 s).</summary>
    public Task<ToolResult> RunSpoolAsync(string subcommand, params string[] args) =>
        ToolRun.RunAsync(EdgeMtaBinary.Require(), ["spool", subcommand, "--spool", SpoolDirectory, .. args], TimeSpan.FromSeconds(60), _output);

    /// <summary>
    /// Stops the server (the spool is then quiescent: no assumption that export may run beside a live
    /// server), runs `spool export` into a fresh directory and reads every message back.
    /// </summary>
    public async Task<SpoolExport> StopAndExportAsync()
    {
        await StopAsync();
        string outDir = System.IO.Path.Combine(WorkDirectory, "export-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(outDir);
        ToolResult r = await RunSpoolAsync("export", "--out", outDir);
        Assert.True(r.ExitCode == 0, $"spool export failed\n{r}");
        return SpoolExport.Read(outDir);
    }

    /// <summary>Resident set size from /proc, in bytes (Linux).</summary>
    public long ResidentBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                string kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        throw new InvalidOperationException("no VmRSS in /proc status");
    }

    /// <summary>How many of the process's threads are blocked in epoll_wait(2) (or epoll_pwait) right now, from
    /// /proc/PID/task/TID/syscall (Linux x86-64: 232, 281, 441).</summary>
    public int ThreadsInEpollWait()
    {
        int count = 0;
        foreach (string task in Directory.EnumerateDirectories($"/proc/{_process.Id}/task"))
        {
            string text;
            try { text = File.ReadAllText(System.IO.Path.Combine(task, "syscall")); }
            catch (IOException) { continue; }   // the thread ended meanwhile
            string number = text.Split(' ', 2)[0].Trim();
            if (number is "232" or "281" or "441") count++;
        }
        return count;
    }

    /// <summary>Keep the work directory (and the spool inside it) on dispose, for a restart on the same spool.</summary>
    public bool KeepWorkDirectory { get; set; }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_process.HasExited) await StopAsync();
        }
        finally
        {
            try
            {
                _output.WriteLine($"$ {CommandLine}\n{Log}[exit {(_process.HasExited ? _process.ExitCode : -1)}]");
            }
            catch (InvalidOperationException) { }
            _process.Dispose();
            if (!KeepWorkDirectory)
            {
                try { Directory.Delete(WorkDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
