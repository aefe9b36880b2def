// Contract: bytes a piece of code allocates once warm, measured on the calling thread (no time involved).
//
// Warm means static tables built, buffers grown to size and the JIT's tiering settled. The last is not in
// the test's hands: a tier-up or an on-stack replacement landing inside the measured runs can charge a few
// bytes to the thread once (seen once in a full suite on a loaded 2-core machine). So the runs are measured
// in rounds and the least a round allocated is returned: code that allocates per call allocates in every
// round and is still caught; the runtime's one-off is not blamed on it.
namespace EdgeMta.TestKit;

public static class Allocations
{
    /// <summary>Runs <paramref name="run"/> twice to warm it, then in up to <paramref name="rounds"/> rounds of
    /// <paramref name="runsPerRound"/>; returns the fewest bytes one round allocated (0 ends the rounds).</summary>
    public static long SteadyStateBytes(Action run, int runsPerRound = 10, int rounds = 3)
    {
        run();
        run();
        long least = long.MaxValue;
        for (int r = 0; r < rounds && least > 0; r++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < runsPerRound; i++)
            {
                run();
            }
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}
