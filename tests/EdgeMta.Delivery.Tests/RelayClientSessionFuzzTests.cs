// Whatever a next hop says or does, the session keeps its promises to the agent (src/EdgeMta.Delivery/
// RelayTransaction.cs): no exception out of a callback, Completed exactly once for every transaction handed out,
// with every recipient decided, and Ended exactly once, last. Seeded random dialogues of replies (good, bad,
// broken), timeouts, shutdowns and drops; a failure names its seed.
using System.Text;
using EdgeMta.Delivery;
using static EdgeMta.Delivery.Tests.RelayHarness;

namespace EdgeMta.Delivery.Tests;

public class RelayClientSessionFuzzTests
{
    private static readonly string[] Replies =
    [
        "220 mx.example.net ESMTP\r\n", "250 ok\r\n", "250-mx.example.net\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
        "251 forwarded\r\n", "354 go\r\n", "421 4.3.2 closing\r\n", "450 4.2.0 busy\r\n", "452 4.5.3 too many\r\n",
        "500 what\r\n", "550 5.1.1 unknown\r\n", "554 no\r\n", "220 edge.example.org\r\n", "250 edge.example.org\r\n",
        "299-x\r\n300 y\r\n", "2\r\n", "25", "0\r\n", "250 a\nb\r\n", "250 2.0.0 ok\r\n250 2.0.0 ok\r\n",
    ];

    private static readonly string[][] Extensions =
    [
        [], ["PIPELINING"], ["CHUNKING"], ["PIPELINING", "CHUNKING", "8BITMIME", "DSN"], ["STARTTLS", "SIZE 5"],
    ];

    [Fact]
    public void AnyDialogueKeepsTheSessionsPromises()
    {
        var seen = new Dictionary<string, int>();
        for (int seed = 0; seed < 400; seed++)
        {
            var random = new Random(seed);
            string relay = random.Next(3) == 0 ? "lmtp://lmtp.example.net" : "smtp://mx.example.net";
            var tls = (RelayTlsMode)random.Next(4);
            var transactions = new RelayTransaction[random.Next(0, 4)];
            for (int t = 0; t < transactions.Length; t++)
            {
                var recipients = new (string, string)[random.Next(0, 4)];
                for (int r = 0; r < recipients.Length; r++)
                    recipients[r] = ($"r{r}@x.net", random.Next(2) == 0 ? "NOTIFY=SUCCESS" : "");
                string data = random.Next(2) == 0 ? "a\r\n.b\r\n" : new string('z', random.Next(0, 200_000));
                transactions[t] = Transaction(data, "s@x.net", random.Next(2) == 0 ? "BODY=8BITMIME" : "SMTPUTF8", recipients);
            }

            using var h = random.Next(2) == 0
                ? Ready(Options(relay, tls), Extensions[random.Next(Extensions.Length)], transactions)
                : Open(Options(relay, tls), transactions);
            if (random.Next(4) == 0) h.Connection.TlsFailure = "handshake failed";
            var plausible = new Queue<string>();
            plausible.Enqueue("220 mx.example.net ESMTP\r\n");
            for (int step = 0; step < 40 && !h.Connection.IsClosed; step++)
            {
                Expect(h.Take(), plausible, random);
                int roll = random.Next(40);
                if (roll == 0) h.Clock.Advance(TimeSpan.FromSeconds(700));
                else if (roll == 1) h.Transport.Shutdown();
                else if (roll == 2) h.Connection.Disconnect();
                else if (roll < 8 || plausible.Count == 0) h.Reply(Replies[random.Next(Replies.Length)]);
                else h.Reply(plausible.Dequeue());
            }
            if (!h.Connection.IsClosed) h.Connection.Disconnect();

            string context = $"seed {seed}: {h.Connection.Replies}";
            Assert.True(h.Connection.Fault is null, $"{context}\n{h.Connection.Fault}");
            Assert.True(h.Work.Ends.Count == 1, $"{context}: ended {h.Work.Ends.Count} times");
            int handedOut = transactions.Length - h.Work.Pending.Count;
            Assert.True(handedOut == h.Work.Completed.Count, $"{context}: {handedOut} handed out, {h.Work.Completed.Count} completed");
            var completed = new HashSet<RelayTransaction>();
            foreach (var (transaction, outcomes) in h.Work.Completed)
            {
                Assert.True(completed.Add(transaction), $"{context}: completed twice");
                Assert.All(outcomes, o => Assert.NotEqual(OutcomeKind.None, o.Kind));
                Assert.All(outcomes, o => Assert.True(o.Reply.Length is > 0 and <= 512, context));
                foreach (var o in outcomes)
                {
                    string key = o.PossiblyDelivered ? "possibly" : o.Kind.ToString();
                    seen[key] = seen.GetValueOrDefault(key) + 1;
                }
            }
            string ended = h.Work.Ends[0].End.ToString();
            seen[ended] = seen.GetValueOrDefault(ended) + 1;
        }

        // The dialogues reach every kind of outcome and end, so the promises above were tested where they matter.
        string summary = string.Join(", ", seen.Select(p => $"{p.Key}={p.Value}"));
        foreach (string key in new[] { "Delivered", "Failed", "Deferred", "possibly", "Normal", "Broken", "Refused", "Loop", "Shutdown", "TlsFailed" })
            Assert.True(seen.GetValueOrDefault(key) > 0, $"no {key} in {summary}");
    }

    /// <summary>The replies a well-behaved next hop would give to what the client just sent, mostly positive.</summary>
    private static void Expect(string sent, Queue<string> plausible, Random random)
    {
        if (sent.Length == 0)
            return;
        if (sent == ".\r\n" || sent.EndsWith("\r\n.\r\n", StringComparison.Ordinal))
        {
            for (int i = 0; i < 3; i++)
                plausible.Enqueue(random.Next(5) == 0 ? "451 4.3.0 later\r\n" : "250 2.0.0 ok\r\n");
            return;
        }
        foreach (string line in sent.Split("\r\n"))
        {
            string verb = line.Length >= 4 ? line[..4] : line;
            string? reply = verb switch
            {
                "EHLO" or "LHLO" => Ehlo(Extensions[random.Next(Extensions.Length)]),
                "STAR" => "220 go\r\n",
                "DATA" => "354 go\r\n",
                "RCPT" => random.Next(4) == 0 ? "550 5.1.1 unknown\r\n" : "250 ok\r\n",
                "MAIL" or "RSET" or "HELO" or "BDAT" => "250 ok\r\n",
                _ => null,
            };
            if (reply is not null)
                plausible.Enqueue(reply);
        }
    }
}
