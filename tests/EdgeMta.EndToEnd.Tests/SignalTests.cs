using System.Diagnostics;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Signals against the running binary (docs/PROTOCOL.md "Operations"): only SIGTERM, SIGINT and SIGKILL stop
/// it. SIGHUP reloads; the rest whose default would end the process are ignored with a rate-limited log line.
/// Before, SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM ended it with exit 129, 138, 140 and 142.
/// </summary>
public sealed class SignalTests(ITestOutputHelper output)
{
    // Linux x86-64 numbers; 35 and 64 are SIGRTMIN+1 and SIGRTMAX under glibc (SIGRTMIN, 34, is the runtime's).
    [Theory]
    [InlineData(1, "reloaded")]
    [InlineData(3, "signal=QUIT")]
    [InlineData(10, "signal=USR1")]
    [InlineData(12, "signal=USR2")]
    [InlineData(14, "signal=ALRM")]
    [InlineData(16, "signal=STKFLT")]
    [InlineData(24, "signal=XCPU")]
    [InlineData(25, "signal=XFSZ")]
    [InlineData(26, "signal=VTALRM")]
    [InlineData(27, "signal=PROF")]
    [InlineData(29, "signal=IO")]
    [InlineData(30, "signal=PWR")]
    [InlineData(35, "signal=RTMIN+1")]
    [InlineData(64, "signal=RTMIN+30")]
    public async Task ASignalOtherThanTermOrIntLeavesTheServerServingAndItStillStopsCleanly(int signal, string logged)
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        server.Signal(signal);
        await server.WaitForLinesAsync(logged);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("QUIT", 221);
        }
        Assert.False(server.HasExited, server.Log);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact]
    public async Task AHundredIgnoredSignalsInASecondLogAtMostOneLineASecond()
    {
        const int Signals = 100;
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Signals; i++)
        {
            server.Signal(10);
            // Pacing, not waiting for a result: 10 ms apart the kernel delivers each signal (a tight loop of
            // kill(2) merges them into one pending signal, and would pass without any limit).
            await Task.Delay(10);
        }
        TimeSpan storm = clock.Elapsed;
        await server.WaitForLinesAsync("signal-ignored");
        // A marker after the storm: once its session is served, the storm's handlers have long run.
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("QUIT", 221);
        }
        int lines = server.LinesWith("signal-ignored").Length;
        // One line per second of storm (and one at its start), plus one for handlers run late on a busy machine.
        int allowed = 2 + (int)storm.TotalSeconds;
        Assert.True(lines <= allowed, $"{lines} signal-ignored lines for {Signals} signals in {storm.TotalMilliseconds:F0} ms (at most {allowed})\n{server.Log}");
        Assert.Equal(0, await server.StopAsync());
    }
}
