// The relay client session's steady state (docs/DELIVERY.md "What a delivery attempt does"): one delivered
// message over a reused connection, from the replies to the pipelined MAIL, RCPT and DATA through the data
// blocks (WriteMore) and the reply to the final dot, which hands the next transaction's MAIL out. Time and
// allocated bytes per message ([MemoryDiagnoser]); the goal is 0 B (RelayClientSession.cs: nothing allocated
// per message in the steady state). The same loop as tests/EdgeMta.Delivery.Tests'
// RelayClientSessionAllocationTests, timed here rather than asserted.
// Run: dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*RelaySession*'
// What it does not measure: sockets, the agent (loading, journaling, logging the outcome) or the next hop: the
// session is driven directly by a minimal in-benchmark driver (the TestKit's InMemoryConnection allocates
// itself), with replies ready-made. How it fails: a session that leaves the steady state (a reply it did not
// expect, an end) throws from the benchmark, so a broken dialogue is never timed as a fast one.
using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using EdgeMta.Delivery;
using EdgeMta.Transport;

namespace EdgeMta.Benchmarks;

[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class RelaySessionBenchmarks
{
    [Params(1024, 65536)] public int Size;

    private RelayClientSession? _session;
    private EndlessWork? _work;
    private readonly ArrayBufferWriter<byte> _output = new(1 << 18);
    private static readonly byte[] CommandReplies = "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"u8.ToArray();
    private static readonly byte[] FinalReply = "250 2.0.0 Ok: queued as 4XyZ\r\n"u8.ToArray();

    [GlobalSetup]
    public void GlobalSetup()
    {
        var data = new StringBuilder("Received: from client.example.org by edge.example.org; Sun, 6 Dec 2026 22:00:00 +0000\r\n")
            .Append("From: a@example.org\r\nTo: b@example.net\r\nSubject: steady state\r\n\r\n");
        for (int i = 0; data.Length < Size; i++)
            data.Append(i % 9 == 0 ? ".a line the session must dot-stuff\r\n" : "an ordinary line of message text, 7-bit\r\n");
        var transaction = new RelayTransaction
        {
            QueueId = "B00000000001",
            ReversePath = "a@example.org"u8.ToArray(),
            MailParameters = "BODY=8BITMIME"u8.ToArray(),
            Data = Encoding.ASCII.GetBytes(data.ToString(0, Size)),
        };
        transaction.Reset(1);
        transaction.Recipients.Add("b@example.net"u8.ToArray());
        transaction.RecipientParameters.Add(ReadOnlyMemory<byte>.Empty);
        if (!RelayEndpoint.TryParse("smtp://mx.example.net", out var endpoint, out string error)) throw new InvalidOperationException(error);
        var options = new RelaySessionOptions
        {
            Endpoint = endpoint,
            Hostname = "edge.example.org",
            Tls = RelayTlsMode.None,
            MaxTransactions = int.MaxValue,
            MaxConnectionAge = TimeSpan.MaxValue,
        };
        _work = new EndlessWork(transaction);
        _session = new RelayClientSession(options, _work);
        _session.OnOpened(default, _output);
        Expect(_session.OnReceived("220 mx.example.net ESMTP\r\n"u8, _output, out _), HandlerStatus.Continue);
        Expect(_session.OnReceived("250-mx.example.net hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n250 ENHANCEDSTATUSCODES\r\n"u8,
            _output, out _), HandlerStatus.Continue);
        if (!Encoding.ASCII.GetString(_output.WrittenSpan).Contains("\r\nMAIL FROM:<a@example.org>", StringComparison.Ordinal))
            throw new InvalidOperationException("the session did not start the first transaction after EHLO");
    }

    [Benchmark]
    public void DeliverOneMessage()
    {
        RelayClientSession session = _session!;
        _output.ResetWrittenCount();
        HandlerStatus status = session.OnReceived(CommandReplies, _output, out _);
        // Bounded: the data goes out in blocks of the output buffer's size; 64 KiB needs a few.
        for (int i = 0; i < 64 && status == HandlerStatus.WriteMore; i++)
        {
            _output.ResetWrittenCount();
            status = session.OnWritable(_output);
        }
        _output.ResetWrittenCount();
        Expect(session.OnReceived(FinalReply, _output, out _), HandlerStatus.Continue);
        if (_work!.Last != OutcomeKind.Delivered) throw new InvalidOperationException($"outcome {_work.Last}, not Delivered");
    }

    private static void Expect(HandlerStatus got, HandlerStatus want)
    {
        if (got != want) throw new InvalidOperationException($"session answered {got}, expected {want}");
    }

    /// <summary>Hands out the same transaction for ever, as the agent recycles its transactions.</summary>
    private sealed class EndlessWork(RelayTransaction transaction) : IRelayWork
    {
        public OutcomeKind Last;

        public bool TryNext(out RelayTransaction next)
        {
            Array.Clear(transaction.Outcomes);
            next = transaction;
            return true;
        }

        public void Completed(RelayTransaction done) => Last = done.Outcomes[0].Kind;

        public void Ended(SessionEnd end, string reason) => throw new InvalidOperationException($"session ended: {end} {reason}");
    }
}
