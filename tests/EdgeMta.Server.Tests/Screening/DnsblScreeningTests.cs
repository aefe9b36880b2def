using System.Buffers;
using System.Net;
using System.Text;
using EdgeMta.Policy;
using EdgeMta.Protocol;
using EdgeMta.Server.Dns;
using EdgeMta.Server.Logging;
using EdgeMta.Server.Screening;

namespace EdgeMta.Server.Tests.Screening;

/// <summary>One connection's blocklist screening over a resolver the test answers by hand.</summary>
public sealed class DnsblScreeningTests : IDisposable
{
    private static readonly IPAddress Client = IPAddress.Parse("192.0.2.1");
    private readonly FakeClock _clock = new();
    private readonly MemoryStream _logStream = new();
    private readonly ServerLog _log;
    private readonly ScriptedResolver _dns = new();
    private int _ready;

    public DnsblScreeningTests()
    {
        _log = new ServerLog(_logStream, verbose: false, _clock);
    }

    public void Dispose() => _log.Dispose();

    private Blocklists Lists(DnsblAction action, int threshold = 1, params string[] sites) =>
        new(new DnsblOptions([.. (sites.Length == 0 ? ["bl.example"] : sites).Select(Site)], threshold, action,
            [new IPEndPoint(IPAddress.Loopback, 53)], TimeSpan.FromSeconds(5)), _log, _clock, _dns);

    private static DnsblSite Site(string text) => DnsblSite.TryParse(text, out DnsblSite? s, out string e) ? s : throw new ArgumentException(e);

    private string LogText()
    {
        _log.Flush();
        return Encoding.UTF8.GetString(_logStream.ToArray());
    }

    private static (ScreeningAnswer Answer, string Reply) Ask(Func<IBufferWriter<byte>, ScreeningAnswer> question)
    {
        var output = new ArrayBufferWriter<byte>();
        ScreeningAnswer answer = question(output);
        return (answer, Encoding.ASCII.GetString(output.WrittenSpan));
    }

    private DnsblScreening Started(Blocklists lists, IPAddress? client = null)
    {
        DnsblScreening screening = lists.CreateScreening();
        Assert.False(screening.Start(client ?? Client, () => Interlocked.Increment(ref _ready)));
        return screening;
    }

    [Fact]
    public void EveryZoneIsAskedAtOnceWithTheReversedAddress()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce, 1, "a.example", "b.example*2");
        Started(lists);
        Assert.Equal(["1.2.0.192.a.example", "1.2.0.192.b.example"], _dns.Names);
    }

    [Fact]
    public void EnforceWaitsAtRcptThenRefusesItWith550()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce);
        DnsblScreening s = Started(lists);
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnConnect).Answer);   // the greeting never waits
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnHello).Answer);
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnMail).Answer);
        (ScreeningAnswer pending, string nothing) = Ask(s.OnRecipient);
        Assert.Equal(ScreeningAnswer.Pending, pending);
        Assert.Empty(nothing);
        Assert.Equal(0, _ready);
        _dns.Answer(0, Listed(0x7F000002));
        Assert.Equal(1, _ready); // the session is resumed once
        (ScreeningAnswer refused, string reply) = Ask(s.OnRecipient);
        Assert.Equal(ScreeningAnswer.Refuse, refused);
        Assert.Equal("550 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.example\r\n", reply);
        Assert.Equal(ScreeningAnswer.Refuse, Ask(s.OnRecipient).Answer); // every RCPT
        Assert.Equal(1, lists.Counters.Blocked(DnsblAction.Enforce));    // counted once per connection
        Assert.Equal(1, lists.Counters.QueriesListed);
        string log = LogText();
        Assert.Contains(" 90 dnsbl-listed client=192.0.2.1 zones=bl.example score=1\n", log);
        Assert.Single(log.Split('\n'), l => l.Contains("dnsbl-refused client=192.0.2.1 zone=bl.example action=enforce"));
    }

    [Fact]
    public void AVerdictKnownBeforeTheQuestionNeedsNoResume()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce);
        DnsblScreening s = Started(lists);
        _dns.Answer(0, DnsAnswer.Failed(DnsResult.NoSuchName) with { Ttl = TimeSpan.FromMinutes(5) });
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnRecipient).Answer);
        Assert.Equal(0, _ready);
        Assert.Equal(1, lists.Counters.QueriesClean);
        Assert.DoesNotContain("dnsbl-listed", LogText());
    }

    [Fact]
    public void DropRefusesAtConnectWhenTheVerdictIsCachedAndAtHelloOtherwise()
    {
        using Blocklists lists = Lists(DnsblAction.Drop);
        DnsblScreening first = Started(lists);
        Assert.Equal(ScreeningAnswer.Accept, Ask(first.OnConnect).Answer);
        Assert.Equal(ScreeningAnswer.Pending, Ask(first.OnHello).Answer);
        _dns.Answer(0, Listed(0x7F00000A));
        Assert.Equal(1, _ready);
        (ScreeningAnswer closed, string reply) = Ask(first.OnHello);
        Assert.Equal(ScreeningAnswer.RefuseAndClose, closed);
        Assert.Equal("521 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.example\r\n", reply);
        first.Stop();

        // The same client again: from the cache, before the greeting, with no DNS question.
        DnsblScreening second = lists.CreateScreening();
        Assert.True(second.Start(Client, () => Interlocked.Increment(ref _ready)));
        Assert.Single(_dns.Names);
        (ScreeningAnswer atConnect, string again) = Ask(second.OnConnect);
        Assert.Equal(ScreeningAnswer.RefuseAndClose, atConnect);
        Assert.StartsWith("521 5.7.1 ", again);
        Assert.Equal(2, lists.Counters.Blocked(DnsblAction.Drop));
    }

    [Fact]
    public void IgnoreNeverWaitsNorRefusesButLogsAndCounts()
    {
        using Blocklists lists = Lists(DnsblAction.Ignore);
        DnsblScreening s = Started(lists);
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnHello).Answer);
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnRecipient).Answer);
        _dns.Answer(0, Listed(0x7F000002));
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnRecipient).Answer);
        Assert.Equal(0, _ready);
        Assert.Equal(1, lists.Counters.Blocked(DnsblAction.Ignore));
        Assert.Contains("dnsbl-listed client=192.0.2.1 zones=bl.example score=1", LogText());
    }

    [Theory]
    [InlineData(DnsResult.Timeout, "timeout")]
    [InlineData(DnsResult.ServerFailure, "servfail")]
    [InlineData(DnsResult.Malformed, "malformed")]
    public void AZoneInTroubleCountsAsNotListed(DnsResult result, string logged)
    {
        using Blocklists lists = Lists(DnsblAction.Enforce, 1, "dead.example", "bl.example");
        DnsblScreening s = Started(lists);
        Assert.Equal(ScreeningAnswer.Pending, Ask(s.OnRecipient).Answer);
        _dns.Answer(1, DnsAnswer.Failed(DnsResult.NoSuchName));
        Assert.Equal(0, _ready);
        _dns.Answer(0, DnsAnswer.Failed(result));
        Assert.Equal(1, _ready);
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnRecipient).Answer);
        Assert.Equal(result == DnsResult.Timeout ? 1 : 0, lists.Counters.QueriesTimeout);
        Assert.Equal(result == DnsResult.Timeout ? 0 : 1, lists.Counters.QueriesError);
        Assert.Contains($"dnsbl-trouble zone=dead.example result={logged} suppressed=0", LogText());
        // Not cached for long: a zone that failed may list the client; it is asked again after 60 s.
        _clock.Advance(DnsblVerdictCache.MinTtl);
        Assert.False(lists.Cache.TryGet(Client, out _));
    }

    [Fact]
    public void TroubleIsLoggedOncePerZoneEveryTenSeconds()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce);
        for (int i = 0; i < 5; i++)
        {
            Started(lists, new IPAddress([198, 51, 100, (byte)i]));
            _dns.Answer(i, DnsAnswer.Failed(DnsResult.Timeout));
        }
        _clock.Advance(Blocklists.TroubleLogInterval);
        Started(lists, new IPAddress([198, 51, 100, 9]));
        _dns.Answer(5, DnsAnswer.Failed(DnsResult.Timeout));
        string[] lines = [.. LogText().Split('\n').Where(l => l.Contains("dnsbl-trouble"))];
        Assert.Equal(2, lines.Length);
        Assert.EndsWith("suppressed=0", lines[0]);
        Assert.EndsWith("suppressed=4", lines[1]);
        Assert.Equal(6, lists.Counters.QueriesTimeout);
    }

    [Fact]
    public void TheSpamhausErrorCodeNeverBlocks()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce);
        DnsblScreening s = Started(lists);
        _dns.Answer(0, Listed(0x7FFFFFFE)); // 127.255.255.254: query via a public resolver
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnRecipient).Answer);
        Assert.Equal(1, lists.Counters.QueriesClean);
    }

    [Fact]
    public void AnAllowlistKeepsAListedClientIn()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce, 1, "bl.example*2", "wl.example=127.0.[0..255].[0..255]*-2");
        DnsblScreening s = Started(lists);
        _dns.Answer(0, Listed(0x7F000002));
        _dns.Answer(1, Listed(0x7F000A03));
        Assert.Equal(ScreeningAnswer.Accept, Ask(s.OnRecipient).Answer);
        Assert.Contains("dnsbl-listed client=192.0.2.1 zones=bl.example,wl.example score=0", LogText());
    }

    [Fact]
    public void ALateAnswerForAClosedConnectionIsIgnored()
    {
        using Blocklists lists = Lists(DnsblAction.Enforce);
        DnsblScreening s = Started(lists);
        Assert.Equal(ScreeningAnswer.Pending, Ask(s.OnRecipient).Answer);
        s.Stop();
        // The pooled screening serves the next connection before the first one's answer arrives.
        Assert.False(s.Start(IPAddress.Parse("192.0.2.2"), () => Interlocked.Increment(ref _ready)));
        _dns.Answer(0, Listed(0x7F000002));
        Assert.Equal(0, _ready);
        Assert.Null(s.Verdict);
        Assert.False(lists.Cache.TryGet(Client, out _));
        _dns.Answer(1, DnsAnswer.Failed(DnsResult.NoSuchName));
        Assert.Same(DnsblVerdict.Clean, s.Verdict);
    }

    private static DnsAnswer Listed(uint address) => new(DnsResult.Answered, [address], TimeSpan.FromMinutes(10));

    // Records each question; the test answers them by index, on its own thread.
    private sealed class ScriptedResolver : IDnsResolver
    {
        private readonly List<(string Name, IDnsAnswerSink Sink, int Token)> _questions = [];

        public IReadOnlyList<string> Names => [.. _questions.Select(q => q.Name)];

        public void Query(string name, IDnsAnswerSink sink, int token) => _questions.Add((name, sink, token));

        public void Answer(int question, DnsAnswer answer) => _questions[question].Sink.OnAnswer(_questions[question].Token, answer);
    }
}
