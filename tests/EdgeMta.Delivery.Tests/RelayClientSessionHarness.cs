// Contract: drives a RelayClientSession over the TestKit's InMemoryConnection with a scripted next hop: the
// test sends the server's replies (Reply) and reads what the client sent (Sends, one string per write). The
// agent's side (IRelayWork) is a queue of transactions; each Completed call keeps a copy of the outcomes as
// they were then, and Ended keeps its end and reason, so a test can assert that each happened exactly once.
using System.Text;
using EdgeMta.Delivery;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

internal sealed class ScriptedWork : IRelayWork
{
    public Queue<RelayTransaction> Pending { get; } = new();
    public List<(RelayTransaction Transaction, RecipientOutcome[] Outcomes)> Completed { get; } = [];
    public List<(SessionEnd End, string Reason)> Ends { get; } = [];
    public int TryNextCalls { get; private set; }

    public bool TryNext(out RelayTransaction transaction)
    {
        TryNextCalls++;
        return Pending.TryDequeue(out transaction!);
    }

    void IRelayWork.Completed(RelayTransaction transaction) =>
        Completed.Add((transaction, transaction.Outcomes[..transaction.Recipients.Count]));

    public void Ended(SessionEnd end, string reason) => Ends.Add((end, reason));

    public RecipientOutcome[] Only() => Assert.Single(Completed).Outcomes;

    public (SessionEnd End, string Reason) End() => Assert.Single(Ends);
}

internal sealed class RelayHarness : IDisposable
{
    public const string Hostname = "edge.example.org";

    private RelayHarness(RelaySessionOptions options, ScriptedWork work, FakeClock clock)
    {
        Work = work;
        Clock = clock;
        Session = new RelayClientSession(options, work);
        Transport = new InMemoryTransport(new SingleHandlerFactory(Session), clock);
    }

    public ScriptedWork Work { get; }
    public FakeClock Clock { get; }
    public RelayClientSession Session { get; }
    public InMemoryTransport Transport { get; }
    public InMemoryConnection Connection { get; private set; } = null!;

    public static RelaySessionOptions Options(string relay = "smtp://mx.example.net", RelayTlsMode tls = RelayTlsMode.None, FakeClock? clock = null)
    {
        Assert.True(RelayEndpoint.TryParse(relay, out var endpoint, out string error), error);
        return new RelaySessionOptions { Endpoint = endpoint, Hostname = Hostname, Tls = tls, Clock = clock ?? new FakeClock() };
    }

    /// <summary>Opens the connection; the session waits for the greeting.</summary>
    public static RelayHarness Open(RelaySessionOptions options, params RelayTransaction[] transactions)
    {
        var work = new ScriptedWork();
        foreach (var transaction in transactions)
            work.Pending.Enqueue(transaction);
        var harness = new RelayHarness(options, work, (FakeClock)options.Clock);
        harness.Connection = harness.Transport.Connect();
        return harness;
    }

    /// <summary>Greeting and EHLO answered with <paramref name="extensions"/> (one per line); returns what the
    /// client sent after the EHLO reply.</summary>
    public static RelayHarness Ready(RelaySessionOptions options, string[] extensions, params RelayTransaction[] transactions)
    {
        var harness = Open(options, transactions);
        harness.Reply("220 mx.example.net ESMTP\r\n");
        Assert.Equal(options.Endpoint.IsLmtp ? "LHLO edge.example.org\r\n" : "EHLO edge.example.org\r\n", harness.Take());
        harness.Reply(Ehlo(extensions));
        return harness;
    }

    public static string Ehlo(params string[] extensions)
    {
        var text = new StringBuilder();
        text.Append(extensions.Length == 0 ? "250 " : "250-").Append("mx.example.net hello\r\n");
        for (int i = 0; i < extensions.Length; i++)
            text.Append(i == extensions.Length - 1 ? "250 " : "250-").Append(extensions[i]).Append("\r\n");
        return text.ToString();
    }

    public void Reply(string text) => Connection.Send(text);

    /// <summary>What the client sent since the last call, all writes together.</summary>
    public string Take() => Connection.TakeReplies();

    public static RelayTransaction Transaction(string data, string reversePath = "sender@example.com", string mailParameters = "",
        params (string Path, string Parameters)[] recipients)
    {
        var transaction = new RelayTransaction
        {
            QueueId = "Q1",
            ReversePath = Encoding.Latin1.GetBytes(reversePath),
            MailParameters = Encoding.Latin1.GetBytes(mailParameters),
            Data = Encoding.Latin1.GetBytes(data),
        };
        transaction.Reset(recipients.Length);
        foreach (var (path, parameters) in recipients)
        {
            transaction.Recipients.Add(Encoding.Latin1.GetBytes(path));
            transaction.RecipientParameters.Add(Encoding.Latin1.GetBytes(parameters));
        }
        return transaction;
    }

    public static RelayTransaction To(string data, params string[] recipients) =>
        Transaction(data, recipients: [.. recipients.Select(r => (r, ""))]);

    public void Dispose() => Transport.Dispose();
}
