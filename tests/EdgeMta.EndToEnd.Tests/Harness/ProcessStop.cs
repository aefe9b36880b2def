using System.Diagnostics;
using System.Runtime.InteropServices;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// Stopping a peer the tests started: SIGTERM by its pid (never by name), then a kill if it has not exited
/// within the bound. Every wait is bounded; a peer that outlives both fails the test's disposal.
/// </summary>
internal static partial class ProcessStop
{
    private const int SIGTERM = 15;

    /// <summary>True when SIGTERM was not enough and the process was killed.</summary>
    public static async Task<bool> TermThenKillAsync(Process process, TimeSpan bound)
    {
        if (!process.HasExited) _ = Kill(process.Id, SIGTERM);
        try
        {
            await process.WaitForExitAsync().WaitAsync(bound);
            return false;
        }
        catch (TimeoutException)
        {
            try { process.Kill(); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync().WaitAsync(bound);
            return true;
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
