// Power-loss simulation, beside the SIGKILL rounds of CrashTests: a kill leaves the page cache to the
// kernel, a power cut does not. A spool with 1 MiB segments (so they roll over) runs through the recorder
// (PowerLossRecorder.cs) while 8 senders commit 320 messages of 100 B to 200 KiB (so both small commits
// and streamed ones; in one variant one in 12 aborted half way); then, for 200 random cut points and the
// end, the simulator (PowerLossImage.cs) builds what the disk could hold after the power went,
// MessageSpool.Open recovers it, and every record is read back. Checked at every cut:
//  a. every message acknowledged (CommitAsync returned Committed) before the cut reads back byte for byte,
//     envelope and data;
//  b. every record that reads back is a message that was submitted and not aborted, with exactly its
//     bytes: nothing torn or unacknowledged passes for committed (a record whose durable write finished
//     before the cut but whose acknowledgement came after is allowed: the client sends it again, a duplicate);
//  c. recovery run again finds nothing more and leaves the same records.
// Both write modes: direct synchronous writes (a spool on the disk) and the buffered fallback, pwrite and
// fdatasync (the recorder opens the files without O_DIRECT, as a filesystem that refuses it makes the spool
// do). The images go to /dev/shm when there is one.
// Seed: EDGEMTA_POWERLOSS_SEED (default below). A failure names the seed and the cut, says where the lost
// message's bytes went, and keeps the first failing image with the event log (events.txt) under the temp
// directory. The workload's timing is the scheduler's, so a seed replays the cuts and their random
// choices, not the exact same log. A skipped variant runs once its Skip is removed.
using System.Collections.Concurrent;
using System.Text;
using Xunit.Abstractions;

namespace EdgeMta.Spool.Tests;

public class PowerLossTests(ITestOutputHelper output)
{
    private const int Senders = 8, PerSender = 40, Cuts = 200, SegmentSize = 1 << 20;
    private const int DefaultSeed = 20261206;

    [Fact]
    public Task DirectWritesKeepEveryAcknowledgedMessageAtEveryPowerCut()
        => Run(direct: true, strictDsync: false, aborts: false);

    [Fact]
    public Task BufferedFallbackKeepsEveryAcknowledgedMessageAtEveryPowerCut()
        => Run(direct: false, strictDsync: false, aborts: false);

    // One message in 12 aborted half way (an aborted stream leaves an uncommitted region that must never read
    // back). It once failed about one run in three: a pooled message reused after an aborted stream committed a
    // damaged record, power cut or not (PowerLossFindingTests.cs has it deterministic).
    [Fact]
    public Task DirectWritesWithAbortedMessagesKeepEveryAcknowledgedMessage()
        => Run(direct: true, strictDsync: false, aborts: true);

    // POSIX O_DSYNC (and Linux, for a direct overwrite on a disk with FUA: fs/iomap/direct-io.c sends it REQ_FUA
    // and no cache flush) makes a synchronous write durable by itself: earlier unsynchronised writes of the file
    // are not covered. Streamed messages once sent their chunks without sync and only the first block with
    // RWF_DSYNC, and on such a disk their 250 came before their data was durable (seed 20261206: 15,052 of
    // 30,213 acknowledgements lost over 201 cuts). Now a streamed commit is made durable by an fdatasync of
    // its segment, which covers every earlier write of the file on any disk.
    [Fact]
    public Task DirectWritesUnderStrictDsyncKeepEveryAcknowledgedMessage()
        => Run(direct: true, strictDsync: true, aborts: false);

    internal sealed class Sent
    {
        public required byte[] Client, Helo, Sender, Parameters, Data;
        public required (byte[] Path, byte[] Parameters)[] Recipients;
        public required bool Aborted;

        /// <summary>The record (header, envelope with its 4-octet length fields, data) outgrows the first buffer: it streams.</summary>
        public bool StreamsPast(int firstBuffer)
        {
            int envelope = 16 + Client.Length + Helo.Length + Sender.Length + Parameters.Length;
            foreach (var (path, parameters) in Recipients) envelope += 8 + path.Length + parameters.Length;
            return SpoolFormat.RecordHeaderSize + envelope + Data.Length >= firstBuffer;   // a full first chunk goes to the writer
        }
    }

    private sealed class Tally
    {
        public int Cuts, Acknowledged, Lost, UnacknowledgedRecovered, Damaged, InFlightWrites, TornWrites;
        public long TornTailBytes;
        public override string ToString() => $"cuts {Cuts}, acknowledged before the cut {Acknowledged}, lost {Lost}, recovered but unacknowledged {UnacknowledgedRecovered}, damaged regions quarantined {Damaged}, torn tail bytes cut {TornTailBytes}; writes in flight at the cuts {InFlightWrites} (torn {TornWrites})";
    }

    private async Task Run(bool direct, bool strictDsync, bool aborts)
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EDGEMTA_POWERLOSS_SEED"), out int s) ? s : DefaultSeed;
        // Direct: on the disk (tmpfs takes O_DIRECT since Linux 6.6, but its "disk" is the page cache anyway).
        using var dir = new TempDir(direct ? null : TempDir.FastParent);
        var recorder = new RecordingSpoolIo { RefuseDirect = !direct };
        var submitted = new ConcurrentDictionary<string, Sent>();
        var acks = new ConcurrentDictionary<string, long>();
        var started = DateTime.UtcNow;
        using (var spool = MessageSpool.Open(TestSpools.Options(dir.Path, segment: SegmentSize) with { Io = recorder }, out _))
        {
            var senders = Enumerable.Range(0, Senders).Select(i => Task.Run(() => Send(spool, seed, i, aborts, recorder, submitted, acks)));
            await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(120));
        }
        IoEvent[] events = recorder.Events();
        var creates = events.Where(e => e.Kind == IoKind.Create).ToArray();
        Assert.True(creates.Length >= 4, $"only {creates.Length} segments: the workload did not roll over");
        Assert.All(creates, c => Assert.True(c.Direct == direct, $"{c.Path}: direct {c.Direct}, this test is for direct {direct} (a filesystem without O_DIRECT?)"));
        int streamed = submitted.Values.Count(m => !m.Aborted && m.StreamsPast(4096));
        output.WriteLine($"seed {seed}; {(direct ? "direct" : "buffered")}{(strictDsync ? ", strict O_DSYNC" : "")}: {submitted.Count} submitted ({acks.Count} acknowledged, {streamed} streamed, {submitted.Values.Count(m => m.Aborted)} aborted), {creates.Length} segments, {events.Length} events, workload {(DateTime.UtcNow - started).TotalSeconds:F1} s");

        long end = events.Max(e => e.End) + 1;
        var rnd = new Random(seed);
        var cuts = Enumerable.Range(0, Cuts).Select(_ => rnd.NextInt64(1, end)).Append(end).Order().ToArray();
        var tally = new Tally();
        var problems = new List<string>();
        using var images = new TempDir(TempDir.FastParent);
        foreach (long cut in cuts)
        {
            string image = images.Sub($"cut-{cut}");
            Directory.CreateDirectory(image);
            var outcome = PowerLossImage.Build(events, cut, new Random(unchecked(seed * 1_000_003 + (int)cut)), image, strictDsync);
            tally.Cuts++;
            tally.InFlightWrites += outcome.InFlightWrites;
            tally.TornWrites += outcome.TornWrites;
            int before = problems.Count;
            Check(cut, image, submitted, acks, tally, problems);
            if (problems.Count > before)
            {
                string kept = Path.Combine(Path.GetTempPath(), $"edgemta-powerloss-{seed}-{cut}");
                bool first = !problems.Take(before).Any(p => p.Contains("image kept", StringComparison.Ordinal));
                if (first)
                {
                    if (Directory.Exists(kept)) Directory.Delete(kept, recursive: true);   // an earlier run's
                    TestSpools.CopyDirectory(image, kept);
                    File.WriteAllLines(Path.Combine(kept, "events.txt"), events.Select(e => e.ToString()));
                }
                problems[before] = $"seed {seed} cut {cut}{(first ? $" (image kept in {kept})" : "")}: {problems[before]}";
                for (int i = before + 1; i < problems.Count; i++) problems[i] = $"seed {seed} cut {cut}: {problems[i]}";
            }
            Directory.Delete(image, recursive: true);
        }
        output.WriteLine(tally.ToString());
        output.WriteLine($"total {(DateTime.UtcNow - started).TotalSeconds:F1} s");
        foreach (var p in problems.Take(20)) output.WriteLine(p);
        Assert.True(problems.Count == 0, $"{problems.Count} problems; the first: {problems.FirstOrDefault()}");
        Assert.Equal(0, tally.Lost);
        Assert.True(tally.Acknowledged > 0);
    }

    private static async Task Send(MessageSpool spool, int seed, int sender, bool aborts, RecordingSpoolIo recorder, ConcurrentDictionary<string, Sent> submitted, ConcurrentDictionary<string, long> acks)
    {
        var rnd = new Random(seed * 31 + sender);
        for (int i = 0; i < PerSender; i++)
        {
            // Log-uniform from 100 B to 200 KiB: about half fit the 4 KiB first buffer, half stream.
            int size = (int)(100 * Math.Exp(rnd.NextDouble() * Math.Log(2048)));
            var rcpts = new (byte[], byte[])[1 + rnd.Next(3)];
            for (int r = 0; r < rcpts.Length; r++) rcpts[r] = (Encoding.ASCII.GetBytes($"r{r}-{sender}@example.net"), r == 0 ? [] : "NOTIFY=NEVER"u8.ToArray());
            var sent = new Sent
            {
                Client = Encoding.ASCII.GetBytes($"192.0.2.{sender + 1}"),
                Helo = Encoding.ASCII.GetBytes($"sender{sender}.example"),
                Sender = Encoding.ASCII.GetBytes($"s{sender}m{i}@example.org"),
                Parameters = Encoding.ASCII.GetBytes($"SIZE={size}"),
                Recipients = rcpts,
                Data = [],
                Aborted = rnd.Next(12) == 0 && aborts,
            };
            var m = spool.Begin(sent.Client, sent.Helo, sent.Sender, sent.Parameters);
            foreach (var (path, parameters) in rcpts) m.AddRecipient(path, parameters);
            string id = Encoding.ASCII.GetString(m.QueueId);
            sent.Data = TestSpools.Content(StableHash(id), size);   // the content follows from the queue id
            Assert.True(submitted.TryAdd(id, sent), $"queue id {id} given twice");
            int stop = sent.Aborted ? size / 2 : size;
            for (int at = 0; at < stop;)
            {
                int n = Math.Min(1 + rnd.Next(16384), stop - at);
                m.Append(sent.Data.AsSpan(at, n));
                at += n;
            }
            if (sent.Aborted)
            {
                m.Abort();
                continue;
            }
            var result = await m.CommitAsync();
            Assert.Equal(CommitResult.Committed, result);
            acks[id] = recorder.Ack(id);
            await Task.Yield();   // off the writer thread the continuation ran on: the next message is made elsewhere
        }
    }

    private static int StableHash(string id)
    {
        uint h = 2166136261;
        foreach (char c in id) h = (h ^ c) * 16777619;
        return (int)h;
    }

    private static void Check(long cut, string image, ConcurrentDictionary<string, Sent> submitted, ConcurrentDictionary<string, long> acks, Tally tally, List<string> problems)
    {
        RecoveryReport first;
        using (MessageSpool.Open(TestSpools.Options(image, segment: SegmentSize), out first)) { }
        tally.Damaged += first.Damaged.Count;
        tally.TornTailBytes += first.TornTailBytes;
        var read = ReadBack(image, submitted, problems, out var again);
        if (!again.IsClean) problems.Add($"after recovery the reader still finds damage ({again.Damaged.Count} regions, {again.TornTailBytes} torn tail bytes)");
        foreach (var (id, ack) in acks)
        {
            if (ack >= cut) continue;
            tally.Acknowledged++;
            if (!read.Contains(id))
            {
                tally.Lost++;
                string why = problems.Count < 20 ? Explain(image, id, submitted) : "";   // the first few: each reads the regions set aside
                problems.Add($"acknowledged {id} (at {ack}) is lost; {why}; recovery: {first.Messages} records, {first.Damaged.Count} damaged {string.Join("; ", first.Damaged.Select(d => $"{d.Segment}@{d.Offset}+{d.Length} {d.Reason}"))}");
            }
        }
        foreach (var id in read)
        {
            if (!acks.TryGetValue(id, out long ack) || ack >= cut) tally.UnacknowledgedRecovered++;
        }
        // c. Recovery again: nothing new found, the same records.
        RecoveryReport second;
        using (MessageSpool.Open(TestSpools.Options(image, segment: SegmentSize), out second)) { }
        if (!second.IsClean || second.Messages != read.Count) problems.Add($"second recovery: {second.Messages} records (first {read.Count}), {second.Damaged.Count} damaged, {second.TornTailBytes} torn tail bytes");
        var reread = ReadBack(image, submitted, problems, out _);
        if (!reread.SetEquals(read)) problems.Add($"second recovery changed the records: {reread.Count} against {read.Count}");
    }

    /// <summary>Where a lost message's bytes went: its region among those recovery set aside, the first data octet
    /// that differs, and whose bytes are there instead.</summary>
    private static string Explain(string image, string id, ConcurrentDictionary<string, Sent> submitted)
    {
        string quarantine = Path.Combine(image, "quarantine");
        if (!Directory.Exists(quarantine)) return "no region set aside";
        foreach (var copy in Directory.GetFiles(quarantine, "*.bad"))
        {
            byte[] region = File.ReadAllBytes(copy);
            if (region.Length < SpoolFormat.RecordHeaderSize) continue;
            var slot1 = region.AsSpan(SpoolFormat.SlotSize, SpoolFormat.SlotSize);
            if (!SpoolFormat.QueueId(slot1).SequenceEqual(Encoding.ASCII.GetBytes(id))) continue;
            int start = SpoolFormat.RecordHeaderSize + (int)SpoolFormat.EnvelopeLength(slot1);
            var data = region.AsSpan(start, (int)Math.Min(SpoolFormat.PayloadLength(slot1) + SpoolFormat.RecordHeaderSize, region.Length) - start);
            var expected = submitted[id].Data;
            int at = data.CommonPrefixLength(expected);
            if (at == data.Length) return $"{Path.GetFileName(copy)}: data intact, header or envelope differ";
            // Whose bytes: a sample of 64 octets from the first difference, looked up in every submitted message.
            var sample = data.Slice(at, Math.Min(64, data.Length - at));
            string found = sample.IndexOfAnyExcept((byte)0) < 0 ? "zeros" : "bytes of no submitted message";
            foreach (var (other, sent) in submitted)
            {
                int i = sent.Data.AsSpan().IndexOf(sample);
                if (i >= 0) { found = $"{other}'s data at {i}"; break; }
            }
            int wrong = 0;
            for (int b = 0; b < data.Length; b += PowerLossImage.Sector)
            {
                int n = Math.Min(PowerLossImage.Sector, data.Length - b);
                if (!data.Slice(b, n).SequenceEqual(expected.AsSpan(b, n))) wrong++;
            }
            return $"{Path.GetFileName(copy)}: data differs from region byte {start + at} ({found}), {wrong} of {(data.Length + 511) / 512} data sectors wrong";
        }
        return "its region is not among those set aside";
    }

    /// <summary>Reads every record of the spool; a record that is not exactly a submitted, unaborted message is a problem.</summary>
    private static HashSet<string> ReadBack(string image, ConcurrentDictionary<string, Sent> submitted, List<string> problems, out RecoveryReport report)
    {
        var ids = new HashSet<string>();
        report = SpoolReader.Read(image, (in SpoolRecord r) =>
        {
            string id = r.QueueIdString;
            if (!ids.Add(id)) problems.Add($"{id} reads back twice");
            if (!submitted.TryGetValue(id, out var sent)) problems.Add($"{id} ({r.Segment}@{r.Offset}) was never submitted");
            else if (sent.Aborted) problems.Add($"{id} ({r.Segment}@{r.Offset}) was aborted, yet reads back");
            else if (!Matches(r, sent)) problems.Add($"{id} ({r.Segment}@{r.Offset}) reads back with other bytes");
        });
        return ids;
    }

    private static bool Matches(in SpoolRecord r, Sent sent)
    {
        var e = r.Envelope;
        if (!r.Data.SequenceEqual(sent.Data) || !e.ClientAddress.SequenceEqual(sent.Client) || !e.HeloName.SequenceEqual(sent.Helo)
            || !e.ReversePath.SequenceEqual(sent.Sender) || !e.MailParameters.SequenceEqual(sent.Parameters) || e.RecipientCount != sent.Recipients.Length)
        {
            return false;
        }
        int i = 0;
        foreach (var rcpt in e.GetRecipients())
        {
            if (!rcpt.ForwardPath.SequenceEqual(sent.Recipients[i].Path) || !rcpt.Parameters.SequenceEqual(sent.Recipients[i].Parameters)) return false;
            i++;
        }
        return true;
    }
}
