using System.Diagnostics;
using System.Globalization;
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
/// log under a temp directory, smtpd with STARTTLS (a self-signed certificate from <see cref="TestCertificate"/>,
/// smtpd_tls_security_level = may) and PIPELINING (on by default). Two places to run:
/// - <see cref="StartAsync"/>: on its own loopback port, accepting any recipient from 127.0.0.0/8;
/// - <see cref="StartInNamespaceAsync"/>: inside a network namespace (<see cref="NetworkNamespaces"/>), listening
///   on the namespace's addresses (inet_interfaces) and relaying only for `mynetworks` (anyone else gets
///   `554 5.7.1 Relay access denied`), every Postfix command it runs prefixed by `ip netns exec NAME`.
/// Every accepted message is put on hold (check_client_access static:HOLD, postconf(5) "HOLD"), so it stays in
/// the hold queue where a test reads it back with postcat; nothing is ever delivered anywhere. Header rewriting
/// is off (local_header_rewrite_clients empty) so the data is as sent. No DNS anywhere: myhostname is set,
/// smtpd_peername_lookup = no, and the smtp client (never used: every transport is discard) has DNS disabled, so
/// a namespace with no route and no resolver cannot stall it. Modelled on perf/race.sh start_postfix.
/// Fails the test, with Postfix's log, when it cannot start; stopped by `postfix stop` and then by its master's
/// pid (from its pid file), never by name.
/// </summary>
public sealed partial class PostfixHop : IAsyncDisposable
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan ToolBound = TimeSpan.FromSeconds(30);
    private const int PostcatBatch = 64;   // queue ids per postcat run: few processes, short argument lists
    private readonly ITestOutputHelper _output;
    private readonly IReadOnlyList<string> _launcher;   // empty, or `ip netns exec NAME`
    private bool _disposed;

    public string Directory { get; }
    public int Port { get; }
    /// <summary>The addresses smtpd listens on: 127.0.0.1, or the namespace's.</summary>
    public IReadOnlyList<string> Addresses { get; }
    public int MasterPid { get; private set; }
    public string Url => $"smtp://{Addresses[0]}:{Port}";
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

    private PostfixHop(ITestOutputHelper output, string directory, int port, IReadOnlyList<string> addresses, IReadOnlyList<string> launcher)
    {
        _output = output;
        Directory = directory;
        Port = port;
        Addresses = addresses;
        _launcher = launcher;
    }

    /// <summary>Postfix on a free loopback port of the host, relaying for 127.0.0.0/8.</summary>
    public static Task<PostfixHop> StartAsync(ITestOutputHelper output) =>
        StartAsync(output, LoopbackPort.Free(), ["127.0.0.1"], [], new Settings(
            // One smtpd service bound to 127.0.0.1 alone (master.cf(5) "service name" host:port).
            "127.0.0.1:{0}", "loopback-only", "127.0.0.0/8", "permit_mynetworks, reject_unauth_destination", 20));

    /// <summary>
    /// Postfix inside namespace <paramref name="ns"/> on <paramref name="addresses"/> (port <paramref name="port"/>),
    /// relaying only for <paramref name="networks"/> (CIDR, the documentation ranges the test's links use):
    /// smtpd_relay_restrictions = permit_mynetworks, reject, so a client outside them is refused at RCPT. Up to 100
    /// smtpd processes (Postfix's default_process_limit): each edgemta keeps up to `--relay-concurrency` (20)
    /// connections open and idle for 10 s (docs/DELIVERY.md), so two nodes against 20 leave one node's connections
    /// waiting in the listen queue until the other's close.
    /// </summary>
    public static Task<PostfixHop> StartInNamespaceAsync(ITestOutputHelper output, string ns, IReadOnlyList<string> addresses,
        IReadOnlyList<string> networks, int port = 25) =>
        StartAsync(output, port, addresses, NetworkNamespaces.Exec(ns), new Settings(
            // A bare port: master binds it on every inet_interfaces address (master.cf(5)).
            "{0}", string.Join(", ", addresses), string.Join(", ", networks), "permit_mynetworks, reject", 100));

    private sealed record Settings(string ServiceFormat, string InetInterfaces, string Networks, string RelayRestrictions, int SmtpdLimit);

    private static async Task<PostfixHop> StartAsync(ITestOutputHelper output, int port, IReadOnlyList<string> addresses,
        IReadOnlyList<string> launcher, Settings settings)
    {
        if (!File.Exists("/usr/sbin/postfix")) Assert.Fail("Postfix is missing (/usr/sbin/postfix): tests/run.sh installs the postfix package.");
        string dir = System.IO.Directory.CreateTempSubdirectory("edgemta-postfix-").FullName;
        // Postfix's daemons drop to the postfix user: the tree must be searchable by it (temp dirs are 0700).
        await ToolRun.RunAsync("chmod", ["0755", dir], TimeSpan.FromSeconds(10));
        var hop = new PostfixHop(output, dir, port, addresses, launcher);
        System.IO.Directory.CreateDirectory(hop.Config);
        System.IO.Directory.CreateDirectory(hop.Queue);
        string data = Path.Combine(dir, "data");
        System.IO.Directory.CreateDirectory(data);
        await ToolRun.RunAsync("chown", ["postfix", data], TimeSpan.FromSeconds(10));
        string[] tls = TestCertificate.Write(hop.Config);
        File.WriteAllText(Path.Combine(hop.Config, "main.cf"), await MainCfAsync(dir, tls[1], tls[3], settings));
        File.WriteAllText(Path.Combine(hop.Config, "master.cf"), MasterCf(string.Format(CultureInfo.InvariantCulture, settings.ServiceFormat, port), settings.SmtpdLimit));

        // `postfix start` runs postfix-script's checks (dozens of postconf and find runs) before master -w: seconds
        // on a loaded machine, none of it DNS (strace shows no AF_INET connect). StartTime is reported for that.
        var clock = Stopwatch.StartNew();
        ToolResult start = await hop.PostfixAsync("postfix", "-c", hop.Config, "start");
        hop.StartTime = clock.Elapsed;
        clock.Restart();
        while (clock.Elapsed < StartBound && hop.MasterPid == 0)
        {
            // cat, not File.ReadAllText: master holds an exclusive flock(2) on its pid file, and .NET's emulation of
            // FileShare takes a shared one on every open, which then fails as a sharing violation.
            ToolResult pidFile = await ToolRun.RunAsync("cat", [Path.Combine(hop.Queue, "pid", "master.pid")], TimeSpan.FromSeconds(10));
            if (pidFile.ExitCode == 0 && int.TryParse(pidFile.StandardOutput.Trim(), out int pid)) hop.MasterPid = pid;
            if (hop.MasterPid == 0) await Task.Delay(50);
        }
        if (start.ExitCode != 0 || hop.MasterPid == 0 || !await hop.WaitListeningAsync())
        {
            string log = hop.MailLog;
            await hop.DisposeAsync();
            Assert.Fail($"The private Postfix did not start on {string.Join(", ", addresses)} port {port} (master pid {hop.MasterPid})\n{start}\n--- maillog ---\n{log}");
        }
        return hop;
    }

    /// <summary>How long `postfix start` took.</summary>
    public TimeSpan StartTime { get; private set; }

    /// <summary>Runs a Postfix command (/usr/sbin/NAME), inside the namespace when there is one (bounded).</summary>
    private Task<ToolResult> PostfixAsync(string name, params string[] arguments) =>
        _launcher.Count == 0
            ? ToolRun.RunAsync("/usr/sbin/" + name, arguments, ToolBound)
            : ToolRun.RunAsync(_launcher[0], [.. _launcher.Skip(1), "/usr/sbin/" + name, .. arguments], ToolBound);

    /// <summary>On loopback a connect; in a namespace (unreachable from here) `ss -ltn` there, until every address
    /// has its listener (bounded).</summary>
    private async Task<bool> WaitListeningAsync()
    {
        if (_launcher.Count == 0) return await LoopbackPort.WaitListeningAsync(Port, StartBound);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartBound)
        {
            ToolResult ss = await ToolRun.RunAsync(_launcher[0], [.. _launcher.Skip(1), "/usr/bin/ss", "-Hltn"], ToolBound);
            string[] listening = ss.StandardOutput.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            if (Addresses.All(a => listening.Contains($"{a}:{Port}"))) return true;
            await Task.Delay(100);
        }
        return false;
    }

    /// <summary>The queue ids in the hold queue, oldest first by queue file time. The hold queue is not hashed
    /// (hash_queue_names: deferred, defer), and cleanup(8) moves a file there only once it is complete.</summary>
    public string[] HeldIds()
    {
        string hold = Path.Combine(Queue, "hold");
        if (!System.IO.Directory.Exists(hold)) return [];
        return new DirectoryInfo(hold).GetFiles().OrderBy(f => f.LastWriteTimeUtc).Select(f => f.Name).ToArray();
    }

    /// <summary>Every message in the hold queue, read with postcat -ebh (oldest first by queue file time), a batch
    /// of queue ids per run: each file's output sits between postcat's `*** ENVELOPE RECORDS hold/ID ***`,
    /// `*** MESSAGE CONTENTS hold/ID ***` and `*** HEADER EXTRACTED hold/ID ***` markers (postcat(1)), and the
    /// contents section is what `postcat -bh` prints for that file alone.</summary>
    public async Task<List<HeldMessage>> HeldAsync()
    {
        string[] ids = HeldIds();
        var held = new List<HeldMessage>(ids.Length);
        for (int i = 0; i < ids.Length; i += PostcatBatch)
        {
            string[] batch = ids[i..Math.Min(ids.Length, i + PostcatBatch)];
            ToolResult cat = await PostfixAsync("postcat", ["-ebh", "-c", Config, "-q", .. batch]);
            string text = cat.StandardOutput;
            foreach (string id in batch)
            {
                // A file gone meanwhile has no sections (postcat reports it on stderr): left out.
                string? envelope = Section(text, $"*** ENVELOPE RECORDS hold/{id} ***", $"*** MESSAGE CONTENTS hold/{id} ***");
                string? content = Section(text, $"*** MESSAGE CONTENTS hold/{id} ***", $"*** HEADER EXTRACTED hold/{id} ***");
                if (envelope is null || content is null) continue;
                string sender = "";
                var recipients = new List<string>();
                foreach (string line in envelope.Split('\n'))
                {
                    if (line.StartsWith("sender: ", StringComparison.Ordinal)) sender = line["sender: ".Length..].Trim();
                    else if (line.StartsWith("sender:", StringComparison.Ordinal)) sender = "";
                    else if (line.StartsWith("recipient: ", StringComparison.Ordinal)) recipients.Add(line["recipient: ".Length..].Trim());
                }
                (string received, string rest) = SplitFirstHeader(content);
                held.Add(new HeldMessage(id, sender, recipients, received, rest));
            }
        }
        return held;
    }

    /// <summary>The text between two marker lines, or null when either is missing.</summary>
    private static string? Section(string text, string startMarker, string endMarker)
    {
        int start = text.IndexOf(startMarker + "\n", StringComparison.Ordinal);
        if (start < 0) return null;
        start += startMarker.Length + 1;
        int end = text.IndexOf("\n" + endMarker, start - 1, StringComparison.Ordinal);
        return end < 0 ? null : text[start..(end + 1)];
    }

    /// <summary>Waits (bounded: <paramref name="bound"/>, 15 s unless given) until at least <paramref name="count"/>
    /// messages are held, watching the hold queue's directory, then reads them; fails the test with Postfix's log
    /// past the bound.</summary>
    public async Task<List<HeldMessage>> WaitForHeldAsync(int count, Func<string>? context = null, TimeSpan? bound = null)
    {
        TimeSpan limit = bound ?? StartBound;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int held = HeldIds().Length;
            if (held >= count) return await HeldAsync();
            if (clock.Elapsed > limit)
            {
                Assert.Fail($"Postfix holds {held} message(s), expected {count} within {limit.TotalSeconds} s\n" +
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

    private static async Task<string> MainCfAsync(string dir, string cert, string key, Settings settings)
    {
        async Task<string> Default(string name, string fallback)
        {
            ToolResult r = await ToolRun.RunAsync("/usr/sbin/postconf", ["-dh", name], TimeSpan.FromSeconds(20));
            return r.ExitCode == 0 && r.StandardOutput.Trim().Length > 0 ? r.StandardOutput.Trim() : fallback;
        }
        var cf = new StringBuilder();
        cf.Append($"""
            # A private Postfix for edgemta's end-to-end relay tests: any recipient, everything held, no DNS.
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
            inet_interfaces = {settings.InetInterfaces}
            inet_protocols = ipv4
            mynetworks = {settings.Networks}
            mydestination =
            local_recipient_maps =
            relay_domains = static:all
            relay_recipient_maps =
            smtpd_relay_restrictions = {settings.RelayRestrictions}
            smtpd_recipient_restrictions = check_client_access static:HOLD
            default_transport = discard
            relay_transport = discard
            local_transport = discard
            smtpd_peername_lookup = no
            smtp_dns_support_level = disabled
            smtp_host_lookup = native
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
    private static string MasterCf(string service, int smtpdLimit) => $"""
        {service} inet n - n - {smtpdLimit} smtpd
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
        await PostfixAsync("postfix", "-c", Config, "stop");
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
