using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>One message in a <see cref="DovecotLmtpHop"/> maildir: the file as stored (LF line ends) and
/// <see cref="Data"/>, the same without the Return-Path:, Delivered-To: and Received: fields Dovecot's LMTP
/// put on top (RFC 5321 §4.4), i.e. what the client sent.</summary>
public sealed record MaildirMessage(string File, string Stored, string Data)
{
    public string DataCrlf => Data.Replace("\n", "\r\n", StringComparison.Ordinal);
}

/// <summary>
/// A private Dovecot LMTP server (Debian's dovecot-core and dovecot-lmtpd) as the final hop: its own config,
/// base_dir, state and log under a temp directory, run in the foreground (`dovecot -F -c CONF`) and stopped by
/// its pid (SIGTERM, then SIGKILL past 10 s). LMTP on a loopback port and on the unix socket
/// <see cref="SocketPath"/>. Users come from a passwd-file: <see cref="Alice"/> with a roomy quota,
/// <see cref="Bob"/> with 1 KiB (anything bigger is "552 5.2.2 Quota exceeded" after the data, per recipient,
/// RFC 2033 §4.2); any other address is "550 5.1.1 User doesn't exist" at RCPT. Mail lands in
/// maildirs (mail_location = maildir:~/Maildir) owned by nobody. Deliberately no TLS and no auth.
/// Fails the test, with Dovecot's log, when it cannot start.
/// </summary>
public sealed partial class DovecotLmtpHop : IAsyncDisposable
{
    public const string Alice = "alice@example.test", Bob = "bob@example.test";
    public const string Binary = "/usr/sbin/dovecot";
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(15);
    private readonly ITestOutputHelper _output;
    private Process? _process;
    private bool _disposed;

    public string Directory { get; }
    public int Port { get; }
    public string Url => $"lmtp://127.0.0.1:{Port}";
    public string SocketPath => Path.Combine(Directory, "run", "lmtp");
    public string UnixUrl => $"lmtp+unix:{SocketPath}";

    public string Log
    {
        get
        {
            try { return File.ReadAllText(Path.Combine(Directory, "dovecot.log")); }
            catch (IOException) { return ""; }
        }
    }

    private DovecotLmtpHop(ITestOutputHelper output, string directory, int port)
    {
        _output = output;
        Directory = directory;
        Port = port;
    }

    public static async Task<DovecotLmtpHop> StartAsync(ITestOutputHelper output)
    {
        if (!File.Exists(Binary)) Assert.Fail($"Dovecot is missing ({Binary}): tests/run.sh installs dovecot-core and dovecot-lmtpd.");
        string dir = System.IO.Directory.CreateTempSubdirectory("edgemta-dovecot-").FullName;
        // The mail processes run as nobody: the tree must be searchable and the mail root writable by it.
        await ToolRun.RunAsync("chmod", ["0755", dir], TimeSpan.FromSeconds(10));
        var hop = new DovecotLmtpHop(output, dir, LoopbackPort.Free());
        foreach (string sub in (string[])["run", "state"]) System.IO.Directory.CreateDirectory(Path.Combine(dir, sub));
        string mail = Path.Combine(dir, "mail");
        System.IO.Directory.CreateDirectory(mail);
        await ToolRun.RunAsync("chmod", ["0777", mail], TimeSpan.FromSeconds(10));
        // passwd-file: user:password:uid:gid:gecos:home:shell:extra fields (userdb_ prefixed for the userdb).
        File.WriteAllText(Path.Combine(dir, "users"),
            $"{Alice}:{{PLAIN}}x:65534:65534::{mail}/alice::\n" +
            $"{Bob}:{{PLAIN}}x:65534:65534::{mail}/bob::userdb_quota_rule=*:storage=1K\n");
        File.WriteAllText(Path.Combine(dir, "dovecot.conf"), Conf(dir, hop.Port));

        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (string a in (string[])["-F", "-c", Path.Combine(dir, "dovecot.conf")]) start.ArgumentList.Add(a);
        hop._process = Process.Start(start)!;
        // Drain its pipes so a chatty dovecot never blocks on a full one.
        _ = hop._process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = hop._process.StandardError.ReadToEndAsync();
        if (!await LoopbackPort.WaitListeningAsync(hop.Port, StartBound, () => hop._process.HasExited))
        {
            string err = hop._process.HasExited ? await stderr.WaitAsync(TimeSpan.FromSeconds(5)) : "";
            string log = hop.Log;
            await hop.DisposeAsync();
            Assert.Fail($"Dovecot did not listen for LMTP on 127.0.0.1:{hop.Port} within {StartBound.TotalSeconds} s\n{err}\n--- log ---\n{log}");
        }
        return hop;
    }

    private static string Conf(string dir, int port) => $$"""
        # A private Dovecot for edgemta's end-to-end tests: LMTP only, loopback, two users, maildirs under {{dir}}.
        base_dir = {{dir}}/run
        state_dir = {{dir}}/state
        log_path = {{dir}}/dovecot.log
        protocols = lmtp
        # Its own name in the LHLO greeting: the machine's (the default) is also edgemta's default --hostname, which
        # docs/DELIVERY.md "Loops" takes for mail looping back.
        hostname = dovecot-hop.test
        listen = 127.0.0.1
        ssl = no
        first_valid_uid = 1
        mail_location = maildir:~/Maildir
        mail_plugins = quota
        passdb {
          driver = passwd-file
          args = {{dir}}/users
        }
        userdb {
          driver = passwd-file
          args = {{dir}}/users
        }
        plugin {
          quota = maildir:User quota
          quota_rule = *:storage=100M
        }
        service lmtp {
          inet_listener lmtp {
            address = 127.0.0.1
            port = {{port}}
          }
          unix_listener lmtp {
            mode = 0666
          }
        }

        """;

    /// <summary>The messages in <paramref name="user"/>'s INBOX (new/ and cur/), oldest file first.</summary>
    public List<MaildirMessage> Inbox(string user)
    {
        string home = Path.Combine(Directory, "mail", user.Split('@')[0], "Maildir");
        var found = new List<MaildirMessage>();
        foreach (string sub in (string[])["new", "cur"])
        {
            string d = Path.Combine(home, sub);
            if (!System.IO.Directory.Exists(d)) continue;
            foreach (FileInfo f in new DirectoryInfo(d).GetFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                string stored = File.ReadAllText(f.FullName, Encoding.UTF8);
                found.Add(new MaildirMessage(f.FullName, stored, WithoutDeliveryHeaders(stored)));
            }
        }
        return found;
    }

    /// <summary>Waits (bounded, 15 s) for <paramref name="count"/> messages in <paramref name="user"/>'s INBOX.</summary>
    public async Task<List<MaildirMessage>> WaitForInboxAsync(string user, int count, Func<string>? context = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            List<MaildirMessage> inbox = Inbox(user);
            if (inbox.Count >= count) return inbox;
            if (clock.Elapsed > StartBound)
            {
                Assert.Fail($"{user} has {inbox.Count} message(s), expected {count} within {StartBound.TotalSeconds} s\n" +
                            $"--- dovecot log ---\n{Log}\n{context?.Invoke()}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Drops the leading Return-Path:, Delivered-To: and the first Received: field (with its folded lines).</summary>
    public static string WithoutDeliveryHeaders(string stored)
    {
        int at = 0;
        bool receivedSeen = false;
        while (at < stored.Length)
        {
            int end = stored.IndexOf('\n', at);
            while (end >= 0 && end + 1 < stored.Length && stored[end + 1] is ' ' or '\t') end = stored.IndexOf('\n', end + 1);
            if (end < 0) break;
            string field = stored[at..Math.Min(end, at + 16)];
            bool delivery = field.StartsWith("Return-Path:", StringComparison.OrdinalIgnoreCase) ||
                            field.StartsWith("Delivered-To:", StringComparison.OrdinalIgnoreCase);
            bool received = !receivedSeen && field.StartsWith("Received:", StringComparison.OrdinalIgnoreCase);
            if (!delivery && !received) break;
            receivedSeen |= received;
            at = end + 1;
        }
        return stored[at..];
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        if (_process is { HasExited: false } p)
        {
            _ = Kill(p.Id, 15);
            try
            {
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            }
        }
        _process?.Dispose();
        try { _output.WriteLine($"--- Dovecot log ({Directory}) ---\n{Log}"); }
        catch (InvalidOperationException) { }
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
