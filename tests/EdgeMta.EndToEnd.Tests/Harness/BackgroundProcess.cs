using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// A peer program that runs beside the test rather than to completion (a next hop, a client sending until
/// told to stop), optionally through a launcher that execs it (`ip netns exec NAME`, so the pid held here is
/// the program's own). Its stdout lines are kept in order and can be awaited; stderr is kept for failure
/// messages; both are written to the test output on dispose.
/// What it does not do: restart, or read stdin. How it fails: every wait is bounded (<see cref="Bound"/>) and
/// fails the test with what the program printed; disposal sends SIGTERM by pid and kills it past the bound.
/// </summary>
public sealed partial class BackgroundProcess : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly Process _process;
    private readonly ITestOutputHelper _output;
    private readonly List<string> _lines = [];
    private readonly StringBuilder _stderr = new();
    private bool _disposed;

    public string Name { get; }
    public string CommandLine { get; }
    public int ProcessId => _process.Id;
    public bool HasExited => _process.HasExited;

    private BackgroundProcess(Process process, ITestOutputHelper output, string name, string commandLine)
    {
        _process = process;
        _output = output;
        Name = name;
        CommandLine = commandLine;
    }

    public static BackgroundProcess Start(ITestOutputHelper output, string name, IReadOnlyList<string> command,
        IReadOnlyList<string>? launcher = null)
    {
        IReadOnlyList<string> all = [.. launcher ?? [], .. command];
        var start = new ProcessStartInfo(all[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string a in all.Skip(1)) start.ArgumentList.Add(a);
        var process = new Process { StartInfo = start };
        var p = new BackgroundProcess(process, output, name, string.Join(' ', all));
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (p._lines) p._lines.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (p._stderr) p._stderr.AppendLine(e.Data); };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"Cannot start {all[0]} ({e.Message}); tests/run.sh installs the peers.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return p;
    }

    /// <summary>The stdout lines so far, in order.</summary>
    public string[] Lines { get { lock (_lines) return [.. _lines]; } }

    /// <summary>Everything printed so far, for assertion messages.</summary>
    public string Transcript
    {
        get
        {
            string err;
            lock (_stderr) err = _stderr.ToString();
            return $"$ {CommandLine}\n--- stdout ---\n{string.Join('\n', Lines)}\n--- stderr ---\n{err}";
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> stdout lines satisfy <paramref name="match"/>;
    /// fails the test past <paramref name="bound"/> (default <see cref="Bound"/>) or if the program exits first.</summary>
    public async Task<string[]> WaitForLinesAsync(Func<string, bool> match, int count = 1, TimeSpan? bound = null)
    {
        TimeSpan limit = bound ?? Bound;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            string[] hits = Lines.Where(match).ToArray();
            if (hits.Length >= count) return hits;
            if (_process.HasExited || clock.Elapsed > limit)
            {
                // Exited: its last lines may still be in the pipe; read once more before failing.
                if (_process.HasExited)
                {
                    _process.WaitForExit();
                    hits = Lines.Where(match).ToArray();
                    if (hits.Length >= count) return hits;
                }
                Assert.Fail($"{Name}: waited for {count} matching line(s), saw {hits.Length} " +
                            $"({(_process.HasExited ? "it exited" : $"after {limit.TotalSeconds} s")})\n{Transcript}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until <paramref name="done"/> holds for the stdout lines so far (<paramref name="what"/> names it
    /// in the failure); fails the test past <paramref name="bound"/> or if the program exits first.</summary>
    public async Task WaitUntilAsync(Func<string[], bool> done, string what, TimeSpan bound)
    {
        var clock = Stopwatch.StartNew();
        while (!done(Lines))
        {
            if (_process.HasExited || clock.Elapsed > bound)
            {
                Assert.Fail($"{Name}: waited for {what} ({(_process.HasExited ? "it exited" : $"for {bound.TotalSeconds} s")})\n{Transcript}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Waits (bounded) for the program to end by itself; fails the test past the bound.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan? bound = null)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(bound ?? Bound);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{Name} did not exit within {(bound ?? Bound).TotalSeconds} s\n{Transcript}");
        }
        _process.WaitForExit();   // the last output events
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            await ProcessStop.TermThenKillAsync(_process, Bound);
            try { _output.WriteLine($"--- {Name} (pid {_process.Id})\n{Transcript}"); } catch (InvalidOperationException) { }
        }
        finally
        {
            _process.Dispose();
        }
    }
}
