using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// --listen-proxy over the wire (docs/SCREENING.md, "PROXY protocol"): swaks sending PROXY v1 and v2 as a real
/// proxy would, the client it names in the log and the Received: header, a header that never comes, a peer
/// outside --proxy-trusted, and the per-address limit counting proxied clients by their own address.
/// </summary>
public sealed class ProxyTests(ITestOutputHelper output)
{
    /// <summary>The proxy listener's port: BoundEndPoints lists it after the plain --listen one.</summary>
    private static async Task<int> ProxyPortAsync(EdgeMtaProcess server)
    {
        const string marker = "listening on ";
        string line = (await server.WaitForLinesAsync(marker, 2))[1];
        Assert.True(IPEndPoint.TryParse(line[(line.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..].Trim(), out IPEndPoint? proxy), line);
        return proxy.Port;
    }

    private static Task<EdgeMtaProcess> StartAsync(ITestOutputHelper output, params string[] flags) =>
        EdgeMtaProcess.StartAsync(output, ["--listen-proxy", "127.0.0.1:0", .. flags]);

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    public async Task SwaksBehindAProxyIsLoggedAndTracedAsTheClientTheHeaderNames(string version)
    {
        await using EdgeMtaProcess server = await StartAsync(output, "--proxy-trusted", "127.0.0.1/32");
        int port = await ProxyPortAsync(server);
        Swaks s = await Swaks.RunAsync(port, output, "--from", "s@example.org", "--to", "a@example.test",
            "--proxy-version", version, "--proxy-family", version == "1" ? "TCP4" : "AF_INET",
            "--proxy-source", "203.0.113.9", "--proxy-source-port", "40000",
            "--proxy-dest", "127.0.0.1", "--proxy-dest-port", "25");
        Assert.True(s.Result.ExitCode == 0, s.Result.ToString());
        // swaks sent the header first (v2 shown in base64) and read the greeting after it.
        string[] transcript = s.Result.StandardOutput.Split('\n');
        Assert.StartsWith(" -> ", transcript[0]);
        Assert.StartsWith("<-  220 ", transcript[1]);

        string[] closed = await server.WaitForLinesAsync("session-close");
        Assert.Contains(" client=203.0.113.9 ", closed[0] + " ");
        Assert.Contains(" proxy=127.0.0.1", closed[0]);
        SpoolExport export = await server.StopAndExportAsync();
        Assert.Equal(1, export.Count);
        string received = export.ById.Values.Single().ReceivedHeader;
        Assert.Contains("203.0.113.9", received);
        Assert.DoesNotContain("127.0.0.1", received); // the proxy appears only in the log
    }

    [Fact]
    public async Task AClientThatSendsNoHeaderIsClosedAtTheTimeoutWithNothingWritten()
    {
        await using EdgeMtaProcess server = await StartAsync(output, "--proxy-trusted", "127.0.0.1/32", "--proxy-timeout", "1s");
        int port = await ProxyPortAsync(server);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var clock = Stopwatch.StartNew(); // before connect: the server's deadline starts at its accept, after this
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        (int bytes, bool closed) = await ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
        TimeSpan waited = clock.Elapsed;
        Assert.True(closed, "the server kept the connection open for 10 s");
        Assert.Equal(0, bytes); // no greeting, no reply: nothing at all before the header
        // The deadline is 1 s on a 1 s sweep: closed between about 1 and 2 s (plus scheduling).
        Assert.True(waited >= TimeSpan.FromSeconds(0.9) && waited < TimeSpan.FromSeconds(5), $"closed after {waited}");
        string[] rejected = await server.WaitForLinesAsync("proxy-rejected");
        Assert.Contains("client=127.0.0.1 reason=timeout", rejected[0]);
    }

    [Fact]
    public async Task APeerOutsideTheTrustedNetworksIsClosedAtOnce()
    {
        await using EdgeMtaProcess server = await StartAsync(output, "--proxy-trusted", "192.0.2.0/24");
        int port = await ProxyPortAsync(server);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        var clock = Stopwatch.StartNew();
        (int bytes, bool closed) = await ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(10));
        Assert.True(closed && bytes == 0, $"closed {closed}, {bytes} bytes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"closed after {clock.Elapsed}, not at accept"); // no 5 s header wait
        string[] rejected = await server.WaitForLinesAsync("proxy-rejected");
        Assert.Contains("client=127.0.0.1 reason=untrusted", rejected[0]);
    }

    [Fact]
    public async Task ThePerAddressLimitCountsProxiedClientsByTheirOwnAddress()
    {
        await using EdgeMtaProcess server = await StartAsync(output, "--proxy-trusted", "127.0.0.1/32", "--max-connections-per-ip", "1");
        int port = await ProxyPortAsync(server);
        // The proxy (127.0.0.1) opens all three: loopback is exempt, the clients behind it are not.
        await using SmtpConnection first = await ProxiedAsync(port, "203.0.113.9");
        await first.ExpectAsync(220);
        await using SmtpConnection other = await ProxiedAsync(port, "203.0.113.10");
        await other.ExpectAsync(220);
        await using SmtpConnection again = await ProxiedAsync(port, "203.0.113.9");
        await again.ExpectAsync(421, "4.7.0");
        await first.CommandAsync("QUIT", 221);
        await other.CommandAsync("QUIT", 221);
    }

    private static async Task<SmtpConnection> ProxiedAsync(int port, string client)
    {
        SmtpConnection c = await SmtpConnection.ConnectAsync(port);
        await c.SendAsync($"PROXY TCP4 {client} 127.0.0.1 40000 25\r\n");
        return c;
    }

    /// <summary>Reads until the server's FIN or reset, or the bound: the bytes seen and whether it closed.</summary>
    private static async Task<(int Bytes, bool Closed)> ReadUntilClosedAsync(Socket socket, TimeSpan bound)
    {
        var buffer = new byte[1024];
        int total = 0;
        using var cts = new CancellationTokenSource(bound);
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return (total, true);
                }
                total += n;
            }
        }
        catch (SocketException)
        {
            return (total, true); // a reset is a close too
        }
        catch (OperationCanceledException)
        {
            return (total, false);
        }
    }
}
