using System.Diagnostics;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// Bounded waits on the server's log (stdout, drained by <see cref="EdgeMtaProcess"/>): a line the test
/// expects is awaited, never slept for. The log writer flushes every 50 ms, so lines appear within that
/// of the event; the bound is a hang detector, far above it.
/// </summary>
public static class LogWait
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>Stdout lines that contain <paramref name="marker"/> (stderr lines are prefixed `err|`).</summary>
    public static string[] LinesWith(this EdgeMtaProcess server, string marker) =>
        server.Log.Split('\n').Where(l => l.StartsWith("out| ", StringComparison.Ordinal) && l.Contains(marker, StringComparison.Ordinal)).ToArray();

    /// <summary>Waits until at least <paramref name="count"/> stdout lines contain <paramref name="marker"/>;
    /// fails the test, with the log, past <see cref="Bound"/> or if the server exits first.</summary>
    public static async Task<string[]> WaitForLinesAsync(this EdgeMtaProcess server, string marker, int count = 1)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            string[] lines = server.LinesWith(marker);
            if (lines.Length >= count) return lines;
            if (server.HasExited || clock.Elapsed > Bound)
            {
                Assert.Fail($"waited for {count} log line(s) with `{marker}`, saw {lines.Length} " +
                            $"({(server.HasExited ? "the server exited" : $"after {Bound.TotalSeconds} s")})\n{server.Log}");
            }
            await Task.Delay(20);
        }
    }
}
