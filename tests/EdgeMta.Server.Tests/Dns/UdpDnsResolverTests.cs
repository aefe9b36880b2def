using System.Net;
using EdgeMta.Server.Dns;

namespace EdgeMta.Server.Tests.Dns;

/// <summary>The stub resolver against a real DNS server (dnsmasq) and against servers that misbehave.</summary>
public sealed class UdpDnsResolverTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static Dnsmasq BlocklistServer() => new(
        ["bl.test"],
        [("2.0.0.127.bl.test", "127.0.0.2"), ("254.0.0.127.bl.test", "127.255.255.254")],
        ttlSeconds: 600);

    [Fact]
    public void AListedNameAnswersItsAddressAndTtl()
    {
        using Dnsmasq dns = BlocklistServer();
        using var resolver = new UdpDnsResolver([dns.EndPoint], Timeout);
        var probe = new ResolverProbe();
        DnsAnswer answer = ResolverProbe.Await(probe.Ask(resolver, "2.0.0.127.bl.test"));
        Assert.Equal(DnsResult.Answered, answer.Result);
        Assert.Equal([0x7F000002u], answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(600), answer.Ttl);
        DnsAnswer error = ResolverProbe.Await(probe.Ask(resolver, "254.0.0.127.bl.test", token: 1));
        Assert.Equal([0x7FFFFFFEu], error.Addresses);
    }

    [Fact]
    public void AnUnlistedNameIsNxdomain()
    {
        using Dnsmasq dns = BlocklistServer();
        using var resolver = new UdpDnsResolver([dns.EndPoint], Timeout);
        var probe = new ResolverProbe();
        DnsAnswer answer = ResolverProbe.Await(probe.Ask(resolver, "9.2.0.192.BL.test"));
        Assert.Equal(DnsResult.NoSuchName, answer.Result);
        Assert.Empty(answer.Addresses);
        Assert.Equal(0, resolver.InFlight);
    }

    [Fact]
    public void ManyQuestionsInParallelEachGetTheirOwnAnswer()
    {
        using Dnsmasq dns = BlocklistServer();
        using var resolver = new UdpDnsResolver([dns.EndPoint], Timeout);
        var probe = new ResolverProbe();
        var tasks = new Task<DnsAnswer>[200];
        for (int i = 0; i < tasks.Length; i++) tasks[i] = probe.Ask(resolver, i % 2 == 0 ? "2.0.0.127.bl.test" : $"{i}.2.0.192.bl.test", i);
        for (int i = 0; i < tasks.Length; i++)
        {
            Assert.Equal(i % 2 == 0 ? DnsResult.Answered : DnsResult.NoSuchName, ResolverProbe.Await(tasks[i]).Result);
        }
        Assert.Equal(0, probe.Duplicates);
    }

    [Theory]
    [InlineData(Fault.ServFail, DnsResult.ServerFailure)]
    [InlineData(Fault.Refused, DnsResult.ServerFailure)]
    [InlineData(Fault.GarbageAfterId, DnsResult.Malformed)]
    public void AFailingServerIsAnOutcomeNotAnException(Fault fault, DnsResult expected)
    {
        using var server = new FaultyDnsServer(fault);
        using var resolver = new UdpDnsResolver([server.EndPoint], Timeout);
        var probe = new ResolverProbe();
        DnsAnswer answer = ResolverProbe.Await(probe.Ask(resolver, "2.0.0.127.bl.test"));
        Assert.Equal(expected, answer.Result);
        Assert.Equal(0, resolver.InFlight);
    }

    [Theory]
    [InlineData(Fault.Silent, 0)]
    [InlineData(Fault.Garbage, 2)]
    [InlineData(Fault.WrongId, 2)] // a listing under the wrong id must not be taken
    public void WithoutAUsableAnswerTheQuestionTimesOutAtTheDeadline(Fault fault, int strays)
    {
        var clock = new FakeClock();
        using var server = new FaultyDnsServer(fault);
        using var resolver = new UdpDnsResolver([server.EndPoint], Timeout, clock);
        var probe = new ResolverProbe();
        Task<DnsAnswer> pending = probe.Ask(resolver, "2.0.0.127.bl.test");
        server.WaitForQuestions();
        // One server: sent at once and again halfway (res_send's retry); nothing is given up before the deadline.
        clock.Advance(Timeout / 2);
        server.WaitForQuestions();
        clock.Advance(Timeout / 2 - TimeSpan.FromMilliseconds(1));
        WaitFor(() => resolver.Stray >= strays);
        Assert.False(pending.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        DnsAnswer answer = ResolverProbe.Await(pending);
        Assert.Equal(DnsResult.Timeout, answer.Result);
        Assert.Equal(strays, resolver.Stray);
        Assert.Equal(0, resolver.InFlight);
    }

    [Fact]
    public void QuestionsAskedAtDifferentTimesEachEndAtTheirOwnDeadline()
    {
        // One timer serves every question: it must fire for the earliest, and re-arm for the next, however they
        // were asked; an answered question waiting in its queue must not hold the others back.
        var clock = new FakeClock();
        using var server = new FaultyDnsServer(Fault.Silent);
        using var resolver = new UdpDnsResolver([server.EndPoint], Timeout, clock);
        var probe = new ResolverProbe();
        Task<DnsAnswer> first = probe.Ask(resolver, "2.0.0.127.bl.test");
        server.WaitForQuestions();
        clock.Advance(Timeout / 4);
        Task<DnsAnswer> second = probe.Ask(resolver, "3.0.0.127.bl.test", token: 1);
        server.WaitForQuestions();
        clock.Advance(Timeout / 2 - Timeout / 4);      // the first's retransmit
        server.WaitForQuestions();
        clock.Advance(Timeout / 4);                    // the second's
        server.WaitForQuestions();
        clock.Advance(Timeout / 4 - TimeSpan.FromMilliseconds(1));
        Assert.False(first.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));   // the first's deadline, exactly
        Assert.Equal(DnsResult.Timeout, ResolverProbe.Await(first).Result);
        Assert.False(second.IsCompleted);
        Assert.Equal(1, resolver.InFlight);
        clock.Advance(Timeout / 4 - TimeSpan.FromMilliseconds(1));
        Assert.False(second.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));   // the second's deadline, a quarter later
        Assert.Equal(DnsResult.Timeout, ResolverProbe.Await(second).Result);
        Assert.Equal(0, resolver.InFlight);
    }

    [Fact]
    public void TheRetryGoesToTheNextServer()
    {
        var clock = new FakeClock();
        using var silent = new FaultyDnsServer(Fault.Silent);
        using Dnsmasq dns = BlocklistServer();
        using var resolver = new UdpDnsResolver([silent.EndPoint, dns.EndPoint], Timeout, clock);
        var probe = new ResolverProbe();
        Task<DnsAnswer> pending = probe.Ask(resolver, "2.0.0.127.bl.test");
        silent.WaitForQuestions();
        clock.Advance(Timeout / 3); // two servers: three attempts
        Assert.Equal(DnsResult.Answered, ResolverProbe.Await(pending).Result);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a..bl.test")]
    [InlineData("bl.test.with space")]
    public void ANameThatIsNotADnsNameIsNotSent(string name)
    {
        using var server = new FaultyDnsServer(Fault.Silent);
        using var resolver = new UdpDnsResolver([server.EndPoint], Timeout);
        var probe = new ResolverProbe();
        Task<DnsAnswer> answer = probe.Ask(resolver, name);
        Assert.True(answer.IsCompleted); // at once, inline
        Assert.Equal(DnsResult.NotSent, ResolverProbe.Await(answer).Result);
    }

    [Fact]
    public void ResolvConfNamesAtMostThreeServersAndDefaultsToTheLocalOne()
    {
        IPEndPoint[] servers = ResolvConf.Parse("# comment\nsearch example\nnameserver 192.0.2.53\nnameserver 2001:db8::53 # v6\n"
            + "nameserver bogus\nnameserver 192.0.2.54\nnameserver 192.0.2.55\n");
        Assert.Equal(["192.0.2.53:53", "[2001:db8::53]:53", "192.0.2.54:53"], servers.Select(s => s.ToString()));
        Assert.Equal(["127.0.0.1:53", "[::1]:53"], ResolvConf.Parse(null).Select(s => s.ToString()));
    }

    private static void WaitFor(Func<bool> condition)
    {
        for (int i = 0; i < 2000 && !condition(); i++) Thread.Sleep(10);
    }
}
