using System.Buffers.Binary;
using System.Net;

namespace EdgeMta.Policy.Tests;

public sealed class DnsblSiteTests
{
    private static uint Answer(string address) => BinaryPrimitives.ReadUInt32BigEndian(IPAddress.Parse(address).GetAddressBytes());

    private static DnsblSite Parse(string text)
    {
        Assert.True(DnsblSite.TryParse(text, out DnsblSite? site, out string error), error);
        return site;
    }

    [Theory]
    [InlineData("127.0.0.2", true)]
    [InlineData("127.0.0.0", true)]
    [InlineData("127.0.0.255", true)]
    [InlineData("127.255.255.254", false)] // Spamhaus: query through a public resolver
    [InlineData("127.255.255.252", false)]
    [InlineData("127.0.1.2", false)]
    [InlineData("10.0.0.2", false)]
    public void WithoutAFilterOnly127Slash24Counts(string answer, bool counts)
    {
        DnsblSite site = Parse("bl.example");
        Assert.Equal(counts, site.Matches(Answer(answer)));
        Assert.Equal(1, site.Weight);
        Assert.Equal("bl.example", site.Zone);
    }

    [Theory]
    [InlineData("zen.example=127.0.0.[2..11]*3", "127.0.0.2", true)]
    [InlineData("zen.example=127.0.0.[2..11]*3", "127.0.0.11", true)]
    [InlineData("zen.example=127.0.0.[2..11]*3", "127.0.0.1", false)]
    [InlineData("zen.example=127.0.0.[2..11]*3", "127.0.0.12", false)]
    [InlineData("wl.example=127.0.[0..255].[0..255]*-2", "127.0.200.3", true)]
    [InlineData("wl.example=127.0.[0..255].[0..255]*-2", "127.1.0.3", false)]
    [InlineData("bl.example=127.0.0.[2;4;9..10]", "127.0.0.4", true)]
    [InlineData("bl.example=127.0.0.[2;4;9..10]", "127.0.0.3", false)]
    [InlineData("bl.example=127.0.0.[2;4;9..10]", "127.0.0.10", true)]
    [InlineData("bl.example=127.0.0.4", "127.0.0.4", true)]
    [InlineData("bl.example=127.0.0.4", "127.0.0.5", false)]
    [InlineData("bl.example=127.255.255.254", "127.255.255.254", true)] // an operator may ask for it explicitly
    public void AFilterMatchesEachOctetAgainstItsSet(string text, string answer, bool matches)
    {
        Assert.Equal(matches, Parse(text).Matches(Answer(answer)));
    }

    [Theory]
    [InlineData("zen.example=127.0.0.[2..11]*3", 3)]
    [InlineData("wl.example*-2", -2)]
    [InlineData("bl.example", 1)]
    [InlineData("bl.example*0", 0)]
    public void TheWeightIsAfterTheLastStar(string text, int weight)
    {
        Assert.Equal(weight, Parse(text).Weight);
    }

    [Fact]
    public void TheZoneIsFoldedAndLosesItsTrailingDot()
    {
        Assert.Equal("zen.example", Parse("ZEN.Example.=127.0.0.2").Zone);
    }

    [Fact]
    public void AWeightCountsOnceHoweverManyAnswersMatch()
    {
        DnsblSite site = Parse("bl.example*5");
        Assert.True(site.MatchesAny([Answer("127.255.255.254"), Answer("127.0.0.2"), Answer("127.0.0.3")]));
        Assert.False(site.MatchesAny([Answer("127.255.255.254")]));
        var score = new DnsblScore([site], 1);
        Assert.Equal(5, score.Verdict([site.MatchesAny([Answer("127.0.0.2"), Answer("127.0.0.3")])]).Score);
    }

    [Theory]
    [InlineData("")]
    [InlineData("=127.0.0.2")]
    [InlineData("bl.example=127.0.0")]
    [InlineData("bl.example=127.0.0.2.3")]
    [InlineData("bl.example=127.0.0.256")]
    [InlineData("bl.example=127.0.0.[3..2]")]
    [InlineData("bl.example=127.0.0.[2..11")]
    [InlineData("bl.example=127.0.0.[]")]
    [InlineData("bl.example=127.0.0.[1;;2]")]
    [InlineData("bl.example=127.0.0.x")]
    [InlineData("bl.example=127..0.2")]
    [InlineData("bl.example*x")]
    [InlineData("bl.example*")]
    [InlineData("bl..example")]
    [InlineData("bl.exa mple")]
    [InlineData("-bl.example")]
    public void AMalformedSiteIsRefusedWithAReason(string text)
    {
        Assert.False(DnsblSite.TryParse(text, out DnsblSite? site, out string error));
        Assert.Null(site);
        Assert.NotEmpty(error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void AZoneTooLongForAnIPv6QueryIsRefused()
    {
        string zone = string.Join('.', Enumerable.Repeat(new string('a', 62), 3)); // 188 octets
        Assert.False(DnsblSite.TryParse(zone, out _, out _));
        string longest = new string('a', 63) + "." + new string('b', DnsblSite.MaxZoneLength - 64);
        DnsblSite site = Parse(longest);
        Assert.True(DnsblScore.QueryName(IPAddress.Parse("2001:db8::1"), site.Zone).Length <= 253);
    }
}
