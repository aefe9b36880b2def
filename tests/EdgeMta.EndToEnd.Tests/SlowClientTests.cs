using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The slow-client attack against the real binary, in small numbers (docs/SCREENING.md "Slow clients"): 35 raw
/// sockets that each send one byte a second and never finish a line fill 35 of 40 slots; stress begins above
/// 80% (the 33rd); every one of them is cut within the stress timeout of the onset, while real clients still get
/// 220 and 250, and stress ends once they are gone. On main, without a per-request deadline, each byte
/// restarted the idle timeout and the 35 held their slots for as long as they kept trickling.
/// </summary>
public sealed class SlowClientTests(ITestOutputHelper output)
{
    private const int Max = 40, Slow = 35, StressSeconds = 3;

    [Fact]
    public async Task TricklingClientsAreCutUnderStressWhileRealClientsGet220And250()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            ["--max-connections", $"{Max}", "--stress-timeout", $"{StressSeconds}", "--metrics-listen", "127.0.0.1:0"]);
        int metricsPort = await MetricsScrape.PortAsync(server);
        var slow = new List<Socket>();
        try
        {
            Stopwatch onset = new();
            for (int i = 0; i < Slow; i++)
            {
                Socket s = await ConnectRawAsync(server.Port);
                slow.Add(s);
                Assert.StartsWith("220 ", await ReadSomeAsync(s));
                if (i == 32) onset.Start(); // the 33rd is above 80% of 40
            }
            string[] on = await server.WaitForLinesAsync(" stress-on ");
            Assert.Contains($"stress-on open=33 max={Max}", on[0]);

            // The attack: a byte a second on every slow socket, never a line end, until the server cuts it.
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            Task<TimeSpan>[] trickles = [.. slow.Select(s => TrickleUntilCutAsync(s, onset, stop.Token))];

            // Real clients meanwhile: greeted and their mail taken, under the stress timeout per command.
            for (int i = 0; i < 3; i++)
            {
                await using SmtpConnection c = await server.OpenSessionAsync();
                await c.CommandAsync("EHLO real.example", 250);
                await c.CommandAsync($"MAIL FROM:<real{i}@example.org>", 250);
                await c.CommandAsync("RCPT TO:<rcpt@example.com>", 250);
                await c.CommandAsync("DATA", 354);
                await c.SendAsync($"Subject: real {i}\r\n\r\nbody\r\n.\r\n");
                await c.ExpectAsync(250);
                await c.CommandAsync("QUIT", 221);
            }

            TimeSpan[] cutAfter = await Task.WhenAll(trickles);
            // Within the stress timeout of the onset, give or take the one-second sweep (and this machine's load).
            Assert.All(cutAfter, t => Assert.InRange(t.TotalSeconds, 0, StressSeconds + 2.5));
            Assert.Contains($"stress-off open=", (await server.WaitForLinesAsync(" stress-off "))[0]);
            Assert.True(server.LinesWith("request-timeout").Length >= Slow, server.Log);

            Dictionary<string, double> m = MetricsScrape.Samples(await MetricsScrape.ScrapeAsync(metricsPort));
            Assert.Equal(0, m["edgemta_stress"]);
            Assert.Equal(1, m["edgemta_stress_total"]);
            Assert.True(m["edgemta_request_timeouts_total{phase=\"command\"}"] >= Slow);
        }
        finally
        {
            foreach (Socket s in slow) s.Dispose();
        }
        Assert.Equal(3, (await server.StopAndExportAsync()).Count);
    }

    private static async Task<Socket> ConnectRawAsync(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = new CancellationTokenSource(SmtpConnection.ReadTimeout);
        await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
        return s;
    }

    private static async Task<string> ReadSomeAsync(Socket s)
    {
        var buffer = new byte[1024];
        using var timeout = new CancellationTokenSource(SmtpConnection.ReadTimeout);
        int n = await s.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    /// <summary>One byte a second ("EHLO" never ends) until the server's 421 4.4.2 and FIN; returns when that came,
    /// measured from the stress onset. Bounded by <paramref name="stop"/>.</summary>
    private static async Task<TimeSpan> TrickleUntilCutAsync(Socket s, Stopwatch onset, CancellationToken stop)
    {
        var buffer = new byte[1024];
        var said = new StringBuilder();
        Task<int> reading = s.ReceiveAsync(buffer, SocketFlags.None, stop).AsTask();
        while (true)
        {
            try
            {
                await s.SendAsync("E"u8.ToArray(), SocketFlags.None, stop);
            }
            catch (SocketException)
            {
                // closed under us: the reply and FIN are read below
            }
            Task delay = Task.Delay(TimeSpan.FromSeconds(1), stop);
            if (await Task.WhenAny(reading, delay) != reading) continue;
            int n = await reading;
            if (n == 0)
            {
                Assert.StartsWith("421 4.4.2 ", said.ToString());
                return onset.Elapsed;
            }
            said.Append(Encoding.ASCII.GetString(buffer, 0, n));
            reading = s.ReceiveAsync(buffer, SocketFlags.None, stop).AsTask();
        }
    }
}
