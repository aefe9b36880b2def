// The offline spool commands read the delivery journal (FORMAT.md "Delivery journal"): list shows each
// message's state, export and drain write only what is not yet delivered, a partly delivered message goes out
// with its pending recipients only, and a message whose bounce is still owed stays for the server.
using System.Text.Json;

namespace EdgeMta.Spool.Tests;

public class JournalCommandTests
{
    private sealed record Place(string Id, long Segment, long Offset);

    // Four messages of two recipients each, then the journal: done (both delivered), partial (first delivered),
    // owed (both failed, no BounceQueued), fresh (nothing).
    private static async Task<(Place Done, Place Partial, Place Owed, Place Fresh)> Fill(string dir)
    {
        var ids = new List<string>();
        await using (var spool = TestSpools.Open(dir))
        {
            for (int i = 0; i < 4; i++)
            {
                var (r, id) = await TestSpools.Write(spool, i, 500 + i, sender: $"s{i}@example.org", rcpts: ["x@example.net", "y@example.net"]);
                Assert.Equal(CommitResult.Committed, r);
                ids.Add(id);
            }
        }
        var places = new Dictionary<string, Place>();
        SpoolReader.Read(dir, (in SpoolRecord r) => places.Add(r.QueueIdString, new Place(r.QueueIdString, SpoolRecovery.SequenceOf(r.Segment), r.Offset)));
        Place done = places[ids[0]], partial = places[ids[1]], owed = places[ids[2]], fresh = places[ids[3]];
        using (var journal = DeliveryJournal.Open(dir))
        {
            Assert.Equal(0, journal.Append(
            [
                Rec(JournalRecordType.Delivered, done, 0), Rec(JournalRecordType.Delivered, done, 1),
                Rec(JournalRecordType.Delivered, partial, 0), Rec(JournalRecordType.Deferred, partial, 1),
                Rec(JournalRecordType.Failed, owed, 0), Rec(JournalRecordType.Failed, owed, 1),
            ]));
        }
        return (done, partial, owed, fresh);
    }

    private static JournalRecord Rec(JournalRecordType type, Place p, ushort rcpt)
        => new(type, p.Segment, p.Offset, p.Id, rcpt, 1, type == JournalRecordType.Failed ? (ushort)550 : (ushort)250, 2, 0, 0, false, 1, 0);

    [Fact]
    public async Task ListShowsEachMessagesDeliveryState()
    {
        using var dir = new TempDir();
        var (done, partial, owed, fresh) = await Fill(dir.Path);
        var text = new StringWriter();
        Assert.Equal(0, SpoolCommands.List(dir.Path, json: false, text));
        string[] lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith(done.Id + " ", StringComparison.Ordinal) && l.Contains(" s0@example.org ") && l.EndsWith(" done", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(partial.Id + " ", StringComparison.Ordinal) && l.Contains(" s1@example.org ") && l.EndsWith(" partial", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(owed.Id + " ", StringComparison.Ordinal) && l.Contains(" s2@example.org ") && l.EndsWith(" done", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(fresh.Id + " ", StringComparison.Ordinal) && l.Contains(" s3@example.org ") && l.EndsWith(" pending", StringComparison.Ordinal));
        var json = new StringWriter();
        Assert.Equal(0, SpoolCommands.List(dir.Path, json: true, json));
        using var doc = JsonDocument.Parse(json.ToString());
        var p = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetString() == partial.Id);
        Assert.Equal("partial", p.GetProperty("state").GetString());
        Assert.Equal("delivered", p.GetProperty("rcpt")[0].GetProperty("state").GetString());
        Assert.Equal("deferred", p.GetProperty("rcpt")[1].GetProperty("state").GetString());
    }

    [Fact]
    public async Task ExportSkipsFinishedMailAndGivesAPartlyDeliveredOneOnlyItsPendingRecipients()
    {
        using var dir = new TempDir();
        using var outDir = new TempDir();
        var (done, partial, owed, fresh) = await Fill(dir.Path);
        var output = new StringWriter();
        Assert.Equal(0, SpoolCommands.Export(dir.Path, outDir.Path, output));
        Assert.Contains("exported 2 messages", output.ToString());
        Assert.Contains("2 messages already delivered (or failed or deleted) were not exported", output.ToString());
        Assert.False(File.Exists(Path.Combine(outDir.Path, done.Id + ".eml")));
        Assert.False(File.Exists(Path.Combine(outDir.Path, owed.Id + ".eml")));
        Assert.Equal(TestSpools.Content(1, 501), File.ReadAllBytes(Path.Combine(outDir.Path, partial.Id + ".eml")));
        using (var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir.Path, partial.Id + ".json"))))
        {
            var rcpt = Assert.Single(doc.RootElement.GetProperty("rcpt").EnumerateArray());
            Assert.Equal("y@example.net", rcpt.GetProperty("to").GetString());
        }
        using (var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir.Path, fresh.Id + ".json"))))
            Assert.Equal(2, doc.RootElement.GetProperty("rcpt").GetArrayLength());
    }

    [Fact]
    public async Task DrainSkipsDeliveredMailAndLeavesAMessageWhoseBounceIsOwed()
    {
        using var dir = new TempDir();
        using var outDir = new TempDir();
        var (done, partial, owed, fresh) = await Fill(dir.Path);
        var output = new StringWriter();
        Assert.Equal(0, SpoolCommands.Drain(dir.Path, outDir.Path, output));
        Assert.Contains("drained 2 messages", output.ToString());
        Assert.Contains("1 messages already delivered (or failed or deleted) were released, not exported", output.ToString());
        Assert.Contains("1 failed messages left in place: the server sends their bounces when it next starts", output.ToString());
        string[] exported = Directory.GetFiles(outDir.Path, "*.eml").Select(Path.GetFileNameWithoutExtension).Order().ToArray()!;
        Assert.Equal(new[] { partial.Id, fresh.Id }.Order(), exported);
        // Only the owed message is still live; its segment stays.
        var left = TestSpools.ReadAll(dir.Path, out _);
        Assert.Equal(owed.Id, Assert.Single(left).Key);
        Assert.DoesNotContain(done.Id, left.Keys);
    }

    [Fact]
    public async Task AJournalRecordAtAnotherPlaceSaysNothingAboutTheMessage()
    {
        using var dir = new TempDir();
        using var outDir = new TempDir();
        string id;
        await using (var spool = TestSpools.Open(dir.Path)) id = (await TestSpools.Write(spool, 7, 300)).Id;
        using (var journal = DeliveryJournal.Open(dir.Path))
            Assert.Equal(0, journal.Append([new JournalRecord(JournalRecordType.Delivered, 99, 4096, id, 0, 1, 250, 2, 0, 0, false, 1, 0)]));
        Assert.Equal(0, SpoolCommands.Export(dir.Path, outDir.Path, TextWriter.Null));
        Assert.True(File.Exists(Path.Combine(outDir.Path, id + ".eml")), "a stale record does not make a message delivered");
    }
}
