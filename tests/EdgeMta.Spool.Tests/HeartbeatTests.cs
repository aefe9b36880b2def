// The flusher's heartbeat (MessageSpool.Flusher.cs): an idle flusher still stamps it, a flusher stuck in a
// flush does not. The service watchdog (the host's) relies on exactly these two facts. Waits are bounded
// polls on the stamp itself; the flusher is stalled by blocking it inside the injected flush hook.
using System.Diagnostics;

namespace EdgeMta.Spool.Tests;

public class HeartbeatTests
{
    private static SpoolOptions Options(string dir, SpoolSync sync = SpoolSync.Always) =>
        new() { Directory = dir, SegmentSize = 1 << 20, Sync = sync, MaxMessageSize = 1 << 20, MinimumFreeBytes = 0, HeartbeatPeriodMs = 10 };

    [Fact]
    public async Task AnIdleFlusherKeepsStampingItsHeartbeat()
    {
        using var dir = new TempDir(TempDir.FastParent);
        await using var spool = MessageSpool.Open(Options(dir.Path), out _);
        long first = spool.FlusherHeartbeat;
        // Nothing is committed: only the bounded idle wait can move the stamp. 10 ms period, 5 s bound.
        Assert.True(await Until(() => spool.FlusherHeartbeat != first), "an idle flusher never stamped its heartbeat again");
        Assert.True(spool.FlusherHeartbeat > first);
    }

    [Fact]
    public async Task AFlusherStuckInAFlushStopsItsHeartbeat()
    {
        using var dir = new TempDir(TempDir.FastParent);
        await using var spool = MessageSpool.Open(Options(dir.Path), out _);
        using var inFlush = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        spool.InjectFlushError = () => { inFlush.Set(); release.Wait(TimeSpan.FromSeconds(30)); return 0; };
        Task<(CommitResult, string)> commit = TestSpools.Write(spool, seed: 1, size: 100);
        Assert.True(inFlush.Wait(TimeSpan.FromSeconds(5)), "the flush never started");
        long stuck = spool.FlusherHeartbeat;
        // Fifty idle periods: a flusher that could beat would have stamped many times by now.
        long until = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
        while (Stopwatch.GetTimestamp() < until) await Task.Delay(10);
        Assert.Equal(stuck, spool.FlusherHeartbeat);

        release.Set();
        spool.InjectFlushError = null;
        Assert.Equal(CommitResult.Committed, (await commit.WaitAsync(TimeSpan.FromSeconds(5))).Item1);
        Assert.True(await Until(() => spool.FlusherHeartbeat != stuck), "the flusher did not beat again after the flush returned");
    }

    [Fact]
    public async Task WithoutAFlusherTheHeartbeatIsAlwaysNow()
    {
        using var dir = new TempDir(TempDir.FastParent);
        await using var spool = MessageSpool.Open(Options(dir.Path, SpoolSync.None), out _);
        long before = Stopwatch.GetTimestamp();
        Assert.True(spool.FlusherHeartbeat >= before);
    }

    private static async Task<bool> Until(Func<bool> condition)
    {
        for (int i = 0; i < 500; i++)
        {
            if (condition()) return true;
            await Task.Delay(10);
        }
        return condition();
    }
}
