// The per-client rate limits (Screening/ClientScreening.cs, docs/SCREENING.md) over the in-memory transport and
// a fake clock: the N+1th connection, MAIL and RCPT in a client's 60 s window get the contract's replies, one
// log line and one count each; the window's end lets the client in again; trusted networks are exempt; an
// IPv6 client is counted by its /84.
using System.Net;
using EdgeMta.Policy;
using EdgeMta.Server.Screening;

namespace EdgeMta.Server.Tests;

public sealed class ClientScreeningTests : IDisposable
{
    private ServerHarness? _server;
    private RateLimits? _limits;

    public void Dispose() => _server?.Dispose();

    private ServerHarness Serve(ServerOptions options)
    {
        _server = new ServerHarness(verbose: false, screening: _ => new ClientScreening(_limits!));
        _limits = new RateLimits(options, _server.Log, _server.Clock);
        return _server;
    }

    private static IPEndPoint From(string address) => new(IPAddress.Parse(address), 40000);

    [Fact]
    public void TheConnectionOverTheRateGets421AndIsClosedUntilTheWindowEnds()
    {
        ServerHarness server = Serve(new ServerOptions { ClientConnectionRate = 2 });
        for (int i = 0; i < 2; i++)
        {
            InMemoryConnection ok = server.Transport.Connect(From("192.0.2.1"));
            Assert.StartsWith("220 ", ok.TakeReplies());
            ok.Send("QUIT\r\n");
        }
        InMemoryConnection third = server.Transport.Connect(From("192.0.2.1"));
        Assert.Equal("421 4.7.0 Error: too many connections from 192.0.2.1\r\n", third.TakeReplies());
        Assert.True(third.IsClosed);
        Assert.StartsWith("220 ", server.Transport.Connect(From("192.0.2.2")).TakeReplies()); // another client

        server.Clock.Advance(TimeSpan.FromSeconds(60));
        Assert.StartsWith("220 ", server.Transport.Connect(From("192.0.2.1")).TakeReplies());
        Assert.Equal(1, _limits!.Counters.Connections);
        string log = server.LogText();
        Assert.Contains("rate-limited client=192.0.2.1 kind=connection limit=2\n", log);
        Assert.Single(log.Split('\n'), l => l.Contains("rate-limited", StringComparison.Ordinal));
    }

    [Fact]
    public void TheMailOverTheRateGets450AndTheSessionGoesOn()
    {
        ServerHarness server = Serve(new ServerOptions { ClientMessageRate = 2 });
        InMemoryConnection c = server.Transport.Connect(From("192.0.2.1"));
        c.Send("EHLO client.example\r\n");
        c.TakeReplies();
        c.Send("MAIL FROM:<a@example.org>\r\nRSET\r\nMAIL FROM:<a@example.org>\r\nRSET\r\nMAIL FROM:<a@example.org>\r\nNOOP\r\n");
        Assert.Equal("250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"
            + "450 4.7.1 Error: too much mail from 192.0.2.1\r\n250 2.0.0 Ok\r\n", c.TakeReplies());
        c.Send("RCPT TO:<b@example.com>\r\n");
        Assert.StartsWith("503 ", c.TakeReplies()); // the refused MAIL began no transaction
        Assert.Equal(1, _limits!.Counters.Mails);
        Assert.Contains("rate-limited client=192.0.2.1 kind=mail limit=2\n", server.LogText());
    }

    [Fact]
    public void TheRecipientOverTheRateGets450AndIsNotAdded()
    {
        ServerHarness server = Serve(new ServerOptions { ClientRecipientRate = 2 });
        InMemoryConnection c = server.Transport.Connect(From("192.0.2.1"));
        c.Send("EHLO client.example\r\n");
        c.TakeReplies();
        c.Send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n");
        Assert.Equal("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n450 4.7.1 Error: too many recipients from 192.0.2.1\r\n",
            c.TakeReplies());
        Assert.Equal(1, _limits!.Counters.Recipients);
        Assert.Contains("rate-limited client=192.0.2.1 kind=rcpt limit=2\n", server.LogText());
    }

    [Fact]
    public void TrustedNetworksAreExemptAndOtherClientsAreNot()
    {
        ServerHarness server = Serve(new ServerOptions
        {
            ClientConnectionRate = 1,
            TrustedNetworks = new ClientNetworks([IPNetwork.Parse("198.51.100.0/24")]),
        });
        for (int i = 0; i < 5; i++)
        {
            Assert.StartsWith("220 ", server.Transport.Connect(From("198.51.100.7")).TakeReplies());
        }
        Assert.StartsWith("220 ", server.Transport.Connect(From("127.0.0.1")).TakeReplies());
        Assert.StartsWith("421 ", server.Transport.Connect(From("127.0.0.1")).TakeReplies()); // loopback no longer trusted
        Assert.Equal(1, _limits!.Counters.Connections);
    }

    [Fact]
    public void IPv6ClientsInOneSlash84ShareTheirCountAndTheReplyNamesTheAddress()
    {
        ServerHarness server = Serve(new ServerOptions { ClientConnectionRate = 1 });
        Assert.StartsWith("220 ", server.Transport.Connect(From("2001:db8:1:2:3000::1")).TakeReplies());
        Assert.Equal("421 4.7.0 Error: too many connections from 2001:db8:1:2:3000:fff:0:9\r\n",
            server.Transport.Connect(From("2001:db8:1:2:3000:fff::9")).TakeReplies());
        Assert.StartsWith("220 ", server.Transport.Connect(From("2001:db8:1:2:3000:1000::1")).TakeReplies());
    }

    [Fact]
    public void WithEveryLimitOffNothingIsCounted()
    {
        Assert.False(RateLimits.AnyOn(new ServerOptions()));
        ServerHarness server = Serve(new ServerOptions());
        InMemoryConnection c = server.Transport.Connect(From("192.0.2.1"));
        c.Send("EHLO client.example\r\n");
        c.Send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
        Assert.EndsWith("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", c.TakeReplies());
        Assert.Equal(0, _limits!.Table.CountEntries());
    }
}
