using System.Diagnostics;
using System.Runtime.InteropServices;
using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// A full disk while delivering (docs/DELIVERY.md "Guarantees": nothing acknowledged is lost across a full disk),
/// two ways:
/// - A small tmpfs the test mounts, filled by a filler file: the ENOSPC of ext4, xfs or tmpfs, where blocks
///   already allocated stay writable. New mail gets 452 4.3.1 (RFC 3463 §3.4, RFC 5321 §4.2.5) at MAIL, DATA or
///   the end of the data, never a 5xx; the queued mail goes on to the next hop; the bounce for a recipient the
///   hop fails with 5xx goes out (it fits in the spool's allocated segment, or waits for space); a recipient the
///   hop defers with 4xx is delivered later.
/// - faultfs in enospc mode: every write fails, allocated or not, as on a copy-on-write filesystem (btrfs, ZFS)
///   or a thin volume. The bounce cannot be spooled: it waits (a `delivery-trouble` line) and goes out once space
///   is back; a delivery whose journal record fails is sent again, counted as a possible duplicate.
/// Both end with every acknowledged recipient delivered (more than once only with a possible-duplicate line)
/// or failed with its bounce delivered. Deliberately not: space running out in the middle of one message's data
/// (SpoolFailureTests, StorageFaultTests). The tmpfs needs root (mount(8)), faultfs needs FUSE; each test is
/// skipped with the reason otherwise. The tmpfs is unmounted in finally (lazily if still busy).
/// </summary>
public sealed partial class RelayDiskFullTests(FaultFsMount fs, ITestOutputHelper output) : IClassFixture<FaultFsMount>
{
    private const string Sender = "sender@example.org", Rejected = "gone@example.test", Deferred = "later@example.test";
    // The spool holds its segment and the next one ready (64 MiB each, allocated) and keeps one segment plus one
    // largest message free (SpoolOptions.MinimumFreeBytes): 128 + 65 MiB, and room for the test's mail. 1 MiB
    // messages keep that floor, and the RAM the tmpfs takes, small.
    private const string MountSize = "256m", MaxMessage = "1048576";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    // A bounce the spool refused is tried again after 30 s (DeliveryAgent's BounceRetry), plus the retry's own wait.
    private static readonly TimeSpan BounceBound = TimeSpan.FromSeconds(60);

    [RootFact]
    public async Task DeliveriesGoOnNewMailGets452AndTheBounceGoesOut()
    {
        string root = Directory.CreateTempSubdirectory("edgemta-full-").FullName;
        string mount = Path.Combine(root, "mnt");
        Directory.CreateDirectory(mount);
        ToolResult mounted = await ToolRun.RunAsync("mount", ["-t", "tmpfs", "-o", $"size={MountSize}", "edgemta-full", mount], Bound, output);
        Assert.True(mounted.ExitCode == 0, $"mount -t tmpfs failed\n{mounted}");
        try
        {
            await RunAsync(Path.Combine(mount, "spool"), Path.Combine(mount, "filler"));
        }
        finally
        {
            ToolResult u = await ToolRun.RunAsync("umount", [mount], Bound, output);
            if (u.ExitCode != 0) await ToolRun.RunAsync("umount", ["-l", mount], Bound, output);
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private async Task RunAsync(string spool, string filler)
    {
        // The hop is down while the queue fills, so the deliveries happen once the disk is full. Later it fails
        // one recipient (5xx: a bounce is due) and defers another (4xx) until the disk has room again.
        var down = true;
        var spaceBack = false;
        await using var hop = ScriptedHop.Start(rule: e =>
            e.Step == HopStep.Connect && Volatile.Read(ref down) ? "421 4.3.2 down for now"
            : e.Step == HopStep.Rcpt && e.Line.Contains(Rejected, StringComparison.OrdinalIgnoreCase) ? "550 5.1.1 no such user"
            : e.Step == HopStep.Rcpt && e.Line.Contains(Deferred, StringComparison.OrdinalIgnoreCase) && !Volatile.Read(ref spaceBack) ? "450 4.2.1 try later"
            : null);
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
            ["--hostname", "edge.test", "--relay", hop.Url, "--retry-min", "1s", "--retry-max", "2s", "--max-message-size", MaxMessage], spool: spool);

        string[] plain = [.. Enumerable.Range(0, 6).Select(i => $"r{i}@example.test")];
        var acknowledged = new List<SentMessage>();
        foreach (string r in plain) acknowledged.Add(await server.SendAsync(Sender, [r], RelayClient.Message("before " + r)));
        acknowledged.Add(await server.SendAsync(Sender, ["kept@example.test", Rejected], RelayClient.Message("half fails")));
        acknowledged.Add(await server.SendAsync(Sender, [Deferred], RelayClient.Message("deferred")));
        await server.WaitForEventsAsync("relay-dead", bound: Bound);

        long filled = Fill(filler);
        output.WriteLine($"filler: {filled} bytes; free now {FreeBytes(filler)} bytes");
        SmtpReply refused = await RefusedWhileFullAsync(server);
        Assert.True(refused.Code == 452 && refused.Enhanced == "4.3.1", $"New mail on a full spool: 452 4.3.1, got `{refused}`");

        Volatile.Write(ref down, false);
        string[] delivered = [.. plain, "kept@example.test"];
        await hop.WaitUntilAsync(h => delivered.All(r => h.DeliveriesTo(r).Length >= 1), "the queued mail, on a full disk", Bound, () => server.Log);
        await server.WaitForEventsAsync("failed", where: l => l["rcpt"].Contains(Rejected, StringComparison.OrdinalIgnoreCase), bound: Bound);
        // The bounce is a new message in the spool. The spool writes it into the segment it already allocated, or,
        // with no room there either, it waits and says so; never lost, never dropped.
        var clock = Stopwatch.StartNew();
        while (hop.DeliveriesTo(Sender).Length == 0 && !HasLine(server, "delivery-trouble", "bounce"))
        {
            Assert.True(clock.Elapsed < Bound, $"the bounce neither went out nor waited with a line within {Bound.TotalSeconds} s\n{server.Log}");
            await Task.Delay(50);
        }
        string bouncePath = hop.DeliveriesTo(Sender).Length > 0 ? "spooled in allocated room and delivered while full" : "waited for space";
        Assert.True(FreeBytes(filler) < 1 << 20, "the disk was not full meanwhile: the test proves nothing");

        File.Delete(filler);
        Volatile.Write(ref spaceBack, true);
        await hop.WaitUntilAsync(h => h.DeliveriesTo(Sender).Length >= 1 && h.DeliveriesTo(Deferred).Length >= 1,
            "the bounce and the deferred recipient, once space is back", BounceBound, () => server.Log);
        HopTransaction bounce = Assert.Single(hop.DeliveriesTo(Sender));
        Assert.Equal("", bounce.Sender);   // MAIL FROM:<> (docs/DELIVERY.md "Bounces")
        Assert.Contains(Rejected, bounce.Text, StringComparison.OrdinalIgnoreCase);

        SentMessage after = await SendOnceReadyAsync(server, "after@example.test");
        await hop.WaitUntilAsync(h => h.DeliveriesTo("after@example.test").Length >= 1, "new mail once space is back", Bound, () => server.Log);

        // Nothing acknowledged lost: each recipient delivered (once, bar a logged possible duplicate) or bounced.
        int duplicatesLogged = server.Events("possible-duplicate").Length;
        foreach (string r in (string[])[.. delivered, Deferred, "after@example.test"])
        {
            int copies = hop.DeliveriesTo(r).Length;
            Assert.True(copies == 1 || (copies > 1 && duplicatesLogged > 0), $"{r}: {copies} copies, {duplicatesLogged} possible-duplicate line(s)\n{server.Log}");
        }
        Assert.Empty(hop.DeliveriesTo(Rejected));
        Assert.Equal(acknowledged.Count + 1, acknowledged.Append(after).Select(s => s.QueueId).Distinct().Count());
        output.WriteLine($"refused while full: `{refused}`; the bounce {bouncePath}; {server.Events("delivery-trouble").Length} delivery-trouble line(s); " +
                         $"{hop.DeliveredCount} deliveries at the hop");
    }

    // With --relay the server binds control.sock in the spool directory (docs/DELIVERY.md "Queue commands"):
    // faultfs.py passes mknod through for it.
    [FaultFsFact]
    public async Task OnADiskWhereEveryWriteFailsTheBounceWaitsAndNothingIsLost()
    {
        var (spool, _) = fs.NewSpool();
        var down = true;
        await using var hop = ScriptedHop.Start(rule: e =>
            e.Step == HopStep.Connect && Volatile.Read(ref down) ? "421 4.3.2 down for now"
            : e.Step == HopStep.Rcpt && e.Line.Contains(Rejected, StringComparison.OrdinalIgnoreCase) ? "550 5.1.1 no such user"
            : null);
        try
        {
            await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output,
                ["--hostname", "edge.test", "--relay", hop.Url, "--retry-min", "1s", "--retry-max", "2s"], spool: spool);
            string[] plain = [.. Enumerable.Range(0, 4).Select(i => $"r{i}@example.test")];
            foreach (string r in plain) await server.SendAsync(Sender, [r], RelayClient.Message("before " + r));
            await server.SendAsync(Sender, ["kept@example.test", Rejected], RelayClient.Message("half fails"));
            await server.WaitForEventsAsync("relay-dead", bound: Bound);

            await fs.SetModeAsync("enospc");
            SmtpReply refused = await RefusedWhileFullAsync(server);
            Assert.True(refused.Code == 452 && refused.Enhanced == "4.3.1", $"New mail on a full spool: 452 4.3.1, got `{refused}`");

            Volatile.Write(ref down, false);
            string[] delivered = [.. plain, "kept@example.test"];
            await hop.WaitUntilAsync(h => delivered.All(r => h.DeliveriesTo(r).Length >= 1), "the queued mail, with every write failing", Bound, () => server.Log);
            // Every delivery made now is one the journal cannot hold: the agent stops starting attempts (one line)
            // rather than send the same messages again every --retry-min, and the bounce waits with them.
            await WaitForLineAsync(server, "delivery-trouble", "journal cannot be written", Bound);
            Assert.Empty(hop.DeliveriesTo(Sender));
            await Task.Delay(TimeSpan.FromSeconds(4));   // four --retry-min intervals of 1 s
            foreach (string r in delivered)
            {
                // The first copy, and at most one more from an attempt already running when the journal failed.
                Assert.True(hop.DeliveriesTo(r).Length <= 2, $"{r}: {hop.DeliveriesTo(r).Length} copies while the journal could not be written\n{server.Log}");
            }

            await fs.SetModeAsync("ok");
            await hop.WaitUntilAsync(h => h.DeliveriesTo(Sender).Length >= 1, "the bounce, once writes succeed again", BounceBound, () => server.Log);
            HopTransaction bounce = hop.DeliveriesTo(Sender)[0];
            Assert.Equal("", bounce.Sender);
            Assert.Contains(Rejected, bounce.Text, StringComparison.OrdinalIgnoreCase);
            Assert.Empty(hop.DeliveriesTo(Rejected));
            // A delivery whose Delivered record could not be written is sent again (never assumed done): allowed only
            // with a possible-duplicate line (docs/DELIVERY.md "Guarantees").
            int duplicatesLogged = server.Events("possible-duplicate").Length;
            foreach (string r in delivered)
            {
                int copies = hop.DeliveriesTo(r).Length;
                Assert.True(copies == 1 || duplicatesLogged > 0, $"{r}: {copies} copies, no possible-duplicate line\n{server.Log}");
            }
            Assert.True(hop.DeliveriesTo(Sender).Length == 1 || duplicatesLogged > 0, $"{hop.DeliveriesTo(Sender).Length} bounces, no possible-duplicate line");
            output.WriteLine($"enospc: refused `{refused}`; {server.Events("delivery-trouble").Length} delivery-trouble line(s); " +
                             $"{duplicatesLogged} possible-duplicate line(s); {hop.DeliveredCount} deliveries at the hop");
        }
        finally
        {
            await fs.SetModeAsync("ok");   // before the server's disposal, which would otherwise fail to write
        }
    }

    /// <summary>One message once the spool takes mail again: it reads free space at most once a second
    /// (SpoolOptions.FreeSpaceCheckIntervalMs), so the first tries after space is back may still get 452 4.3.1.</summary>
    private static async Task<SentMessage> SendOnceReadyAsync(EdgeMtaProcess server, string recipient)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            await using SmtpConnection c = await server.OpenSessionAsync();
            await c.CommandAsync("EHLO after.example", 250);
            SmtpReply mail = await c.CommandAsync("MAIL FROM:<" + Sender + ">");
            if (mail.Code == 250)
            {
                await c.CommandAsync($"RCPT TO:<{recipient}>", 250);
                await c.CommandAsync("DATA", 354);
                byte[] message = RelayClient.Message("after " + recipient);
                await c.SendAsync(message);
                SmtpReply done = await c.CommandAsync(".", 250);
                return new SentMessage(done.QueueId ?? "", message, Sender, [recipient]);
            }
            Assert.True(mail.Code == 452 && clock.Elapsed < Bound, $"MAIL once space is back: 250 within {Bound.TotalSeconds} s, got `{mail}`\n{server.Log}");
            await Task.Delay(200);   // a client's pause before it tries again; bounded by Bound above
        }
    }

    /// <summary>Writes zeros until the filesystem refuses (ENOSPC), 1 MiB then 4 KiB at a time; bounded by the mount's size.</summary>
    private static long Fill(string path)
    {
        long written = 0;
        using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        foreach (int chunk in (int[])[1 << 20, 4096])
        {
            byte[] zeros = new byte[chunk];
            try
            {
                while (written < 1L << 30)
                {
                    f.Write(zeros);
                    f.Flush();
                    written += chunk;
                }
            }
            catch (IOException)
            {
                // ENOSPC: this chunk size no longer fits. The partial write (if any) is dropped with the buffer.
            }
        }
        return written;
    }

    /// <summary>New mail while the spool is full: the first refusal, at MAIL, DATA or the end of the data. The spool reads
    /// free space at most once a second (SpoolOptions.FreeSpaceCheckIntervalMs), so the first tries may still pass.</summary>
    private static async Task<SmtpReply> RefusedWhileFullAsync(EdgeMtaProcess server)
    {
        var clock = Stopwatch.StartNew();
        SmtpReply last = new(0, []);
        for (int i = 0; clock.Elapsed < Bound; i++)
        {
            await using SmtpConnection c = await server.OpenSessionAsync();
            await c.CommandAsync("EHLO full.example", 250);
            last = await c.CommandAsync("MAIL FROM:<" + Sender + ">");
            if (last.Code != 250) return last;
            last = await c.CommandAsync($"RCPT TO:<full{i}@example.test>");
            if (last.Code != 250) return last;
            last = await c.CommandAsync("DATA");   // the spool opens the message here: a refusal may come now
            if (last.Code != 354) return last;
            await c.SendAsync(RelayClient.Message("while full " + i));
            await c.SendAsync(".\r\n");
            last = await c.ReadReplyAsync();
            if (last.Code != 250) return last;
            await Task.Delay(200);   // a pause between clients, not a timing assumption: the loop is bounded by Bound
        }
        return last;
    }

    private static bool HasLine(EdgeMtaProcess server, string eventName, string mentioning) =>
        server.Log.Split('\n').Any(l => l.Contains(eventName, StringComparison.Ordinal) && l.Contains(mentioning, StringComparison.OrdinalIgnoreCase));

    private static async Task WaitForLineAsync(EdgeMtaProcess server, string eventName, string mentioning, TimeSpan bound)
    {
        var clock = Stopwatch.StartNew();
        while (!HasLine(server, eventName, mentioning))
        {
            Assert.True(clock.Elapsed < bound, $"no `{eventName}` line mentioning `{mentioning}` within {bound.TotalSeconds} s\n{server.Log}");
            await Task.Delay(50);
        }
    }

    private static long FreeBytes(string pathOnMount)
    {
        var d = new DriveInfo(Path.GetDirectoryName(pathOnMount)!);
        return d.AvailableFreeSpace;
    }
}

/// <summary>A fact that needs root (mount(8) for a tmpfs): skipped, with the reason, otherwise.</summary>
public sealed partial class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (GetEuid() != 0) Skip = "needs root to mount a tmpfs";
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}
