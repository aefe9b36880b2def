// Contract: a real DNS server for tests: Debian's dnsmasq (dnsmasq-base, tests/run.sh installs it) serving
// fake blocklist zones on a free loopback UDP port, started per fixture and stopped by its pid.
//
// `--local=/zone/` makes every name under a zone NXDOMAIN unless an `--address=/name/ADDR` answers it (without
// it dnsmasq answers REFUSED, having no upstream); --local-ttl sets the TTL of those answers. Ready when it
// answers a question (polled, bounded). It does not model a slow or broken server: tests use their own UDP
// responders for that.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.TestKit;

public sealed class Dnsmasq : IDisposable
{
    public const string Path = "/usr/sbin/dnsmasq";
    private readonly System.Text.StringBuilder _stderr = new();
    private Process _process;

    /// <param name="zones">Zones answered locally (NXDOMAIN for what is not listed).</param>
    /// <param name="records">Name to IPv4 answer, e.g. ("2.0.0.127.bl.test", "127.0.0.2").</param>
    public Dnsmasq(IEnumerable<string> zones, IEnumerable<(string Name, string Address)> records, int ttlSeconds = 300)
    {
        string[] local = [.. zones.Select(zone => $"--local=/{zone}/"), .. records.Select(r => $"--address=/{r.Name}/{r.Address}")];
        // The free port is probed on UDP only, but dnsmasq also listens on TCP there, and the port can be taken
        // between the probe and dnsmasq's bind (another test's connection, on a loaded CI machine). dnsmasq then
        // exits with 2 ("address in use", dnsmasq(8) EXIT CODES): take another port, 10 times at most.
        for (int attempt = 1; ; attempt++)
        {
            Port = FreeUdpPort();
            _process = Launch(Port, ttlSeconds, local);
            if (WaitUntilAnswering()) return;
            int exitCode = _process.ExitCode;
            _process.Dispose();
            if (exitCode != 2 || attempt == 10)
            {
                throw new InvalidOperationException($"dnsmasq exited with {exitCode} on port {Port}: {_stderr}");
            }
        }
    }

    public int Port { get; private set; }
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    /// <summary>True when dnsmasq is installed (tests/run.sh installs dnsmasq-base).</summary>
    public static bool Installed => File.Exists(Path);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
    }

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private Process Launch(int port, int ttlSeconds, string[] local)
    {
        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])["-k", "--no-resolv", "--no-hosts", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--listen-address=127.0.0.1", "--bind-interfaces", "--user=root", "--pid-file=", "--log-facility=-",
                     $"--local-ttl={ttlSeconds}", $"--neg-ttl={ttlSeconds}", .. local])
        {
            start.ArgumentList.Add(arg);
        }
        Process process = Process.Start(start) ?? throw new InvalidOperationException("dnsmasq did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) _stderr.AppendLine(e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    // Any answer to a query for "." shows the socket is bound; 100 tries of 100 ms at most. False when dnsmasq
    // exited instead.
    private bool WaitUntilAnswering()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 100 };
        byte[] query = [0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
        var buffer = new byte[512];
        for (int attempt = 0; attempt < 100; attempt++)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // the stderr reader has drained
                return false;
            }
            socket.SendTo(query, EndPoint);
            try
            {
                if (socket.Receive(buffer) > 0) return true;
            }
            catch (SocketException)
            {
                // not listening yet (ICMP port unreachable) or no answer within 100 ms
            }
        }
        Dispose();
        throw new TimeoutException("dnsmasq did not answer within 10 s");
    }
}
