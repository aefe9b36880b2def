using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// edgemta under systemd, as far as a container without systemd as PID 1 allows: sd_notify datagrams
/// against a real Unix datagram socket (READY=1 once listening, WATCHDOG=1 at half WATCHDOG_USEC,
/// STOPPING=1 at SIGTERM), a NOTIFY_SOCKET that does not exist, socket activation through
/// systemd-socket-activate (which needs no running systemd), and the shipped unit files through
/// `systemd-analyze verify` and `systemd-analyze security --offline`. docs/PROTOCOL.md "Operations".
/// </summary>
public sealed partial class SystemdTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadyComesOnceTheListenerAcceptsAndStoppingAtSigterm(bool abstractSocket)
    {
        using var systemd = new NotifySocket(abstractSocket);
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            environment: new Dictionary<string, string> { ["NOTIFY_SOCKET"] = systemd.Address });

        string? ready = await systemd.ReceiveAsync();
        Assert.True(ready is not null, $"no READY=1 on {systemd.Address}\n{server.Log}");
        Assert.StartsWith("READY=1\nSTATUS=", ready, StringComparison.Ordinal);
        Assert.Contains($"serving SMTP on 127.0.0.1:{server.Port}", ready, StringComparison.Ordinal);
        // Ready means ready: a client connecting the moment READY=1 arrives is greeted.
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("QUIT", 221);
        }

        server.Signal(EdgeMtaProcess.SIGTERM);
        string? stopping = await systemd.ReceiveAsync();
        Assert.True(stopping is not null, $"no STOPPING=1 after SIGTERM\n{server.Log}");
        Assert.StartsWith("STOPPING=1\n", stopping, StringComparison.Ordinal);
        Assert.Equal(0, await server.WaitForExitAsync(EdgeMtaProcess.StopTimeout));
        Assert.DoesNotContain("NOTIFY_SOCKET", server.Log, StringComparison.Ordinal);
        Assert.Equal(2, systemd.Received.Count);
    }

    [Fact]
    public async Task ReadyReportsTheMessagesTheSpoolRecovered()
    {
        string spool;
        await using (EdgeMtaProcess first = await EdgeMtaProcess.StartAsync(output))
        {
            first.KeepWorkDirectory = true;
            spool = first.SpoolDirectory;
            await SendOneAsync(first.Port);
        }
        try
        {
            using var systemd = new NotifySocket();
            await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, spool: spool,
                environment: new Dictionary<string, string> { ["NOTIFY_SOCKET"] = systemd.Address });
            string? ready = await systemd.ReceiveAsync();
            Assert.True(ready is not null, server.Log);
            Assert.EndsWith("spool recovered (messages=1)", ready, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(spool)!, recursive: true);
        }
    }

    [Fact]
    public async Task WatchdogPingsComeRepeatedlyAtHalfTheInterval()
    {
        using var systemd = new NotifySocket(isAbstract: true);
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, environment: new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = systemd.Address,
            ["WATCHDOG_USEC"] = "200000",
        });
        Assert.StartsWith("READY=1\n", await systemd.ReceiveAsync() ?? "(none)", StringComparison.Ordinal);
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 10; i++)
        {
            string? ping = await systemd.ReceiveAsync();
            Assert.True(ping == "WATCHDOG=1", $"ping {i}: {ping ?? "none within the timeout"}\n{server.Log}");
        }
        // Ten pings at 100 ms take about 0.9 s; a watchdog that waited the whole 200 ms would need 1.8 s or more.
        output.WriteLine($"10 pings in {started.ElapsedMilliseconds} ms");
        server.Signal(EdgeMtaProcess.SIGTERM);
        // Pings end at STOPPING=1 (one may already be on its way).
        string? next;
        while ((next = await systemd.ReceiveAsync()) == "WATCHDOG=1") { }
        Assert.StartsWith("STOPPING=1\n", next ?? "(none)", StringComparison.Ordinal);
        Assert.Equal(0, await server.WaitForExitAsync(EdgeMtaProcess.StopTimeout));
        Assert.DoesNotContain("silent", server.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WatchdogVariablesForAnotherProcessAreIgnored()
    {
        using var systemd = new NotifySocket();
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, environment: new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = systemd.Address,
            ["WATCHDOG_USEC"] = "200000",
            ["WATCHDOG_PID"] = "1",
        });
        Assert.StartsWith("READY=1\n", await systemd.ReceiveAsync() ?? "(none)", StringComparison.Ordinal);
        server.Signal(EdgeMtaProcess.SIGTERM);
        // The very next datagram is STOPPING=1: with pings on, the first goes out right after READY=1.
        Assert.StartsWith("STOPPING=1\n", await systemd.ReceiveAsync() ?? "(none)", StringComparison.Ordinal);
        Assert.Equal(0, await server.WaitForExitAsync(EdgeMtaProcess.StopTimeout));
    }

    [Fact]
    public async Task ANotifySocketThatDoesNotExistIsOneWarningAndTheServerServes()
    {
        string missing = Path.Combine(Path.GetTempPath(), "edgemta-no-such-dir-" + Guid.NewGuid().ToString("N"), "notify");
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, environment: new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = missing,
            ["WATCHDOG_USEC"] = "200000", // every ping fails too: still one line
        });
        await SendOneAsync(server.Port);
        await Task.Delay(500); // a few failed pings at 100 ms, to show they add no lines
        SpoolExport export = await server.StopAndExportAsync();

        Assert.Equal(1, export.Count);
        string[] warnings = server.Log.Split('\n').Where(l => l.Contains("NOTIFY_SOCKET", StringComparison.Ordinal)).ToArray();
        string warning = Assert.Single(warnings);
        Assert.Equal($"err| edgemta: warning: cannot notify systemd at NOTIFY_SOCKET={missing} (no such socket); serving on without it", warning.TrimEnd());
    }

    [Fact]
    public async Task SocketActivationServesTheSocketNamedSmtpAndClosesOthers()
    {
        RequireTool("systemd-socket-activate");
        (int smtpPort, int otherPort) = (FreePort(), FreePort());
        Task<EdgeMtaProcess> starting = EdgeMtaProcess.StartAsync(output, listen: false, launcher:
            ["systemd-socket-activate", "-l", $"127.0.0.1:{smtpPort}", "-l", $"127.0.0.1:{otherPort}", "--fdname=smtp:submission"]);

        // systemd-socket-activate listens, and execs edgemta at the first connection; the kernel completes
        // this one in the backlog, and edgemta greets it once it has adopted the socket.
        Socket client = await ConnectWhenListeningAsync(smtpPort, starting);
        await using EdgeMtaProcess server = await starting;
        Assert.Equal(smtpPort, server.Port);
        await using (SmtpConnection c = SmtpConnection.Over(client))
        {
            await c.ExpectAsync(220);
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("MAIL FROM:<a@example.com>", 250);
            await c.CommandAsync("RCPT TO:<b@example.org>", 250);
            await c.CommandAsync("DATA", 354);
            await c.CommandAsync("Subject: activated\r\n\r\nthrough a socket systemd bound\r\n.", 250);
            await c.CommandAsync("QUIT", 221);
        }

        // The only listener is the handed-over one: no --listen, and not the default 127.0.0.1:2525 either.
        Assert.Single(ListeningLines().Matches(server.Log));
        Assert.Contains("the socket named 'submission' from systemd is not one edgemta serves", server.Log, StringComparison.Ordinal);
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        SocketException refused = await Assert.ThrowsAsync<SocketException>(
            () => other.ConnectAsync(new IPEndPoint(IPAddress.Loopback, otherPort)).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(1, export.Count);
    }

    [Fact]
    public async Task TheUnitFilesPassSystemdAnalyzeVerify()
    {
        RequireTool("systemd-analyze");
        string units = Directory.CreateTempSubdirectory("edgemta-units-").FullName;
        try
        {
            // verify needs ExecStart's binary to exist: the copy runs the binary under test instead of
            // /usr/local/bin/edgemta; nothing else changes.
            string source = Path.Combine(EdgeMtaBinary.RepositoryRoot, "deploy", "systemd");
            string service = Path.Combine(units, "edgemta.service"), socket = Path.Combine(units, "edgemta.socket");
            string text = File.ReadAllText(Path.Combine(source, "edgemta.service"));
            Assert.Contains("ExecStart=/usr/local/bin/edgemta serve ", text, StringComparison.Ordinal);
            File.WriteAllText(service, text.Replace("/usr/local/bin/edgemta", EdgeMtaBinary.Require(), StringComparison.Ordinal));
            File.Copy(Path.Combine(source, "edgemta.socket"), socket);

            ToolResult verify = await ToolRun.RunAsync("systemd-analyze", ["verify", "--man=no", service, socket], TimeSpan.FromSeconds(60), output);
            // verify exits 0 on unknown keys and bad values too (it only warns): any output is a failure.
            Assert.True(verify.ExitCode == 0 && verify.StandardOutput.Length == 0 && verify.StandardError.Length == 0, verify.ToString());

            // Exposure 2.0 or less ("OK"; the shipped unit scores 1.7): a hardening line dropped fails this.
            ToolResult security = await ToolRun.RunAsync("systemd-analyze", ["security", "--offline=yes", "--threshold=20", service], TimeSpan.FromSeconds(60), output);
            Assert.True(security.ExitCode == 0, security.ToString());
        }
        finally
        {
            Directory.Delete(units, recursive: true);
        }
    }

    [GeneratedRegex(@"^out\| listening on ", RegexOptions.Multiline)]
    private static partial Regex ListeningLines();

    private static async Task SendOneAsync(int port)
    {
        await using SmtpConnection c = await SmtpConnection.ConnectAsync(port);
        await c.ExpectAsync(220);
        await c.CommandAsync("EHLO client.example", 250);
        await c.CommandAsync("MAIL FROM:<a@example.com>", 250);
        await c.CommandAsync("RCPT TO:<b@example.org>", 250);
        await c.CommandAsync("DATA", 354);
        await c.CommandAsync("Subject: one\r\n\r\none message\r\n.", 250);
        await c.CommandAsync("QUIT", 221);
    }

    private static void RequireTool(string name)
    {
        bool found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, name)));
        Assert.True(found, $"{name} is missing: install Debian's systemd package (tests/run.sh does)");
    }

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>Connects once the launcher listens: refused until then, retried every 50 ms for 10 s at most.</summary>
    private static async Task<Socket> ConnectWhenListeningAsync(int port, Task starting)
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(TimeSpan.FromSeconds(5));
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused && !starting.IsCompleted)
            {
                socket.Dispose();
                await Task.Delay(50);
            }
        }
        throw new TimeoutException($"nothing listened on 127.0.0.1:{port} within 10 s");
    }
}
