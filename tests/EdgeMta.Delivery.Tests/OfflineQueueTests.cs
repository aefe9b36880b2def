// The queue commands with no server (OfflineQueue.cs): a real spool and journal, the commands run on them, and
// the journal folded afterwards to see that each action is durable and means what the command said.
using System.Text;
using EdgeMta.Delivery;
using EdgeMta.Spool;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

public class OfflineQueueTests
{
    private static readonly FakeClock Clock = new();

    private sealed record Stored(string Id, long Segment, long Offset);

    private static async Task<string> Write(MessageSpool spool, string sender, params string[] rcpts)
    {
        var m = spool.Begin("192.0.2.1"u8, "client.example"u8, Encoding.UTF8.GetBytes(sender), ""u8);
        foreach (string r in rcpts) m.AddRecipient(Encoding.UTF8.GetBytes(r), ""u8);
        m.Append("Subject: x\r\n\r\nhello\r\n"u8);
        string id = Encoding.ASCII.GetString(m.QueueId);
        Assert.Equal(CommitResult.Committed, await m.CommitAsync());
        return id;
    }

    // Three messages: A (two recipients), B (one, delivered per the journal), C (a bounce: null sender).
    private static async Task<(Stored A, Stored B, Stored C)> Fill(string dir)
    {
        string a, b, c;
        var options = new SpoolOptions { Directory = dir, SegmentSize = 1 << 20, FirstBufferSize = 4096, MinimumFreeBytes = 0 };
        await using (var spool = MessageSpool.Open(options, out _))
        {
            a = await Write(spool, "a@example.org", "x@example.net", "y@example.net");
            b = await Write(spool, "b@example.org", "z@example.net");
            c = await Write(spool, "", "a@example.org");
        }
        var places = new Dictionary<string, Stored>();
        SpoolReader.Read(dir, (in SpoolRecord r) => places.Add(r.QueueIdString, new Stored(r.QueueIdString, SpoolRecovery.SequenceOf(r.Segment), r.Offset)));
        Stored sa = places[a], sb = places[b];
        using (var journal = DeliveryJournal.Open(dir))
        {
            long next = Clock.GetUtcNow().AddMinutes(5).ToUnixTimeMilliseconds();
            Assert.Equal(0, journal.Append(
            [
                new JournalRecord(JournalRecordType.Deferred, sa.Segment, sa.Offset, a, 0, 2, 451, 4, 3, 0, false, 1, next),
                new JournalRecord(JournalRecordType.Delivered, sa.Segment, sa.Offset, a, 1, 2, 250, 2, 0, 0, false, 1, 0),
                new JournalRecord(JournalRecordType.Delivered, sb.Segment, sb.Offset, b, 0, 1, 250, 2, 0, 0, false, 1, 0),
            ]));
        }
        return (sa, sb, places[c]);
    }

    private static JournalFold Fold(string dir)
    {
        var fold = new JournalFold();
        JournalReader.Read(dir, fold);
        return fold;
    }

    private static QueueResult Run(string dir, QueueVerb verb, bool all = false, bool json = false, params string[] ids)
        => new OfflineQueue(dir, Clock).RunAsync(new QueueRequest(verb, json, all, ids), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    [Fact]
    public async Task ListShowsWhatIsLeftWithEachRecipientsFoldedState()
    {
        using var dir = new ShortTempDir();
        var (a, b, c) = await Fill(dir.Path);
        var result = Run(dir.Path, QueueVerb.List);
        Assert.Equal(0, result.ExitCode);
        string[] lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length);   // A and its two recipients, C and its one; B is delivered
        Assert.StartsWith(a.Id + " ", lines[0]);
        Assert.EndsWith(" a@example.org", lines[0]);
        Assert.Equal("  x@example.net deferred attempts=2 next=2026-11-22T07:35:15Z reply=451", lines[1]);
        Assert.Equal("  y@example.net delivered attempts=2 next=- reply=250", lines[2]);
        Assert.StartsWith(c.Id + " ", lines[3]);
        Assert.EndsWith(" <>", lines[3]);
        Assert.Equal("  a@example.org pending attempts=0 next=- reply=-", lines[4]);
        Assert.DoesNotContain(b.Id, result.Output);
    }

    [Fact]
    public async Task HoldAndReleaseAreJournalledAndShownAndAnAlreadyHeldMessageGetsNoRecord()
    {
        using var dir = new ShortTempDir();
        var (a, _, c) = await Fill(dir.Path);
        Assert.Equal(new QueueResult(0, $"{a.Id}: held\n"), Run(dir.Path, QueueVerb.Hold, ids: a.Id));
        Assert.True(Fold(dir.Path).Find(a.Id)!.Held);
        long records = JournalReader.Read(dir.Path, new JournalFold()).Records;
        var again = Run(dir.Path, QueueVerb.Hold, all: true);
        Assert.Equal($"{a.Id}: already held\n{c.Id}: held\n", again.Output);
        Assert.Equal(records + 1, JournalReader.Read(dir.Path, new JournalFold()).Records);
        string list = Run(dir.Path, QueueVerb.List).Output;
        Assert.Contains("  x@example.net held attempts=2", list);
        Assert.Contains("  y@example.net delivered", list);   // final stays final while held

        Assert.Equal(0, Run(dir.Path, QueueVerb.Release, ids: [a.Id, c.Id]).ExitCode);
        var fold = Fold(dir.Path);
        Assert.False(fold.Find(a.Id)!.Held);
        Assert.False(fold.Find(c.Id)!.Held);
        Assert.Equal($"{a.Id}: not held\n", Run(dir.Path, QueueVerb.Release, ids: a.Id).Output);
    }

    [Fact]
    public async Task DeleteTakesTheWholeMessageOutOfTheQueueForGood()
    {
        using var dir = new ShortTempDir();
        var (a, _, c) = await Fill(dir.Path);
        Assert.Equal(new QueueResult(0, $"{a.Id}: deleted (no bounce)\n"), Run(dir.Path, QueueVerb.Delete, ids: a.Id));
        var m = Fold(dir.Path).Find(a.Id)!;
        Assert.True(m.Deleted);
        Assert.True(m.AllFinal(2));
        string list = Run(dir.Path, QueueVerb.List).Output;
        Assert.DoesNotContain(a.Id, list);
        Assert.Contains(c.Id, list);
        Assert.Equal(1, Run(dir.Path, QueueVerb.Show, ids: a.Id).ExitCode);
    }

    [Fact]
    public async Task BounceFailsOnlyThePendingRecipientsWith550AndSaysTheServerSendsIt()
    {
        using var dir = new ShortTempDir();
        var (a, _, c) = await Fill(dir.Path);
        var result = Run(dir.Path, QueueVerb.Bounce, all: true);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"{a.Id}: 1 recipients failed (5.0.0); the server sends the bounce when it next starts\n"
            + $"{c.Id}: 1 recipients failed (5.0.0); no bounce for a null sender\n", result.Output);
        var fold = Fold(dir.Path);
        var x = fold.Find(a.Id)!.Recipient(0);
        Assert.Equal((RecipientState.Failed, (ushort)550, (ushort)2), (x.State, x.ReplyCode, x.Attempts));
        Assert.Equal(RecipientState.Delivered, fold.Find(a.Id)!.Recipient(1).State);   // never undone
        Assert.Equal(RecipientState.Failed, fold.Find(c.Id)!.Recipient(0).State);
        Assert.Equal("", Run(dir.Path, QueueVerb.List).Output);
    }

    [Fact]
    public async Task UnknownIdsAreExitOneAndTheOthersAreStillDone()
    {
        using var dir = new ShortTempDir();
        var (a, b, _) = await Fill(dir.Path);
        var result = Run(dir.Path, QueueVerb.Hold, ids: ["NOSUCHID", b.Id, a.Id]);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"NOSUCHID: not in the queue\n{b.Id}: not in the queue\n{a.Id}: held\n", result.Output);
        Assert.True(Fold(dir.Path).Find(a.Id)!.Held);
        Assert.False(Fold(dir.Path).Find(b.Id)!.Held);
    }

    [Fact]
    public async Task ShowGivesTheEnvelopeAndFlushSaysTheServerTriesAtStart()
    {
        using var dir = new ShortTempDir();
        var (a, _, _) = await Fill(dir.Path);
        var show = Run(dir.Path, QueueVerb.Show, ids: a.Id);
        Assert.Equal(0, show.ExitCode);
        Assert.Contains($"id: {a.Id}\n", show.Output);
        Assert.Contains("recipient 1: x@example.net\n  state: deferred\n  attempts: 2\n", show.Output);
        Assert.Contains("  last reply: 451\n", show.Output);
        var flush = Run(dir.Path, QueueVerb.Flush);
        Assert.Equal(0, flush.ExitCode);
        Assert.Contains("it tries deferred mail when it starts", flush.Output);
        Assert.Equal(1, Run(dir.Path, QueueVerb.Flush, ids: "NOSUCHID").ExitCode);
    }

    [Fact]
    public async Task ASpoolInUseNoSpoolAndBadUsageAreExitTwo()
    {
        using var dir = new ShortTempDir();
        await Fill(dir.Path);
        var options = new SpoolOptions { Directory = dir.Path, SegmentSize = 1 << 20, MinimumFreeBytes = 0 };
        await using (var spool = MessageSpool.Open(options, out _))
        {
            var busy = Run(dir.Path, QueueVerb.List);
            Assert.Equal(2, busy.ExitCode);
            Assert.Contains("in use by another process", busy.Output);
        }
        var none = Run(Path.Combine(dir.Path, "missing"), QueueVerb.List);
        Assert.Equal((2, true), (none.ExitCode, none.Output.StartsWith("error: no spool at", StringComparison.Ordinal)));
        Assert.Equal(2, Run(dir.Path, QueueVerb.Delete).ExitCode);   // neither ids nor --all
        Assert.Equal(0, Run(dir.Path, QueueVerb.List).ExitCode);     // the lock was let go each time
    }
}
