using System.Text.Json;

namespace EdgeMta.Spool.Tests;

public class CommandTests
{
    private static async Task<Dictionary<string, int>> Fill(string dir, int count)
    {
        var ids = new Dictionary<string, int>();
        await using var spool = TestSpools.Open(dir, segment: 64 << 10);
        for (int i = 0; i < count; i++)
        {
            var (r, id) = await TestSpools.Write(spool, i, 1000 + i * 7000, sender: $"s{i}@example.org", rcpts: ["x@example.net", "y@example.net"]);
            Assert.Equal(CommitResult.Committed, r);
            ids.Add(id, i);
        }
        return ids;
    }

    [Fact]
    public async Task StatsCountsMessagesBytesAndSegmentsInTextAndJson()
    {
        using var dir = new TempDir();
        await Fill(dir.Path, 12);
        long bytes = 0;
        for (int i = 0; i < 12; i++) bytes += 1000 + i * 7000;
        var text = new StringWriter();
        Assert.Equal(0, SpoolCommands.Stats(dir.Path, json: false, text));
        Assert.Contains("messages: 12", text.ToString());
        Assert.Contains($"bytes: {bytes}", text.ToString());
        Assert.Contains("damaged records: 0", text.ToString());
        var json = new StringWriter();
        Assert.Equal(0, SpoolCommands.Stats(dir.Path, json: true, json));
        using var doc = JsonDocument.Parse(json.ToString());
        Assert.Equal(12, doc.RootElement.GetProperty("messages").GetInt64());
        Assert.Equal(bytes, doc.RootElement.GetProperty("bytes").GetInt64());
        Assert.True(doc.RootElement.GetProperty("segments").GetInt64() > 1);
        Assert.Equal(0, doc.RootElement.GetProperty("damaged").GetInt64());
    }

    [Fact]
    public async Task ListGivesOneLineAMessageWithIdSenderRecipientsAndSize()
    {
        using var dir = new TempDir();
        var ids = await Fill(dir.Path, 3);
        var text = new StringWriter();
        Assert.Equal(0, SpoolCommands.List(dir.Path, json: false, text));
        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        foreach (var (id, i) in ids)
        {
            string line = Assert.Single(lines, l => l.StartsWith(id + " ", StringComparison.Ordinal));
            // docs/PROTOCOL.md's fields in their places, then the delivery state (no journal: pending).
            Assert.EndsWith($" s{i}@example.org x@example.net,y@example.net {1000 + i * 7000} pending", line);
        }
        var json = new StringWriter();
        Assert.Equal(0, SpoolCommands.List(dir.Path, json: true, json));
        using var doc = JsonDocument.Parse(json.ToString());
        Assert.Equal(3, doc.RootElement.GetArrayLength());
        Assert.Equal(2, doc.RootElement[0].GetProperty("rcpt").GetArrayLength());
    }

    [Fact]
    public async Task ExportWritesTheExactBytesAndTheEnvelopeAndLeavesTheSpool()
    {
        using var dir = new TempDir();
        using var outDir = new TempDir();
        var ids = await Fill(dir.Path, 4);
        Assert.Equal(0, SpoolCommands.Export(dir.Path, outDir.Path, TextWriter.Null));
        foreach (var (id, i) in ids)
        {
            Assert.Equal(TestSpools.Content(i, 1000 + i * 7000), File.ReadAllBytes(Path.Combine(outDir.Path, id + ".eml")));
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir.Path, id + ".json")));
            Assert.Equal($"s{i}@example.org", doc.RootElement.GetProperty("mail_from").GetString());
            Assert.Equal("192.0.2.1", doc.RootElement.GetProperty("client_address").GetString());
            Assert.Equal("x@example.net", doc.RootElement.GetProperty("rcpt")[0].GetProperty("to").GetString());
        }
        Assert.Equal(4, SpoolReader.Read(dir.Path).Messages);
    }

    [Fact]
    public async Task VerifyExitsOneOnDamageAndZeroOnAHealthySpool()
    {
        using var dir = new TempDir();
        await Fill(dir.Path, 5);
        Assert.Equal(0, SpoolCommands.Verify(dir.Path, TextWriter.Null));
        var records = new List<(string Segment, long Offset)>();
        SpoolReader.Read(dir.Path, (in SpoolRecord r) => records.Add((r.Segment, r.Offset)));
        // A bit flip in the payload of a record with another after it in the same segment.
        var (seg, off) = records.First(a => records.Count(b => b.Segment == a.Segment && b.Offset > a.Offset) > 0);
        string path = Path.Combine(dir.Path, seg);
        var bytes = File.ReadAllBytes(path);
        bytes[off + 200] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var output = new StringWriter();
        Assert.Equal(1, SpoolCommands.Verify(dir.Path, output));
        Assert.Contains($"damaged: {seg} offset {off}", output.ToString());
        Assert.Equal(2, SpoolCommands.Verify(Path.Combine(dir.Path, "missing"), TextWriter.Null));
    }

    [Fact]
    public async Task DrainExportsEverythingMarksItConsumedAndDeletesTheSegments()
    {
        using var dir = new TempDir();
        using var outDir = new TempDir();
        var ids = await Fill(dir.Path, 10);
        Assert.NotEmpty(Directory.GetFiles(dir.Path, "*.seg"));
        Assert.Equal(0, SpoolCommands.Drain(dir.Path, outDir.Path, TextWriter.Null));
        foreach (var (id, i) in ids)
            Assert.Equal(TestSpools.Content(i, 1000 + i * 7000), File.ReadAllBytes(Path.Combine(outDir.Path, id + ".eml")));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.seg"));
        Assert.Equal(0, SpoolReader.Read(dir.Path).Messages);

        // New mail after a drain: only it is drained next time.
        using var second = new TempDir();
        var more = await Fill(dir.Path, 2);
        Assert.Equal(0, SpoolCommands.Drain(dir.Path, second.Path, TextWriter.Null));
        Assert.Equal(more.Count * 2, Directory.GetFiles(second.Path).Length);
    }

    [Fact]
    public async Task DrainLeavesDamageInPlaceAndTheConsumedMarksHold()
    {
        using var dir = new TempDir();
        using var outDir = new TempDir();
        using (var spool = TestSpools.Open(dir.Path))
            for (int i = 0; i < 3; i++) Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, i, 500)).Result);
        var records = new List<(string Segment, long Offset)>();
        SpoolReader.Read(dir.Path, (in SpoolRecord r) => records.Add((r.Segment, r.Offset)));
        string path = Path.Combine(dir.Path, records[1].Segment);
        var bytes = File.ReadAllBytes(path);
        bytes[records[1].Offset + 300] ^= 1;
        File.WriteAllBytes(path, bytes);

        Assert.Equal(1, SpoolCommands.Drain(dir.Path, outDir.Path, TextWriter.Null));   // damage left in place
        Assert.Equal(4, Directory.GetFiles(outDir.Path).Length);
        Assert.True(File.Exists(path));
        Assert.Equal(0, SpoolReader.Read(dir.Path).Messages);   // the two others are consumed
        using var again = new TempDir();
        Assert.Equal(1, SpoolCommands.Drain(dir.Path, again.Path, TextWriter.Null));
        Assert.Empty(Directory.GetFiles(again.Path));

        using (MessageSpool.Open(TestSpools.Options(dir.Path), out var report))   // recovery sets the damage aside
        {
            Assert.Single(report.Damaged);
            Assert.Equal(0, report.Messages);
        }
        Assert.False(File.Exists(path));   // nothing live left: the segment is gone
    }

    [Fact]
    public async Task DrainRefusesASpoolAServerHasOpen()
    {
        using var dir = new TempDir();
        await Fill(dir.Path, 1);
        using var spool = TestSpools.Open(dir.Path);
        var output = new StringWriter();
        Assert.Equal(2, SpoolCommands.Drain(dir.Path, dir.Sub("out"), output));
        Assert.Contains("in use", output.ToString());
    }

    // Audit finding: with the lock on a file in the spool, removing that file let a second server in, and its
    // recovery deleted the first one's newest segment (no commit yet) under a message about to be acknowledged.
    [Fact]
    public async Task ASecondServerIsRefusedEvenWithEveryFileButTheSegmentsRemoved()
    {
        using var dir = new TempDir();
        using var first = TestSpools.Open(dir.Path);
        await TestSpools.Write(first, 1, 500, rcpts: "b@example.org");
        foreach (string f in Directory.GetFiles(dir.Path).Where(f => !f.EndsWith(".seg", StringComparison.Ordinal))) File.Delete(f);
        var e = Assert.Throws<IOException>(() => TestSpools.Open(dir.Path));
        Assert.Contains("in use", e.Message);
    }

    // Audit finding: `spool verify` beside a live server once exited 2 with "IO_FileNotFound_FileName": the
    // server had deleted an emptied segment between the listing and the read. A segment gone is an empty one.
    [Fact]
    public async Task AReadOnlyScanSkipsASegmentDeletedWhileItRuns()
    {
        using var dir = new TempDir();
        using (var spool = TestSpools.Open(dir.Path, segment: 64 << 10))
        {
            for (int i = 0; i < 40; i++) Assert.Equal(CommitResult.Committed, (await TestSpools.Write(spool, i, 3000)).Result);
        }
        string[] segments = Directory.GetFiles(dir.Path, "*.seg").Order(StringComparer.Ordinal).ToArray();
        Assert.True(segments.Length >= 2);
        int seen = 0;
        RecoveryReport report = SpoolReader.Read(dir.Path, (in SpoolRecord r) =>
        {
            if (seen++ == 0) File.Delete(segments[^1]);   // as the server would, under the scan
        });
        Assert.True(report.IsClean);
        Assert.True(report.Messages > 0 && report.Messages < 40, $"{report.Messages}");
    }
}
