using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>A message a <see cref="PostfixHop"/> holds: its envelope (postcat -e) and content (postcat -bh), with
/// the Received: header Postfix's smtpd put on top split off, so <see cref="Data"/> is what the client sent.
/// Postfix stores lines, not bytes: the content has LF line ends (postcat(1)).</summary>
public sealed record HeldMessage(string QueueId, string Sender, IReadOnlyList<string> Recipients, string PostfixReceived, string Data)
{
    /// <summary>The client's data as Postfix kept it, with the CRLF line ends of the SMTP stream back.</summary>
    public string DataCrlf => Data.Replace("\n", "\r\n", StringComparison.Ordinal);
}

/// <summary>
/// A private Postfix (Debian's postfix package) as the smarthost edgemta relays to: its own config, queue and
/// log under a temp directory, smtpd on its own loopback port with STARTTLS (a self-signed certificate from
/// <see cref="TestCertificate"/>, smtpd_tls_security_level = may) and PIPELINING (on by default), accepting
/// any recipient from 127.0.0.0/8. Every accepted message is put on hold (check_client_access static:HOLD,
/// postconf(5) "HOLD"), so it stays in the hold queue where a test reads it back with postcat; nothing is ever
/// delivered anywhere. Header rewriting is off (local_header_rewrite_clients empty) so the data is as sent.
/// Modelled on perf/race.sh start_postfix. Fails the test, with Postfix's log, when it cannot start; stopped by
/// `postfix stop` and then its master's pid.
/// </summary>
public sealed partial class PostfixHop : IAsyncDisposable
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(15);
    private readonly ITestOutputHelper _output;
    private bool _disposed;

    public string Directory { get; }
    public int Port { get; }
    public int MasterPid { get; private set; }
    public string Url => $"smtp://127.0.0.1:{Port}";
    private string Config => Path.Combine(Directory, "etc");
    private string Queue => Path.Combine(Directory, "queue");

    /// <summary>Postfix's own log (maillog_file), e.g. its "TLS connection established from" lines.</summary>
    public string MailLog
    {
        get
        {
            try { return File.ReadAllText(Path.Combine(Directory, "maillog")); }
            catch (IOException) { return ""; }
        }
    }

    private PostfixHop(ITestOutputHelper output, string directory, int port)
    {
        _output = output;
        Directory = directory;
        Port = port;
    }

    public static async Task<PostfixHop> StartAsync(ITestOutputHelper output)
    {
        if (!File.Exists("/usr/sbin/postfix")) Assert.Fail("Postfix is missing (/usr/sbin/postfix): tests/run.sh installs the postfix package.");
        string dir = System.IO.Directory.CreateTempSubdirectory("edgemta-postfix-").FullName;
        // Postfix's daemons drop to the postfix user: the tree must be searchable by it (temp dirs are 0700).
        await ToolRun.RunAsync("chmod", ["0755", dir], TimeSpan.FromSeconds(10));
        var hop = new PostfixHop(output, dir, LoopbackPort.Free());
        System.IO.Directory.CreateDirectory(hop.Config);
        System.IO.Directory.CreateDirectory(hop.Queue);
        string data = Path.Combine(dir, "data");
        System.IO.Directory.CreateDirectory(data);
        await ToolRun.RunAsync("chown", ["postfix", data], TimeSpan.FromSeconds(10));
        string[] tls = TestCertificate.Write(hop.Config);
        File.WriteAllText(Path.Combine(hop.Config, "main.cf"), await MainCfAsync(dir, tls[1], tls[3]));
        File.WriteAllText(Path.Combine(hop.Config, "master.cf"), MasterCf(hop.Port));

        ToolResult start = await ToolRun.RunAsync("/usr/sbin/postfix", ["-c", hop.Config, "start"], TimeSpan.FromSeconds(30));
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartBound && hop.MasterPid == 0)
        {
            // cat, not File.ReadAllText: master holds an exclusive flock(2) on its pid file, and .NET's emulation of
            // FileShare takes a shared one on every open, which then fails as a sharing violation.
            ToolResult pidFile = await ToolRun.RunAsync("cat", [Path.Combine(hop.Queue, "pid", "master.pid")], TimeSpan.FromSeconds(10));
            if (pidFile.ExitCode == 0 && int.TryParse(pidFile.StandardOutput.Trim(), out int pid)) hop.MasterPid = pid;
            if (hop.MasterPid == 0) await Task.Delay(50);
        }
        if (start.ExitCode != 0 || hop.MasterPid == 0 || !await LoopbackPort.WaitListeningAsync(hop.Port, StartBound))
        {
            string log = hop.MailLog;
            await hop.DisposeAsync();
            Assert.Fail($"The private Postfix did not start on 127.0.0.1:{hop.Port} (master pid {hop.MasterPid})\n{start}\n--- maillog ---\n{log}");
        }
        return hop;
    }

    /// <summary>Every message in the hold queue, read with postcat (oldest first by queue file time).</summary>
    public async Task<List<HeldMessage>> HeldAsync()
    {
        string hold = Path.Combine(Queue, "hold");
        if (!System.IO.Directory.Exists(hold)) return [];
        var held = new List<HeldMessage>();
        foreach (FileInfo file in new DirectoryInfo(hold).GetFiles().OrderBy(f => f.LastWriteTimeUtc))
        {
            ToolResult envelope = await ToolRun.RunAsync("/usr/sbin/postcat", ["-e", "-c", Config, "-q", file.Name], TimeSpan.FromSeconds(20));
            ToolResult content = await ToolRun.RunAsync("/usr/sbin/postcat", ["-bh", "-c", Config, "-q", file.Name], TimeSpan.FromSeconds(20));
            if (envelope.ExitCode != 0 || content.ExitCode != 0) continue;   // removed meanwhile
            string sender = "";
            var recipients = new List<string>();
            foreach (string line in envelope.StandardOutput.Split('\n'))
            {
                if (line.StartsWith("sender: ", StringComparison.Ordinal)) sender = line["sender: ".Length..].Trim();
                else if (line.StartsWith("sender:", StringComparison.Ordinal)) sender = "";
                else if (line.StartsWith("recipient: ", StringComparison.Ordinal)) recipients.Add(line["recipient: ".Length..].Trim());
            }
            (string received, string rest) = SplitFirstHeader(content.StandardOutput);
            held.Add(new HeldMessage(file.Name, sender, recipients, received, rest));
        }
        return held;
    }

    /// <summary>Waits (bounded, 15 s) until at least <paramref name="count"/> messages are held; fails the test with
    /// Postfix's log past it.</summary>
    public async Task<List<HeldMessage>> WaitForHeldAsync(int count, Func<string>? context = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            List<HeldMessage> held = await HeldAsync();
            if (held.Count >= count) return held;
            if (clock.Elapsed > StartBound)
            {
                Assert.Fail($"Postfix holds {held.Count} message(s), expected {count} within {StartBound.TotalSeconds} s\n" +
                            $"--- maillog ---\n{MailLog}\n{context?.Invoke()}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>The first header field (Postfix's Received:, folded lines included) and everything after it.</summary>
    public static (string First, string After) SplitFirstHeader(string content)
    {
        int end = content.IndexOf('\n');
        while (end >= 0 && end + 1 < content.Length && content[end + 1] is ' ' or '\t') end = content.IndexOf('\n', end + 1);
        return end < 0 ? (content, "") : (content[..(end + 1)], content[(end + 1)..]);
    }

    private static async Task<string> MainCfAsync(string dir, string cert, string key)
    {
        async Task<string> Default(string name, string fallback)
        {
            ToolResult r = await ToolRun.RunAsync("/usr/sbin/postconf", ["-dh", name], TimeSpan.FromSeconds(20));
            return r.ExitCode == 0 && r.StandardOutput.Trim().Length > 0 ? r.StandardOutput.Trim() : fallback;
        }
        var cf = new StringBuilder();
        cf.Append($"""
            # A private Postfix for edgemta's end-to-end relay tests: loopback only, any recipient, everything held.
            compatibility_level = 3.6
            config_directory = {dir}/etc
            queue_directory = {dir}/queue
            data_directory = {dir}/data
            command_directory = {await Default("command_directory", "/usr/sbin")}
            daemon_directory = {await Default("daemon_directory", "/usr/lib/postfix/sbin")}
            meta_directory = {await Default("meta_directory", "/etc/postfix")}
            shlib_directory = {await Default("shlib_directory", "/usr/lib/postfix")}
            mail_owner = postfix
            setgid_group = postdrop
            myhostname = postfix-hop.test
            mydomain = test
            myorigin = $myhostname
            inet_interfaces = loopback-only
            inet_protocols = ipv4
            mynetworks = 127.0.0.0/8
            mydestination =
            local_recipient_maps =
            relay_domains = static:all
            relay_recipient_maps =
            smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
            smtpd_recipient_restrictions = check_client_access static:HOLD
            default_transport = discard
            relay_transport = discard
            local_transport = discard
            smtpd_peername_lookup = no
            message_size_limit = 52428800
            local_header_rewrite_clients =
            always_add_missing_headers = no
            notify_classes =
            smtpd_tls_security_level = may
            smtpd_tls_cert_file = {cert}
            smtpd_tls_key_file = {key}
            smtpd_tls_loglevel = 1
            smtpd_tls_received_header = yes
            maillog_file = {dir}/maillog
            maillog_file_prefixes = {dir}
            biff = no

            """);
        return cf.ToString();
    }

    // tlsmgr is needed for TLS at all ("no entropy for TLS key generation: disabling TLS support" without it);
    // postlog writes maillog_file.
    private static string MasterCf(int port) => $"""
        127.0.0.1:{port} inet n - n - 20 smtpd
        pickup    unix  n - n 60 1 pickup
        cleanup   unix  n - n -  0 cleanup
        qmgr      unix  n - n 300 1 qmgr
        tlsmgr    unix  - - n 1000? 1 tlsmgr
        rewrite   unix  - - n -  - trivial-rewrite
        bounce    unix  - - n -  0 bounce
        defer     unix  - - n -  0 bounce
        trace     unix  - - n -  0 bounce
        verify    unix  - - n -  1 verify
        flush     unix  n - n 1000? 0 flush
        proxymap  unix  - - n -  - proxymap
        showq     unix  n - n -  - showq
        error     unix  - - n -  - error
        retry     unix  - - n -  - error
        discard   unix  - - n -  - discard
        anvil     unix  - - n -  1 anvil
        scache    unix  - - n -  1 scache
        postlog   unix-dgram n - n - 1 postlogd

        """;

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await ToolRun.RunAsync("/usr/sbin/postfix", ["-c", Config, "stop"], TimeSpan.FromSeconds(30));
        if (MasterPid > 0)
        {
            var clock = Stopwatch.StartNew();
            while (System.IO.Directory.Exists($"/proc/{MasterPid}") && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            if (System.IO.Directory.Exists($"/proc/{MasterPid}")) _ = Kill(MasterPid, 9);
        }
        try { _output.WriteLine($"--- Postfix maillog ({Directory}) ---\n{MailLog}"); }
        catch (InvalidOperationException) { }
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
