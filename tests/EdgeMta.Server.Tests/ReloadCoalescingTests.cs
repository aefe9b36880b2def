// A SIGHUP storm costs at most two reloads, never two at once (ServerReload's contract). The recipient file
// is a named pipe here: a reload blocks opening it until the test writes, so the test holds a reload in flight
// exactly as long as it likes, with no sleep and no timing margin.
using System.Diagnostics;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Transport;

namespace EdgeMta.Server.Tests;

public sealed class ReloadCoalescingTests
{
    [Fact]
    public async Task AHundredRequestsDuringAReloadCostOneMoreReloadThatReadsTheFileAfterThem()
    {
        using var harness = new ServerHarness(verbose: false);
        string dir = Directory.CreateTempSubdirectory("edgemta-reload-").FullName;
        string fifo = Path.Combine(dir, "recipients");
        using (Process mkfifo = Process.Start("mkfifo", [fifo]))
        {
            Assert.True(mkfifo.WaitForExit(ServerHarness.Bound) && mkfifo.ExitCode == 0, "mkfifo failed");
        }
        var options = new ServerOptions { RecipientsFile = fifo, Domains = ["example.com"] };
        await using var transport = new TransportServer(new TransportOptions(), harness.Context);
        var reload = new ServerReload(options, harness.Context, transport, harness.Log);

        reload.Request();                      // the first reload opens the pipe and waits for a writer
        for (int i = 0; i < 100; i++) reload.Request();
        await FeedAsync(fifo, "first@example.com\n");
        // The first reload has closed the pipe once its directory is in force; a writer opening before that
        // would meet the first reader still there and its text would be lost with the pipe.
        await WaitUntilAsync(() => harness.Context.Directory.EntryCount == 1);
        await FeedAsync(fifo, "second@example.com\nthird@example.com\n"); // only the one pending reload reads again

        await WaitUntilAsync(() => reload.Idle);
        Assert.Equal(2, harness.Context.Directory.EntryCount);
        Assert.Equal(RecipientVerdict.Accept, Lookup(harness.Context.Directory, "third@example.com"));
        string log = harness.LogText();
        Assert.Equal(2, log.Split('\n').Count(l => l.Contains(" 60 reloaded ", StringComparison.Ordinal)));
        Directory.Delete(dir, recursive: true);
    }

    // Opening a pipe for writing waits for its reader: bounded, so a reload that never comes fails the test.
    private static async Task FeedAsync(string fifo, string text)
    {
        await Task.Run(() =>
        {
            using var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write);
            writer.Write(Encoding.ASCII.GetBytes(text));
        }).WaitAsync(ServerHarness.Bound);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < ServerHarness.Bound, "the reloads never settled");
            await Task.Delay(10);
        }
    }

    private static RecipientVerdict Lookup(RecipientDirectory directory, string address) =>
        directory.Lookup(Encoding.ASCII.GetBytes(address), address.IndexOf('@'), out _);
}
