// Copy-forward end to end in one process (FORMAT.md "Copy-forward"): a real spool with 1 MiB segments, the agent on
// a fake clock, a scripted next hop. A segment holding one long-deferred message among delivered ones is copied
// forward after an hour and deleted, and the message is delivered once, byte for byte, under its own queue id; a held
// message stays held across the move and a restart. The crash windows are built on disk with the spool's own API
// (a copy with no Moved record; a Moved record with the old segment still there) and then opened: one delivery each,
// and `spool list`, `spool export`, `spool drain` and the offline `queue list` take the message once.
using System.Collections.Concurrent;
using System.Text;
using EdgeMta.Spool;

namespace EdgeMta.Delivery.Tests;

public sealed class CopyForwardTests
{
    private const string Body = "Subject: stuck\r\n\r\nline one\r\n.leading dot\r\n";
    private const string Stuck = "stuck@example.net";

    /// <summary>Retries 3 hours apart: the hour a segment must age passes with no attempt in flight.</summary>
    private static DeliveryOptions LongRetry(DeliveryOptions o)
        => o with { Scheduler = o.Scheduler with { RetryMin = TimeSpan.FromHours(3), RetryMax = TimeSpan.FromHours(3) } };

    private sealed class Gate
    {
        public volatile bool Open;
    }

    private static TestHop DeferringHop(Gate gate)
        => new() { RcptReply = (_, r) => r == Stuck && !gate.Open ? "451 4.3.0 try later" : null };

    private static string SegmentPath(AgentRig rig, long sequence) => Path.Combine(rig.Directory, $"{sequence:x16}.seg");

    /// <summary>The stuck message and three the hop takes, in the first segment; then a restart, which seals it (a new
    /// process writes a new segment: FORMAT.md "Directory"). One live message of about 1 KiB is left in 1 MiB.
    /// Returns the stuck message's id and the segment's sequence.</summary>
    private static async Task<(string Id, long Segment)> OneStuckAmongDelivered(AgentRig rig, TestHop hop)
    {
        long segment = rig.Spool.FirstNewSegment;
        string id = await rig.Send("a@example.org", Body, Stuck);
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={id}") == 1));
        for (int i = 0; i < 3; i++) await rig.Send("a@example.org", Body, $"ok{i}@example.net");
        Assert.True(await TestHop.Until(() => hop.Received.Count == 3 && rig.Agent.Count == 1 && rig.Agent.InFlight == 0));
        await rig.Restart();
        Assert.Equal(1, rig.Agent.Recovery.Live);
        Assert.True(rig.Spool.IsSealed(segment) && File.Exists(SegmentPath(rig, segment)), "the setup must leave the segment sealed");
        return (id, segment);
    }

    private static async Task<bool> AdvanceUntil(AgentRig rig, TimeSpan step, Func<bool> done)
    {
        for (int i = 0; i < 5; i++)
        {
            rig.Advance(step);
            if (await TestHop.Until(done, 3_000)) return true;
        }
        return false;
    }

    private static int ListedTimes(string output, string id) => output.Split('\n').Count(l => l.Contains(id, StringComparison.Ordinal));

    [Fact]
    public async Task A_stuck_message_is_copied_forward_after_an_hour_and_delivered_once_byte_for_byte()
    {
        var gate = new Gate();
        await using var hop = DeferringHop(gate);
        await using var rig = new AgentRig(hop, LongRetry);
        var (id, first) = await OneStuckAmongDelivered(rig, hop);

        // Not before the hour: the segment may still empty itself.
        rig.Advance(TimeSpan.FromMinutes(30));
        await Task.Delay(300);
        Assert.Equal(0, rig.Agent.SegmentsCompacted);
        Assert.True(File.Exists(SegmentPath(rig, first)));

        rig.Advance(TimeSpan.FromMinutes(32));
        Assert.True(await TestHop.Until(() => rig.Agent.SegmentsCompacted == 1 && !File.Exists(SegmentPath(rig, first))));
        Assert.Contains($"segment-compacted seq={first:x16} messages=1 bytes={Body.Length}", rig.Events.Lines);
        Assert.Equal(1, rig.Agent.MessagesCopied);
        var list = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.List, false, false, []), default);
        Assert.Equal(1, ListedTimes(list.Output, id));
        Assert.Contains(Stuck, list.Output);   // read back from its new place

        gate.Open = true;
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromHours(3), () => rig.Agent.Count == 0));
        var stuck = Assert.Single(hop.Received, t => t.To.Contains(Stuck));
        Assert.Equal(Body, Encoding.Latin1.GetString(stuck.Data));
        Assert.Equal("a@example.org", stuck.From);
        Assert.Equal(1, rig.Events.Count($"delivered id={id} rcpt={Stuck}"));
        Assert.Equal(0, rig.Events.Count("trouble"));
    }

    [Fact]
    public async Task A_held_message_stays_held_across_the_move_and_a_restart_then_goes_once()
    {
        var gate = new Gate();
        await using var hop = DeferringHop(gate);
        await using var rig = new AgentRig(hop, LongRetry);
        var (id, first) = await OneStuckAmongDelivered(rig, hop);
        var held = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Hold, false, false, [id]), default);
        Assert.Equal(0, held.ExitCode);
        gate.Open = true;

        rig.Advance(TimeSpan.FromMinutes(62));
        Assert.True(await TestHop.Until(() => rig.Agent.SegmentsCompacted == 1 && !File.Exists(SegmentPath(rig, first))));
        var list = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.List, false, false, []), default);
        Assert.Equal(1, ListedTimes(list.Output, id));
        Assert.Contains("held", list.Output);

        await rig.Restart();
        Assert.Equal(1, rig.Agent.Recovery.Live);
        Assert.Equal(1, rig.Agent.Recovery.Held);
        rig.Advance(TimeSpan.FromHours(4));
        await Task.Delay(300);
        Assert.DoesNotContain(hop.Received, t => t.To.Contains(Stuck));

        Assert.Equal(0, (await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Release, false, false, [id]), default)).ExitCode);
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromHours(3), () => rig.Agent.Count == 0));
        var stuck = Assert.Single(hop.Received, t => t.To.Contains(Stuck));
        Assert.Equal(Body, Encoding.Latin1.GetString(stuck.Data));
        Assert.Equal(1, rig.Events.Count($"delivered id={id}"));
    }

    [Fact]
    public async Task Two_qualifying_segments_are_both_emptied_and_each_message_goes_once()
    {
        var gate = new Gate();
        await using var hop = new TestHop { RcptReply = (_, r) => r.StartsWith("stuck", StringComparison.Ordinal) && !gate.Open ? "451 4.3.0 try later" : null };
        await using var rig = new AgentRig(hop, LongRetry);
        // Two sealed segments with one small live message in each: a restart after each seals its segment.
        long first = rig.Spool.FirstNewSegment;
        string one = await rig.Send("a@example.org", Body, "stuck1@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={one}") == 1 && rig.Agent.InFlight == 0));
        await rig.Restart();
        long second = rig.Spool.FirstNewSegment;
        string two = await rig.Send("a@example.org", Body, "stuck2@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={two}") == 1 && rig.Agent.InFlight == 0));
        await rig.Restart();
        Assert.Equal(2, rig.Agent.Recovery.Live);

        // One segment a pump round: the second may wait for the next minute's check, so the clock moves on
        // until both are done (a fake clock never ticks by itself).
        rig.Advance(TimeSpan.FromMinutes(61));
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromMinutes(1), () => rig.Agent.SegmentsCompacted == 2));
        Assert.False(File.Exists(SegmentPath(rig, first)));
        Assert.False(File.Exists(SegmentPath(rig, second)));
        Assert.Equal(2, rig.Events.Lines.Count(l => l.StartsWith("segment-compacted ", StringComparison.Ordinal) && l.Contains(" messages=1 ", StringComparison.Ordinal)));

        gate.Open = true;
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromHours(3), () => rig.Agent.Count == 0));
        Assert.Single(hop.Received, t => t.To.Contains("stuck1@example.net"));
        Assert.Single(hop.Received, t => t.To.Contains("stuck2@example.net"));
        Assert.Equal(1, rig.Events.Count($"delivered id={one}"));
        Assert.Equal(1, rig.Events.Count($"delivered id={two}"));
    }

    private sealed class Places : ISpoolObserver
    {
        public readonly ConcurrentQueue<(long Segment, long Offset, string Id)> Seen = new();
        public void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId) => Seen.Enqueue((segment, offset, Encoding.ASCII.GetString(queueId)));
    }

    private sealed record OnDisk(string Id, long OldSegment, long OldOffset, long NewSegment, long NewOffset, string? Neighbour);

    /// <summary>What a crash leaves, built with the spool's own calls: the message at A (deferred in the journal), its
    /// copy at B in a later segment, beside a held neighbour that keeps B alive; Moved when <paramref name="moved"/>.</summary>
    private static OnDisk BuildCrashState(string dir, bool moved)
    {
        var places = new Places();
        SpoolOptions Options() => new() { Directory = dir, SegmentSize = 1 << 20, MaxMessageSize = 4 << 20, MinimumFreeBytes = 0, Observer = places };
        string id;
        using (var spool = MessageSpool.Open(Options(), out _))
        {
            var m = spool.Begin("192.0.2.1"u8, "client.example"u8, "a@example.org"u8, default);
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
        string neighbour;
        using (var spool = MessageSpool.Open(Options(), out _))
        {
            var copy = spool.BeginCopy(Encoding.ASCII.GetBytes(id), arrival, envelope);
            copy.Append(data);
            Assert.Equal(CommitResult.Committed, copy.CommitAsync().AsTask().GetAwaiter().GetResult());
            var n = spool.Begin("192.0.2.1"u8, "client.example"u8, "a@example.org"u8, default);
            n.AddRecipient("neighbour@example.net"u8, default);
            n.Append("Subject: n\r\n\r\nkept\r\n"u8);
            neighbour = Encoding.ASCII.GetString(n.QueueId);
            Assert.Equal(CommitResult.Committed, n.CommitAsync().AsTask().GetAwaiter().GetResult());
        }
        var seen = places.Seen.ToArray();
        var (a, b, nb) = (seen.First(p => p.Id == id), seen.Last(p => p.Id == id), seen.Single(p => p.Id == neighbour));
        Assert.True(b.Segment > a.Segment);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var records = new List<JournalRecord>
        {
            new(JournalRecordType.Deferred, a.Segment, a.Offset, id, 0, 1, 451, 4, 3, 0, false, now, now),
            new(JournalRecordType.Hold, nb.Segment, nb.Offset, neighbour, JournalRecord.WholeMessage, 0, 0, 0, 0, 0, false, now, 0),
        };
        if (moved) records.Add(JournalRecord.Moved(a.Segment, a.Offset, id, b.Segment, b.Offset, now));
        using (var journal = DeliveryJournal.Open(dir)) Assert.Equal(0, journal.Append(records.ToArray()));
        return new OnDisk(id, a.Segment, a.Offset, b.Segment, b.Offset, neighbour);
    }

    /// <summary>The offline views of the state at rest (both records on disk): each lists the message once.</summary>
    private static void AssertListedOnce(string dir, string id)
    {
        var spoolList = new StringWriter();
        Assert.Equal(0, SpoolCommands.List(dir, json: false, spoolList));
        Assert.Equal(1, ListedTimes(spoolList.ToString(), id));
        var json = new StringWriter();
        Assert.Equal(0, SpoolCommands.List(dir, json: true, json));
        Assert.Equal(1, ListedTimes(json.ToString(), id));
        var queue = new OfflineQueue(dir).RunAsync(new QueueRequest(QueueVerb.List, false, false, []), default).AsTask().GetAwaiter().GetResult();
        Assert.Equal(1, ListedTimes(queue.Output, id));
        // export and drain: the message and its held neighbour, not the copy (both would name the same .eml file, so
        // the count is what tells). drain runs on a copy of the files: it changes the spool.
        string scratch = Path.Combine(Path.GetTempPath(), "edgemta-copyfwd-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var export = new StringWriter();
            Assert.Equal(0, SpoolCommands.Export(dir, Path.Combine(scratch, "export"), export));
            Assert.Contains("exported 2 messages", export.ToString());
            string copy = Path.Combine(scratch, "spool");
            Directory.CreateDirectory(Path.Combine(copy, JournalReader.DirectoryName));
            foreach (string f in Directory.GetFiles(dir, "*.seg")) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
            foreach (string f in Directory.GetFiles(Path.Combine(dir, JournalReader.DirectoryName))) File.Copy(f, Path.Combine(copy, JournalReader.DirectoryName, Path.GetFileName(f)));
            var drain = new StringWriter();
            Assert.Equal(0, SpoolCommands.Drain(copy, Path.Combine(scratch, "drain"), drain));
            Assert.Contains("drained 2 messages", drain.ToString());
            Assert.Contains("1 copies left by a copy-forward were released", drain.ToString());
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task A_copy_whose_Moved_never_became_durable_is_discarded_and_never_comes_back()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop);
        OnDisk state = null!;
        await rig.Restart(() =>
        {
            state = BuildCrashState(rig.Directory, moved: false);
            AssertListedOnce(rig.Directory, state.Id);
        });
        Assert.Equal(2, rig.Agent.Recovery.Live);   // the message and its held neighbour, not the copy
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromMinutes(1), () => hop.Received.Count == 1 && rig.Agent.Count == 1));
        Assert.Equal(Body, Encoding.Latin1.GetString(Assert.Single(hop.Received).Data));
        Assert.True(await TestHop.Until(() => !File.Exists(SegmentPath(rig, state.OldSegment))));
        Assert.True(File.Exists(SegmentPath(rig, state.NewSegment)), "the held neighbour keeps the copy's segment");

        // The original is released and its segment gone, so the compacted journal forgets it: the copy was retracted
        // in the spool, or it would come back now as a message nobody delivered.
        await rig.Restart();
        Assert.Equal(1, rig.Agent.Recovery.Live);
        rig.Advance(TimeSpan.FromHours(1));
        await Task.Delay(300);
        Assert.Single(hop.Received);
        Assert.Equal(0, rig.Events.Count("trouble"));
    }

    [Fact]
    public async Task A_Moved_record_with_the_old_segment_still_there_delivers_from_the_new_place_once()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop);
        OnDisk state = null!;
        await rig.Restart(() =>
        {
            state = BuildCrashState(rig.Directory, moved: true);
            AssertListedOnce(rig.Directory, state.Id);
        });
        Assert.Equal(2, rig.Agent.Recovery.Live);
        // The old place is dead: its segment held nothing else live and goes at start.
        Assert.False(File.Exists(SegmentPath(rig, state.OldSegment)));
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromMinutes(1), () => hop.Received.Count == 1 && rig.Agent.Count == 1));
        Assert.Equal(Body, Encoding.Latin1.GetString(Assert.Single(hop.Received).Data));
        Assert.Equal(1, rig.Events.Count($"delivered id={state.Id}"));
        await rig.Restart();
        rig.Advance(TimeSpan.FromHours(1));
        await Task.Delay(300);
        Assert.Single(hop.Received);
    }
}
