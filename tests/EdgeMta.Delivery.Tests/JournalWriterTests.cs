// The journal writer's linger (JournalWriter, FORMAT.md "Delivery journal", "When durable"): posts wait for others
// to share one durable write, an awaited append never waits, nothing posted is left unwritten at Dispose, and the
// agent lets no message go before its records are durable however long they linger. No test sleeps to prove a
// write happened: each waits for the completion itself, bounded.
using EdgeMta.Spool;

namespace EdgeMta.Delivery.Tests;

public sealed class JournalWriterTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgemta-jw-" + Guid.NewGuid().ToString("N")[..12]);

    public JournalWriterTests() => System.IO.Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { System.IO.Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static JournalRecord Rec(int n)
        => new(JournalRecordType.Delivered, 1, 512, $"Q{n:D15}", 0, 1, 250, 2, 0, 0, false, 1_765_000_000_000 + n, 0);

    private static async Task<int> Within(Task<int> t)
    {
        Assert.Same(t, await Task.WhenAny(t, Task.Delay(10_000)));
        return await t;
    }

    private static Task<int> PostAsync(JournalWriter w, JournalRecord r)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        w.Post([r], err => done.TrySetResult(err));
        return done.Task;
    }

    [Fact]
    public async Task Lingering_posts_share_the_write_of_the_next_awaited_append()
    {
        using var w = new JournalWriter(DeliveryJournal.Open(_dir), linger: TimeSpan.FromHours(1));
        var a = PostAsync(w, Rec(1));
        var b = PostAsync(w, Rec(2));
        // The awaited append does not linger, and takes the two posts along: one durable write for three records
        // (without the linger the first post goes out alone as soon as it comes).
        Assert.Equal(0, await Within(w.AppendAsync([Rec(3)])));
        Assert.Equal(0, await Within(a));
        Assert.Equal(0, await Within(b));
        Assert.Equal(1, w.Appends);
        Assert.Equal(3, w.Records);
    }

    [Fact]
    public async Task A_post_alone_is_written_once_its_linger_ends()
    {
        using var w = new JournalWriter(DeliveryJournal.Open(_dir), linger: TimeSpan.FromMilliseconds(20));
        Assert.Equal(0, await Within(PostAsync(w, Rec(1))));
        Assert.Equal(1, w.Appends);
    }

    [Fact]
    public void Dispose_writes_what_lingers_and_then_refuses()
    {
        var w = new JournalWriter(DeliveryJournal.Open(_dir), linger: TimeSpan.FromHours(1));
        int result = -1;
        w.Post([Rec(7)], err => result = err);
        w.Dispose();
        Assert.Equal(0, result);
        var fold = new JournalFold();
        JournalReader.Read(_dir, fold);
        Assert.Equal(RecipientState.Delivered, fold.Find($"Q{7:D15}")!.Recipient(0).State);
        int late = -1;
        w.Post([Rec(8)], err => late = err);
        Assert.Equal(5, late);   // EIO: after Dispose nothing is written, and the caller is told at once
    }

    [Fact]
    public async Task The_agent_keeps_a_delivered_message_until_its_lingering_record_is_durable()
    {
        await using var hop = new TestHop();
        string id;
        await using (var rig = new AgentRig(hop, o => o with { JournalLinger = TimeSpan.FromHours(1) }))
        {
            id = await rig.Send("a@example.org", "Subject: t\r\n\r\nhi\r\n", "b@example.net");
            Assert.True(await TestHop.Until(() => rig.Events.Count($"delivered id={id}") == 1));
            // The next hop has it, but its Delivered record lingers: the message stays in the index (its space is
            // not released; FORMAT.md "Release"). Letting go before the write would show here at once.
            Assert.False(await TestHop.Until(() => rig.Agent.Count == 0, 300));
            Assert.Equal(0, rig.Agent.JournalWrites);
            Assert.Single(hop.Received);
            // A restart stops the journal writer, which writes what lingers: the restarted agent finds the message
            // delivered and sends nothing again.
            await rig.Restart();
            Assert.True(await TestHop.Until(() => rig.Agent.Count == 0));
            Assert.Single(hop.Received);
        }
    }
}
