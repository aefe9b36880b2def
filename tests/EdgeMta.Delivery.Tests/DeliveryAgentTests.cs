// The agent end to end inside one process: real spool, real outbound sockets and relay sessions, a scripted next
// hop, and a fake clock for every retry (docs/DELIVERY.md "Replies, per recipient", "Guarantees", "Bounces").
using System.Text;
using EdgeMta.Spool;

namespace EdgeMta.Delivery.Tests;

public sealed class DeliveryAgentTests
{
    private const string Body = "Subject: t\r\n\r\nhello\r\n.leading dot\r\n";

    /// <summary>Moves the clock past a recovered message's retry, again (at most five times) if the pump armed its
    /// timer while the clock moved: one CI run in ten lost that race just after a restart. Moving it further changes
    /// nothing about what may be sent, which the callers still assert.</summary>
    private static async Task<bool> AdvanceUntil(AgentRig rig, TimeSpan step, Func<bool> done)
    {
        for (int i = 0; i < 5; i++)
        {
            rig.Advance(step);
            if (await TestHop.Until(done, 3_000)) return true;
        }
        return false;
    }

    [Fact]
    public async Task Delivers_each_commit_byte_for_byte_and_releases_it()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net", "c@example.net");
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0 && hop.Received.Count == 1));
        var t = hop.Received[0];
        Assert.Equal("a@example.org", t.From);
        Assert.Equal(["b@example.net", "c@example.net"], t.To);
        Assert.Equal(Body, Encoding.Latin1.GetString(t.Data));
        Assert.Equal(2, rig.Events.Count($"delivered id={id}"));
        // Both recipients' Delivered records went out, in at most as many durable writes as records.
        Assert.InRange(rig.Agent.JournalRecords, 2, 10);
        Assert.InRange(rig.Agent.JournalWrites, 1, rig.Agent.JournalRecords);
    }

    [Fact]
    public async Task A_4xx_defers_and_the_retry_delivers_after_the_backoff()
    {
        await using var hop = new TestHop { RcptReply = (conn, _) => conn == 1 ? "451 4.3.0 try later" : null };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={id}") == 1));
        Assert.Contains(rig.Events.Lines, l => l.StartsWith($"deferred id={id}", StringComparison.Ordinal) && l.Contains("451 4.3.0", StringComparison.Ordinal));
        Assert.Equal(1, rig.Agent.Count);
        // Not before --retry-min (60 s here): half of it brings nothing.
        rig.Advance(TimeSpan.FromSeconds(30));
        await Task.Delay(200);
        Assert.Equal(1, hop.Connections);
        rig.Advance(TimeSpan.FromSeconds(40));
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0));
        Assert.Equal(2, hop.Connections);
        Assert.Single(hop.Received);
    }

    [Fact]
    public async Task A_5xx_for_one_of_three_bounces_to_the_sender_once()
    {
        await using var hop = new TestHop { RcptReply = (_, r) => r == "bad@example.net" ? "550 5.1.1 no such user" : null };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net", "bad@example.net", "c@example.net");
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0 && hop.Received.Count == 2));
        Assert.Equal(1, rig.Events.Count($"failed id={id} rcpt=bad@example.net"));
        Assert.Equal(1, rig.Events.Count("bounce "));
        var bounce = hop.Received.Single(t => t.From == "");
        Assert.Equal(["a@example.org"], bounce.To);
        string text = Encoding.Latin1.GetString(bounce.Data);
        Assert.Contains("multipart/report", text);
        Assert.Contains("Final-Recipient: rfc822; bad@example.net", text);
        Assert.Contains("Status: 5.1.1", text);
        Assert.Equal(["b@example.net", "c@example.net"], hop.Received.Single(t => t.From != "").To);
    }

    [Fact]
    public async Task A_null_sender_failure_is_never_bounced()
    {
        await using var hop = new TestHop { RcptReply = (_, _) => "550 5.1.1 no such user" };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("", Body, "bad@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"failed id={id}") == 1 && rig.Agent.Count == 0));
        Assert.Equal(0, rig.Events.Count("bounce "));
        Assert.Empty(hop.Received);
    }

    [Fact]
    public async Task A_restart_resumes_only_what_was_not_delivered()
    {
        await using var hop = new TestHop { RcptReply = (conn, r) => conn == 1 && r == "later@example.net" ? "450 4.2.0 mailbox busy" : null };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "now@example.net", "later@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={id}") == 1 && rig.Events.Count($"delivered id={id}") == 1));
        await rig.Restart();
        Assert.Equal(1, rig.Agent.Recovery.Live);
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromMinutes(20), () => rig.Agent.Count == 0));
        Assert.Equal(2, hop.Received.Count);
        Assert.Equal(["later@example.net"], hop.Received[1].To);
        // And once more: nothing left to do, nothing sent again.
        await rig.Restart();
        Assert.Equal(0, rig.Agent.Recovery.Live);
        rig.Advance(TimeSpan.FromMinutes(20));
        await Task.Delay(200);
        Assert.Equal(2, hop.Received.Count);
    }

    [Fact]
    public async Task A_drop_after_the_final_dot_is_a_possible_duplicate_sent_again()
    {
        await using var hop = new TestHop { DataReply = (conn, _) => conn == 1 ? "DROP" : null };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net");
        // The deferral is logged once the attempt's records are durable and the retry is scheduled.
        Assert.True(await TestHop.Until(() => rig.Events.Count($"possible-duplicate id={id}") == 1 && rig.Events.Count($"deferred id={id}") == 1));
        rig.Advance(TimeSpan.FromMinutes(2));
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0));
        Assert.Equal(2, hop.Received.Count);   // the known duplicate window of RFC 1047
    }

    [Fact]
    public async Task A_dead_hop_gets_one_probe_per_interval_not_one_connection_per_message()
    {
        await using var hop = new TestHop { Greeting = "421 4.3.2 busy" };
        await using var rig = new AgentRig(hop);
        for (int i = 0; i < 20; i++) await rig.Send("a@example.org", Body, $"r{i}@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count("relay-dead") == 1 && rig.Agent.InFlight == 0));
        int first = hop.Connections;
        Assert.InRange(first, 1, 20);   // before the hop is known dead: at most --relay-concurrency (20)
        // What the operator sees: deferred with the hop's reason, not "pending" with no word.
        var list = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.List, false, false, []), default);
        Assert.Contains("deferred", list.Output);
        Assert.Contains("421 4.3.2 busy", list.Output);
        for (int i = 0; i < 10; i++)
        {
            // Each probe must be over (its message deferred again) before the clock moves on: the next probe is
            // timed from the last one's end, and a clock moved while a probe runs would skip an interval.
            rig.Advance(TimeSpan.FromSeconds(60));   // ProbeInterval = min(60 s, --retry-min)
            int want = first + i + 1;
            Assert.True(await TestHop.Until(() => hop.Connections >= want && rig.Agent.InFlight == 0));
        }
        await Task.Delay(200);
        Assert.Equal(first + 10, hop.Connections);
        Assert.Equal(1, rig.Events.Count("relay-dead"));
        hop.Greeting = "220 hop.example ESMTP back";
        rig.Advance(TimeSpan.FromSeconds(60));
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0));
        Assert.Equal(1, rig.Events.Count("relay-alive"));
        Assert.Equal(20, hop.Received.Sum(t => t.To.Count));
    }

    [Fact]
    public async Task Hold_survives_a_restart_and_release_delivers()
    {
        await using var hop = new TestHop { RcptReply = (conn, _) => conn == 1 ? "451 4.3.0 later" : null };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={id}") == 1));
        var held = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Hold, false, false, [id]), default);
        Assert.Equal(0, held.ExitCode);
        await rig.Restart();
        Assert.Equal(1, rig.Agent.Recovery.Held);
        rig.Advance(TimeSpan.FromHours(2));
        await Task.Delay(300);
        Assert.Equal(1, hop.Connections);
        var released = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Release, false, false, [id]), default);
        Assert.Equal(0, released.ExitCode);
        rig.Advance(TimeSpan.FromHours(2));
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0), string.Join("\n", rig.Events.Lines));
        Assert.Single(hop.Received);
    }

    [Fact]
    public async Task Delete_is_final_and_unknown_ids_exit_1()
    {
        await using var hop = new TestHop { RcptReply = (_, _) => "451 4.3.0 later" };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"deferred id={id}") == 1));
        var result = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Delete, false, false, [id, "NOSUCHID00000000"]), default);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal(0, rig.Agent.Count);
        await rig.Restart();
        Assert.Equal(0, rig.Agent.Recovery.Live);
        Assert.Equal(0, rig.Events.Count("bounce "));
    }

    [Fact]
    public async Task Released_messages_let_their_segments_go()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop, segmentSize: 64 << 10);
        for (int i = 0; i < 40; i++) await rig.Send("a@example.org", "Subject: x\r\n\r\n" + new string('x', 8000) + "\r\n", "b@example.net");
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0 && hop.Received.Count == 40));
        await rig.Restart();   // the last segments are no longer being written: they go too
        Assert.True(await TestHop.Until(() => Directory.GetFiles(rig.Directory, "*.seg").Length <= 2));
    }

    [Fact]
    public async Task A_failed_journal_write_sends_again_and_never_assumes_done()
    {
        var io = new FailingJournalIo();
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop, o => o with { JournalIo = io });
        io.Failing = true;
        string id = await rig.Send("a@example.org", Body, "b@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"possible-duplicate id={id}") == 1 && rig.Events.Count("trouble") >= 1));
        Assert.True(io.Failures >= 1);
        Assert.Single(hop.Received);
        Assert.Equal(1, rig.Agent.Count);   // delivered as far as the hop knows, but not on record: kept
        Assert.Equal(1, rig.Events.Lines.Count(l => l.Contains("cannot be written", StringComparison.Ordinal)));
        // While the journal fails, nothing is sent again and again: the agent waits for a probe write to succeed.
        rig.Advance(TimeSpan.FromMinutes(5));
        await Task.Delay(300);
        Assert.Single(hop.Received);
        io.Failing = false;
        rig.Advance(TimeSpan.FromSeconds(6));   // the next probe (every 5 s) succeeds
        Assert.True(await TestHop.Until(() => rig.Events.Lines.Any(l => l.Contains("writable again", StringComparison.Ordinal))));
        var flush = await rig.Agent.RunAsync(new QueueRequest(QueueVerb.Flush, false, false, []), default);
        Assert.Equal(0, flush.ExitCode);
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0));
        Assert.Equal(2, hop.Received.Count);   // sent again: a duplicate, counted, rather than a loss
        await rig.Restart();
        Assert.Equal(0, rig.Agent.Recovery.Live);
    }

    [Fact]
    public async Task An_idle_connection_carries_the_next_message_then_quits_after_10_s()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop);
        await rig.Send("a@example.org", Body, "b@example.net");
        Assert.True(await TestHop.Until(() => hop.Received.Count == 1));
        await rig.Send("a@example.org", Body, "c@example.net");
        Assert.True(await TestHop.Until(() => hop.Received.Count == 2));
        Assert.Equal(1, hop.Connections);   // the second message went over the parked connection
        Assert.Equal(0, hop.Quits);
        rig.Advance(TimeSpan.FromSeconds(11));   // past the idle limit: QUIT, and the next message connects anew
        Assert.True(await TestHop.Until(() => hop.Quits == 1));
        await rig.Send("a@example.org", Body, "d@example.net");
        Assert.True(await TestHop.Until(() => hop.Received.Count == 3));
        Assert.Equal(2, hop.Connections);
    }

    [Fact]
    public async Task Recipients_refused_452_go_in_new_transactions_at_once()
    {
        await using var hop = new TestHop { RecipientLimit = 2 };
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "r1@example.net", "r2@example.net", "r3@example.net", "r4@example.net", "r5@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count($"delivered id={id}") == 5 && rig.Agent.Count == 0));
        Assert.Equal([2, 2, 1], hop.Received.Select(t => t.To.Count));   // three transactions, no wait between them
        Assert.Equal(0, rig.Events.Count($"deferred id={id}"));
        Assert.Equal(5, rig.Events.Lines.Count(l => l.StartsWith($"delivered id={id}", StringComparison.Ordinal) && l.EndsWith("attempts=1", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_damaged_journal_record_means_a_retry_never_a_loss()
    {
        await using var hop = new TestHop();
        await using var rig = new AgentRig(hop);
        string id = await rig.Send("a@example.org", Body, "b@example.net");
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0 && hop.Received.Count == 1));
        await rig.Restart(between: () =>
        {
            // Tear the record of the delivery: one byte of its last non-empty slot (FORMAT.md: a slot that does
            // not check is skipped, and the message counts as not delivered).
            string journal = Directory.GetFiles(Path.Combine(rig.Directory, "journal"), "*.jnl").Order().Last();
            byte[] bytes = File.ReadAllBytes(journal);
            int last = -1;
            for (int at = 512; at + 64 <= bytes.Length; at += 64)
            {
                if (bytes.AsSpan(at, 64).ContainsAnyExcept((byte)0)) last = at;
            }
            Assert.True(last > 0);
            bytes[last + 20] ^= 0x5A;
            File.WriteAllBytes(journal, bytes);
        });
        Assert.Equal(1, rig.Agent.Recovery.Live);
        Assert.True(rig.Agent.Recovery.DamagedRecords >= 1);
        rig.Advance(TimeSpan.FromSeconds(30));   // recovered messages wait RecoveredDelay (10 s) at most
        Assert.True(await TestHop.Until(() => rig.Agent.Count == 0));
        Assert.Equal(2, hop.Received.Count);   // a duplicate, the price of a torn record: never a loss
    }

    [Fact]
    public async Task Delivered_neighbours_of_a_deferred_message_stay_delivered_over_two_restarts()
    {
        // The compaction at start restates what a kept segment holds, finished messages included: it once kept only
        // the live ones, and the second start sent the five delivered messages again.
        await using var hop = new TestHop { RcptReply = (_, r) => r == "later@example.net" ? "451 4.3.0 later" : null };
        await using var rig = new AgentRig(hop);
        for (int i = 0; i < 5; i++) await rig.Send("a@example.org", Body, $"now{i}@example.net");
        string id = await rig.Send("a@example.org", Body, "later@example.net");
        Assert.True(await TestHop.Until(() => rig.Events.Count("delivered") == 5 && rig.Events.Count($"deferred id={id}") == 1));
        for (int restart = 1; restart <= 2; restart++)
        {
            await rig.Restart();
            Assert.Equal(1, rig.Agent.Recovery.Live);
        }
        Assert.True(await AdvanceUntil(rig, TimeSpan.FromMinutes(2), () => rig.Events.Count($"deferred id={id}") >= 1));
        Assert.Equal(5, hop.Received.Count);   // the five, once each; the sixth never accepted by the hop
    }
}
