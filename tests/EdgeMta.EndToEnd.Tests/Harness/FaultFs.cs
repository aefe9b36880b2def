using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// A faultfs mount (tests/faultfs/faultfs.py: a FUSE passthrough that fails or stalls storage calls on
/// command) for one test class: a temp directory holding the backing directory, the mount point and the
/// control socket. Each test puts a fresh spool under it (<see cref="NewSpool"/>) and drives the fault with
/// <see cref="SetModeAsync"/>, which returns once faultfs acknowledged the mode, so the mode is in force
/// before the test goes on. Disposal puts the mode back to ok, unmounts with `fusermount3 -u` and stops the
/// Python process by its pid (a kill past 10 s). Every wait is bounded: a mount that never comes up fails
/// the class, it never hangs it. Not used when <see cref="Unavailable"/> says why the machine cannot mount.
/// </summary>
public sealed partial class FaultFsMount : IAsyncLifetime
{
    public const string Python = "/usr/bin/python3";            // Debian's: python3-fusepy lives in its dist-packages
    private const string FusePy = "/usr/lib/python3/dist-packages/fusepy.py";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private Process? _process;
    private readonly StringBuilder _log = new();

    public string Root { get; private set; } = "";
    public string Backing => Path.Combine(Root, "backing");
    public string MountPoint => Path.Combine(Root, "mnt");
    public string ControlSocket => Path.Combine(Root, "control.sock");

    /// <summary>faultfs.py's stderr so far (fusepy logs failed calls there), for assertion messages.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>Why faultfs cannot run here, or null. tests/run.sh installs fuse3 and python3-fusepy; libfuse 2.9
    /// (fusepy's) mounts directly only as root, and there is no fusermount (v2) to do it for anyone else.</summary>
    public static string? Unavailable
    {
        get
        {
            if (!File.Exists("/dev/fuse")) return "no /dev/fuse (FUSE not available in this kernel or container)";
            if (!File.Exists("/usr/bin/fusermount3") && !File.Exists("/bin/fusermount3")) return "no fusermount3 (Debian package fuse3)";
            if (!File.Exists(Python) || !File.Exists(FusePy)) return $"no {FusePy} for {Python} (Debian package python3-fusepy)";
            if (GetEuid() != 0) return "not root: libfuse 2.9 mounts directly only as root";
            return null;
        }
    }

    public static string Script => Path.Combine(EdgeMtaBinary.RepositoryRoot, "tests", "faultfs", "faultfs.py");

    public async Task InitializeAsync()
    {
        if (Unavailable is not null) return;
        Root = Directory.CreateTempSubdirectory("edgemta-faultfs-").FullName;
        Directory.CreateDirectory(Backing);
        Directory.CreateDirectory(MountPoint);
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])[Script, Backing, MountPoint, ControlSocket]) start.ArgumentList.Add(a);
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        // The control socket is opened from FUSE's init callback: once it answers, the mount is live.
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (File.Exists(ControlSocket) && await TryCommandAsync("ping") == "pong") return;
            if (_process.HasExited || clock.Elapsed > Bound)
            {
                string why = _process.HasExited ? $"exited with code {_process.ExitCode}" : $"no answer within {Bound.TotalSeconds} s";
                await DisposeAsync();
                Assert.Fail($"faultfs did not come up ({why})\n{Log}");
            }
            await Task.Delay(50);
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    /// <summary>A fresh spool directory inside the mount (made by the server), and its twin in the backing directory.</summary>
    public (string Spool, string Backing) NewSpool()
    {
        string name = "spool-" + Guid.NewGuid().ToString("N")[..8];
        return (Path.Combine(MountPoint, name), Path.Combine(Backing, name));
    }

    /// <summary>Puts faultfs in <paramref name="mode"/> (ok, stall, eio-write, eio-fsync, enospc, erofs) and waits for
    /// the acknowledgement: every storage call that starts after this returns obeys the mode.</summary>
    public async Task SetModeAsync(string mode)
    {
        string? reply = await TryCommandAsync("mode " + mode);
        Assert.True(reply == "ok " + mode, $"faultfs did not acknowledge `mode {mode}`: `{reply}`\n{Log}");
    }

    /// <summary>faultfs's counters: creates, unlinks, writes, write_bytes, fsyncs, fallocates, punches, faults,
    /// stalled (calls blocked right now), and the mode.</summary>
    public async Task<IReadOnlyDictionary<string, string>> StatsAsync()
    {
        string? reply = await TryCommandAsync("stats");
        Assert.True(reply is not null && reply.Contains("mode=", StringComparison.Ordinal), $"faultfs `stats` answered `{reply}`\n{Log}");
        return reply!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
    }

    public async Task<long> CounterAsync(string name) => long.Parse((await StatsAsync())[name], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>One command, one reply line, each way bounded; null when faultfs does not answer.</summary>
    private async Task<string?> TryCommandAsync(string command)
    {
        using var cts = new CancellationTokenSource(Bound);
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(ControlSocket), cts.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"), SocketFlags.None, cts.Token);
            var reply = new List<byte>();
            var buffer = new byte[4096];
            while (!reply.Contains((byte)'\n'))
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0) break;
                reply.AddRange(buffer.AsSpan(0, n).ToArray());
            }
            return Encoding.ASCII.GetString([.. reply]).Trim();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Allocated bytes (st_blocks × 512, what `du -B1` sums) of the files under <paramref name="directory"/>
    /// in the backing directory: what the spool costs the real disk, holes not counted.</summary>
    public static async Task<long> AllocatedBytesAsync(string directory, ITestOutputHelper? output = null)
    {
        ToolResult du = await ToolRun.RunAsync("du", ["-s", "-B1", directory], Bound, output);
        Assert.True(du.ExitCode == 0, $"du failed\n{du}");
        return long.Parse(du.StandardOutput.Split('\t', 2)[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task DisposeAsync()
    {
        if (_process is null) return;
        Process p = _process;
        _process = null;
        if (!p.HasExited)
        {
            await TryCommandAsync("mode ok");   // release anything still stalled, so the unmount is not refused as busy
            await ToolRun.RunAsync("fusermount3", ["-u", MountPoint], Bound);
            try
            {
                await p.WaitForExitAsync().WaitAsync(Bound);
            }
            catch (TimeoutException)
            {
                Kill(p.Id, 9);   // aborts the FUSE connection; the kernel then lets the mount point go
                await p.WaitForExitAsync().WaitAsync(Bound);
                await ToolRun.RunAsync("fusermount3", ["-u", "-z", MountPoint], Bound);
            }
        }
        p.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}

/// <summary>A fact that needs a faultfs mount: skipped, with the reason, where the machine cannot mount FUSE.
/// On CI (tests/run.sh installs fuse3 and python3-fusepy, and runs as root) it always runs.</summary>
public sealed class FaultFsFactAttribute : FactAttribute
{
    public FaultFsFactAttribute()
    {
        if (FaultFsMount.Unavailable is string why) Skip = "faultfs cannot mount here: " + why;
    }
}
