// The queue commands' text (docs/DELIVERY.md "Queue commands"): list lines, list --json objects, show, and the
// request grammar both ends share (QueueRequestLine).
using System.Text;
using System.Text.Json;
using EdgeMta.Delivery;

namespace EdgeMta.Delivery.Tests;

public class QueueFormatterTests
{
    private static readonly DateTimeOffset Arrival = new(2026, 11, 22, 7, 30, 15, TimeSpan.Zero);

    private static QueueItem Item(string id = "0ABCDEFGHJ000001", string sender = "a@example.org", bool held = false) => new(
        id, Arrival, 1234, sender, held,
        [
            new QueueItemRecipient("b@example.net", "deferred", 3, Arrival.AddMinutes(5), "451 4.3.0 try later"),
            new QueueItemRecipient("c@example.net", "pending", 0, null, null),
        ]);

    [Fact]
    public void ListGivesAMessageLineThenAnIndentedLinePerRecipient()
    {
        string text = QueueFormatter.List([Item()], json: false);
        Assert.Equal(
            "0ABCDEFGHJ000001 2026-11-22T07:30:15Z 1234 a@example.org\n"
            + "  b@example.net deferred attempts=3 next=2026-11-22T07:35:15Z reply=451 4.3.0 try later\n"
            + "  c@example.net pending attempts=0 next=- reply=-\n", text);
    }

    [Fact]
    public void ListShowsTheNullSenderAsAngleBracketsAndMarksHeldMessages()
    {
        string line = QueueFormatter.List([Item(sender: "", held: true)], json: false).Split('\n')[0];
        Assert.EndsWith(" 1234 <> held", line);
    }

    [Fact]
    public void ARemoteReplyCannotBreakALineOrDriveTheTerminal()
    {
        var item = new QueueItem("Q1", Arrival, 1, "a@b", false,
            [new QueueItemRecipient("x@y", "deferred", 1, null, "451 one\r\n250 two\u001b[2J")]);
        string text = QueueFormatter.List([item], json: false);
        Assert.Equal(2, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("reply=451 one??250 two?[2J", text);
    }

    [Fact]
    public void JsonIsOneObjectPerLineWithEveryField()
    {
        string text = QueueFormatter.List([Item(), Item("0ABCDEFGHJ000002", sender: "")], json: true);
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var doc = JsonDocument.Parse(lines[0]);
        var root = doc.RootElement;
        Assert.Equal("0ABCDEFGHJ000001", root.GetProperty("id").GetString());
        Assert.Equal("2026-11-22T07:30:15Z", root.GetProperty("arrival").GetString());
        Assert.Equal(1234, root.GetProperty("size").GetInt64());
        Assert.Equal("a@example.org", root.GetProperty("sender").GetString());
        Assert.False(root.GetProperty("held").GetBoolean());
        var r0 = root.GetProperty("recipients")[0];
        Assert.Equal("b@example.net", r0.GetProperty("address").GetString());
        Assert.Equal("deferred", r0.GetProperty("state").GetString());
        Assert.Equal(3, r0.GetProperty("attempts").GetInt32());
        Assert.Equal("2026-11-22T07:35:15Z", r0.GetProperty("next").GetString());
        Assert.Equal("451 4.3.0 try later", r0.GetProperty("reply").GetString());
        var r1 = root.GetProperty("recipients")[1];
        Assert.Equal(JsonValueKind.Null, r1.GetProperty("next").ValueKind);
        Assert.Equal(JsonValueKind.Null, r1.GetProperty("reply").ValueKind);
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal("<>", second.RootElement.GetProperty("sender").GetString());
    }

    [Fact]
    public void ShowGivesTheEnvelopeEachRecipientAndWhatTheHistoryKeeps()
    {
        string text = QueueFormatter.Show([Item()], json: false, replyTextKept: false);
        Assert.Contains("id: 0ABCDEFGHJ000001\n", text);
        Assert.Contains("sender: a@example.org\n", text);
        Assert.Contains("held: no\n", text);
        Assert.Contains("recipient 1: b@example.net\n  state: deferred\n  attempts: 3\n  next attempt: 2026-11-22T07:35:15Z\n"
            + "  last reply: 451 4.3.0 try later\n", text);
        Assert.Contains("recipient 2: c@example.net\n  state: pending\n  attempts: 0\n", text);
        Assert.Contains("history: the journal keeps each recipient's attempt count and last reply code, not every attempt", text);
        Assert.DoesNotContain("reply code", QueueFormatter.Show([Item()], json: false, replyTextKept: true));
    }

    [Theory]
    [InlineData("list", QueueVerb.List, false, false, 0)]
    [InlineData("list --json", QueueVerb.List, true, false, 0)]
    [InlineData("show Q1 Q2\r\n", QueueVerb.Show, false, false, 2)]
    [InlineData("flush", QueueVerb.Flush, false, false, 0)]
    [InlineData("hold  --all ", QueueVerb.Hold, false, true, 0)]
    [InlineData("bounce 0ABCDEFGHJ000001\n", QueueVerb.Bounce, false, false, 1)]
    public void RequestLinesParseAndFormatBackTheSame(string line, QueueVerb verb, bool json, bool all, int ids)
    {
        Assert.True(QueueRequestLine.TryParse(Encoding.ASCII.GetBytes(line), out var request, out string error), error);
        Assert.Equal((verb, json, all, ids), (request.Verb, request.Json, request.All, request.Ids.Count));
        Assert.True(QueueRequestLine.TryParse(Encoding.ASCII.GetBytes(QueueRequestLine.Format(request)), out var again, out _));
        Assert.Equal(request.Ids, again.Ids);
        Assert.Equal((request.Verb, request.Json, request.All), (again.Verb, again.Json, again.All));
    }

    [Theory]
    [InlineData("", "name a queue command")]
    [InlineData("purge", "unknown queue command 'purge'")]
    [InlineData("list Q1", "queue list takes no ids")]
    [InlineData("show", "queue show needs one or more ids")]
    [InlineData("delete", "queue delete needs ids or --all")]
    [InlineData("delete --all Q1", "queue delete needs ids or --all")]
    [InlineData("flush --all", "queue flush takes ids or none")]
    [InlineData("hold --force Q1", "unknown option '--force'")]
    [InlineData("hold ../etc", "is not a queue id")]
    [InlineData("hold Q12345678901234567", "is not a queue id")]
    [InlineData("hold Q1\u0001", "printable ASCII")]
    public void BadRequestsSayWhatIsWrong(string line, string expected)
    {
        Assert.False(QueueRequestLine.TryParse(Encoding.Latin1.GetBytes(line), out _, out string error));
        Assert.Contains(expected, error);
    }

    [Fact]
    public void ALineOverFourKibibytesIsRefused()
    {
        byte[] line = Encoding.ASCII.GetBytes("show " + string.Join(' ', Enumerable.Repeat("Q1", 2100)));
        Assert.True(line.Length > QueueRequestLine.MaxLineBytes);
        Assert.False(QueueRequestLine.TryParse(line, out _, out string error));
        Assert.Contains("at most 4096 bytes", error);
    }
}
