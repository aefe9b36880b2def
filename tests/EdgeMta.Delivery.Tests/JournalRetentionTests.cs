// The delivery journal bounded during a run (FORMAT.md "Delivery journal", "Retention"; "Copy-forward"): a real spool
// with 64 KiB segments and 4 KiB journal files (56 records each), the agent on a fake clock, a scripted next hop. A
// run that delivers many messages keeps a bounded number of journal files; a file naming a segment still in the spool
// stays, and a restart after deletions finds the same queue; a held, partly delivered message copied forward keeps
// its state once the old journal files are gone; and every step of a copy-forward cut by a crash, built on disk with
// the spool's and the journal's own calls, starts to the same state.
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using EdgeMta.Spool;

namespace EdgeMta.Delivery.Tests;

public sealed class JournalRetentionTests
{
    private const long SmallSegment = 64 << 10;
    private const string Stuck = "stuck@example.net";
    private static readonly string Body = "Subject: r\r\n\r\n" + new string('x', 2000) + "\r\n";

    private static DeliveryOptions Small(DeliveryOptions o) => o with { JournalFileSize = 4096 };

    private static DeliveryOptions SmallLongRetry(DeliveryOptions o)
        => Small(o) with { Scheduler = o.Scheduler with { RetryMin = TimeSpan.FromHours(3), RetryMax = TimeSpan.FromHours(3) } };

    private static string JournalDir(AgentRig rig) => Path.Combine(rig.Directory, JournalReader.DirectoryName);

    private static string[] JournalFiles(AgentRig rig) => Directory.GetFiles(JournalDir(rig), "*.jnl");

    /// <summary>Each message in the queue as "id held: address state attempts; ...", sorted: what a restart must give
    /// back (the reply text and the next attempt time are not the journal's to keep exactly).</summary>
    private static async Task<string> QueueState(AgentRig rig)
    {
        var list = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.List, true, false, []), default);
        return Canonical(list.Output);
    }

    private static string Canonical(string json)
    {
        var lines = new List<string>();
        foreach (string line in json.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var text = new StringBuilder().Append(root.GetProperty("id").GetString()).Append(root.GetProperty("held").GetBoolean() ? " held:" : ":");
            foreach (var r in root.GetProperty("recipients").EnumerateArray())
            {
                text.Append(' ').Append(r.GetProperty("address").GetString()).Append(' ').Append(r.GetProperty("state").GetString())
                    .Append(' ').Append(r.GetProperty("attempts").GetInt32()).Append(';');
            }
            lines.Add(text.ToString());
        }
        lines.Sort(StringComparer.Ordinal);
        return string.Join('\n', lines);
    }

    private static async Task SendDelivered(AgentRig rig, TestHop hop, int count)
    {
        int before = hop.Received.Count;
        for (int i = 0; i < count; i++) await rig.Send("a@example.org", Body, $"ok{i}@example.net", $"ok{i}b@example.net");
        Assert.True(await TestHop.Until(() => hop.Received.Count == before + count && rig.Agent.InFlight == 0, 30_000));
    }

    [Fact]
    public async Task A_run_delivering_many_messages_keeps_a_bounded_number_of_journal_files()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop, Small, SmallSegment);
        // 300 messages, two Delivered records each: about 11 files of 56 records over about 12 segments of ~30.
        await SendDelivered(rig, hop, 300);
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0 && JournalFiles(rig).Length <= 4, 10_000),
            $"journal files: {JournalFiles(rig).Length}, deleted {rig.Agent.JournalFilesDeleted}");
        Assert.True(rig.Agent.JournalFilesDeleted >= 6, $"deleted {rig.Agent.JournalFilesDeleted}");
        Assert.Equal(rig.Agent.JournalFilesDeleted, rig.Events.Count("journal-deleted "));
        Assert.Equal(0, rig.Events.Count("trouble"));

        // What is left folds to a queue with nothing in it, and nothing goes twice.
        await rig.Restart();
        Assert.Equal(0, rig.Agent.Recovery.Live);
        rig.Advance(TimeSpan.FromHours(1));
        await Task.Delay(200);
        Assert.Equal(300, hop.Received.Count);
    }

    /// <summary>The journal's file calls, keeping a copy of each journal file before it is deleted: the fold of every
    /// file ever written is what a deletion must not change.</summary>
    private sealed class ArchivingJournalIo(string archive) : SpoolIo
    {
        public override void Delete(string path)
        {
            if (path.EndsWith(".jnl", StringComparison.Ordinal) && File.Exists(path))
            {
                Directory.CreateDirectory(archive);
                File.Copy(path, Path.Combine(archive, Path.GetFileName(path)), overwrite: true);
            }
            base.Delete(path);
        }
    }

    /// <summary>The offline `queue list --json` of a spool at rest, canonical as <see cref="QueueState"/>.</summary>
    private static string OfflineState(string dir)
    {
        var list = new OfflineQueue(dir).RunAsync(new QueueRequest(QueueVerb.List, true, false, []), default).AsTask().GetAwaiter().GetResult();
        return Canonical(list.Output);
    }

    [Fact]
    public async Task Files_naming_a_deferred_message_stay_and_a_restart_after_deletions_finds_the_same_queue()
    {
        string archive = Path.Combine(Path.GetTempPath(), "edgemta-jarchive-" + Guid.NewGuid().ToString("N")[..12]);
        await using var hop = new TestHop { RcptReply = (_, r) => r == Stuck ? "451 4.3.0 try later" : null };
        await using var rig = new AgentRig(hop, o => SmallLongRetry(o) with { JournalIo = new ArchivingJournalIo(archive) }, SmallSegment);
        try
        {
            await SendDelivered(rig, hop, 60);
            // A partly delivered message (one recipient taken, one deferred) and a held one, then more traffic.
            string partial = await rig.Send("a@example.org", Body, "taken@example.net", Stuck);
            Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={partial}") == 1 && rig.Agent.InFlight == 0));
            string held = await rig.Send("a@example.org", Body, Stuck, "other@example.net");
            Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={held}") == 1 && rig.Agent.InFlight == 0));
            Assert.Equal(0, (await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Hold, false, false, [held]), default)).ExitCode);
            string[] pinned = JournalFiles(rig);
            long deletedBefore = rig.Agent.JournalFilesDeleted;
            Assert.True(deletedBefore > 0, "the traffic before the deferred messages must let files go");
            await SendDelivered(rig, hop, 120);
            Assert.True(await TestHop.Until(() => rig.Agent.Count == 2, 5_000));
            // The deferred messages' segment is the oldest in the spool: every file written since names it or a later one.
            Assert.Equal(deletedBefore, rig.Agent.JournalFilesDeleted);
            foreach (string f in pinned) Assert.True(File.Exists(f), $"{Path.GetFileName(f)} names a segment still in the spool");

            string full = "", kept = "";
            await rig.Restart(() =>
            {
                // The spool at rest with every journal file ever written, and as it is: the same queue.
                string scratch = archive + "-full";
                Directory.CreateDirectory(Path.Combine(scratch, JournalReader.DirectoryName));
                foreach (string f in Directory.GetFiles(rig.Directory, "*.seg")) File.Copy(f, Path.Combine(scratch, Path.GetFileName(f)));
                foreach (string f in Directory.GetFiles(archive).Concat(JournalFiles(rig)))
                {
                    File.Copy(f, Path.Combine(scratch, JournalReader.DirectoryName, Path.GetFileName(f)), overwrite: true);
                }
                full = OfflineState(scratch);
                kept = OfflineState(rig.Directory);
                Directory.Delete(scratch, recursive: true);
            });
            Assert.Contains("taken@example.net delivered 1;", full);
            Assert.Contains($"{held} held:", full);
            Assert.Equal(full, kept);
            Assert.Equal(2, rig.Agent.Recovery.Live);
            Assert.Equal(1, rig.Agent.Recovery.Held);
            Assert.Equal(full, await QueueState(rig));
        }
        finally
        {
            try { Directory.Delete(archive, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task A_held_partly_delivered_message_copied_forward_keeps_its_state_once_the_old_files_are_gone()
    {
        await using var hop = new TestHop { RcptReply = (_, r) => r == Stuck ? "451 4.3.0 try later" : null };
        await using var rig = new AgentRig(hop, SmallLongRetry, SmallSegment);
        long first = rig.Spool.FirstNewSegment;
        string id = await rig.Send("a@example.org", Body, "taken@example.net", Stuck);
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={id}") == 1 && rig.Agent.InFlight == 0));
        Assert.Equal(0, (await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Hold, false, false, [id]), default)).ExitCode);
        await SendDelivered(rig, hop, 20);   // the first segment: one live message in 64 KiB (a restart seals it)
        await rig.Restart();
        string[] compacted = JournalFiles(rig);
        string before = await QueueState(rig);
        // The new run's traffic fills segments and rolls the start's file (the only one holding the message's
        // delivered recipient and its Hold, at the old place) before the copy: then every segment that file names goes.
        await SendDelivered(rig, hop, 60);

        rig.Advance(TimeSpan.FromMinutes(62));
        Assert.True(await TestHop.Until(() => rig.Agent.SegmentsCompacted == 1 && !File.Exists(Path.Combine(rig.Directory, $"{first:x16}.seg"))));
        Assert.True(await TestHop.Until(() => compacted.All(f => !File.Exists(f)), 5_000), "the start's journal file must go");
        Assert.Equal(before, await QueueState(rig));

        await rig.Restart();
        Assert.Equal(1, rig.Agent.Recovery.Held);
        Assert.Equal(before, await QueueState(rig));
        int taken = hop.Received.Count(t => t.To.Contains("taken@example.net"));
        Assert.Equal(1, taken);
        hop.RcptReply = (_, _) => null;
        Assert.Equal(0, (await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Release, false, false, [id]), default)).ExitCode);
        for (int i = 0; i < 5 && rig.Agent.Count > 0; i++)
        {
            rig.Advance(TimeSpan.FromHours(3));
            await TestHop.Until(() => rig.Agent.Count == 0, 3_000);
        }
        Assert.Equal(0, rig.Agent.Count);
        Assert.Single(hop.Received, t => t.To.Contains(Stuck));
        Assert.Equal(1, hop.Received.Count(t => t.To.Contains("taken@example.net")));
    }

    private sealed class Places : ISpoolObserver
    {
        public readonly ConcurrentQueue<(long Segment, long Offset, string Id)> Seen = new();
        public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId) => Seen.Enqueue((segment, offset, Encoding.ASCII.GetString(queueId)));
    }

    /// <summary>A copy-forward of a held message with one recipient delivered and one deferred, cut after step
    /// <paramref name="step"/>, built with the spool's and the journal's own calls: 0 the Moved record durable; 1 its
    /// restatement at the new place durable; 2 the old segment deleted; 3 the old journal file deleted (retention).
    /// Returns the queue id and the old segment.</summary>
    private static (string Id, long OldSegment) BuildMoveCutAt(string dir, int step)
    {
        var places = new Places();
        SpoolOptions Options() => new() { Directory = dir, SegmentSize = SmallSegment, MaxMessageSize = 4 << 20, MinimumFreeBytes = 0, Observer = places };
        string id;
        using (var spool = MessageSpool.Open(Options(), out _))
        {
            var m = spool.Begin("192.0.2.1"u8, "client.example"u8, "a@example.org"u8, default);
            m.AddRecipient("taken@example.net"u8, default);
            m.AddRecipient(Encoding.ASCII.GetBytes(Stuck), default);
            m.Append(Encoding.ASCII.GetBytes(Body));
            id = Encoding.ASCII.GetString(m.QueueId);
            Assert.Equal(CommitResult.Committed, m.CommitAsync().AsTask().GetAwaiter().GetResult());
        }
        byte[] envelope = [], data = [];
        long arrival = 0;
        SpoolReader.Read(dir, (in SpoolRecord r) =>
        {
            envelope = r.EncodedEnvelope.ToArray();
            data = r.Data.ToArray();
            arrival = r.ArrivalUnixMs;
        });
        using (var spool = MessageSpool.Open(Options(), out _))
        {
            var copy = spool.BeginCopy(Encoding.ASCII.GetBytes(id), arrival, envelope);
            copy.Append(data);
            Assert.Equal(CommitResult.Committed, copy.CommitAsync().AsTask().GetAwaiter().GetResult());
        }
        var seen = places.Seen.ToArray();
        var (a, b) = (seen.First(p => p.Id == id), seen.Last(p => p.Id == id));
        Assert.True(b.Segment > a.Segment);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), next = now + 3 * 3600_000;
        string oldJournal;
        using (var journal = DeliveryJournal.Open(dir, 4096))
        {
            Assert.Equal(0, journal.Append(new JournalRecord[]
            {
                new(JournalRecordType.Delivered, a.Segment, a.Offset, id, 0, 1, 250, 2, 0, 0, false, now, 0),
                new(JournalRecordType.Deferred, a.Segment, a.Offset, id, 1, 1, 451, 4, 3, 0, false, now, 0),
                new(JournalRecordType.Deferred, a.Segment, a.Offset, id, JournalRecord.WholeMessage, 2, 0, 0, 0, 0, false, now, next),
                new(JournalRecordType.Hold, a.Segment, a.Offset, id, JournalRecord.WholeMessage, 0, 0, 0, 0, 0, false, now, 0),
            }));
            oldJournal = Directory.GetFiles(Path.Combine(dir, JournalReader.DirectoryName), "*.jnl").Max()!;
        }
        var records = new List<JournalRecord> { JournalRecord.Moved(a.Segment, a.Offset, id, b.Segment, b.Offset, now) };
        if (step >= 1)
        {
            // What the agent holds in memory for it, restated by the agent's own code.
            var entry = new QueueEntry(id, a.Segment, a.Offset, arrival, data.Length, 2, false) { Held = true, Attempts = 2, NextAttemptUnixMs = next };
            entry.Recipients[0] = new QueueRecipient { State = RecipientState.Delivered, Attempts = 1, Code = 250 };
            entry.Recipients[1] = new QueueRecipient { State = RecipientState.Deferred, Attempts = 1, Code = 451 };
            DeliveryAgent.Restate(entry, b.Segment, b.Offset, now, records);
        }
        using (var journal = DeliveryJournal.Open(dir, 4096)) Assert.Equal(0, journal.Append(records.ToArray()));
        if (step >= 2) File.Delete(Path.Combine(dir, $"{a.Segment:x16}.seg"));
        if (step >= 3) File.Delete(oldJournal);
        return (id, a.Segment);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_copy_forward_cut_at_any_step_keeps_the_message_held_and_its_delivered_recipient_done(int step)
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop, SmallLongRetry, SmallSegment);
        (string Id, long OldSegment) built = ("", 0);
        await rig.Restart(() => built = BuildMoveCutAt(rig.Directory, step));
        Assert.Equal(1, rig.Agent.Recovery.Live);
        Assert.Equal(1, rig.Agent.Recovery.Held);
        Assert.False(File.Exists(Path.Combine(rig.Directory, $"{built.OldSegment:x16}.seg")), "the old place is dead: its segment goes");
        string state = await QueueState(rig);
        Assert.Contains($"{built.Id} held: taken@example.net delivered 1; {Stuck} held", state);
        rig.Advance(TimeSpan.FromHours(4));
        await Task.Delay(200);
        Assert.Empty(hop.Received);

        Assert.Equal(0, (await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Release, false, false, [built.Id]), default)).ExitCode);
        for (int i = 0; i < 5 && rig.Agent.Count > 0; i++)
        {
            rig.Advance(TimeSpan.FromHours(3));
            await TestHop.Until(() => rig.Agent.Count == 0, 3_000);
        }
        var sent = Assert.Single(hop.Received);
        Assert.Equal([Stuck], sent.To);
        Assert.Equal(0, rig.Events.Count("trouble"));
    }
}
