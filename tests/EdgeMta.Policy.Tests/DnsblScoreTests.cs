using System.Net;

namespace EdgeMta.Policy.Tests;

public sealed class DnsblScoreTests
{
    private static DnsblScore Score(int threshold, params string[] sites) =>
        new(sites.Select(s => DnsblSite.TryParse(s, out DnsblSite? site, out _) ? site : throw new ArgumentException(s)), threshold);

    [Fact]
    public void TheScoreIsTheSumOfTheMatchingWeights()
    {
        DnsblScore score = Score(3, "a.example*2", "b.example*1", "c.example*4", "wl.example*-2");
        DnsblVerdict v = score.Verdict([true, true, false, false]);
        Assert.Equal(3, v.Score);
        Assert.True(v.Blocked);
        Assert.Equal("a.example,b.example", v.ListedZones);
    }

    [Fact]
    public void AnAllowlistCanKeepAListedClientBelowTheThreshold()
    {
        DnsblScore score = Score(2, "zen.example*2", "wl.example*-2");
        DnsblVerdict v = score.Verdict([true, true]);
        Assert.Equal(0, v.Score);
        Assert.False(v.Blocked);
        Assert.True(v.Listed);
        Assert.Equal("zen.example", v.ReplyZone);
    }

    [Fact]
    public void BelowTheThresholdIsNotBlockedAndAtItIs()
    {
        DnsblScore score = Score(2, "a.example", "b.example");
        Assert.False(score.Verdict([true, false]).Blocked);
        Assert.True(score.Verdict([true, true]).Blocked);
    }

    [Fact]
    public void TheReplyNamesTheListedZoneOfLargestWeight()
    {
        DnsblScore score = Score(1, "small.example*1", "big.example*5", "other.example*3", "unlisted.example*9");
        Assert.Equal("big.example", score.Verdict([true, true, true, false]).ReplyZone);
        Assert.Equal("other.example", score.Verdict([true, false, true, false]).ReplyZone);
    }

    [Fact]
    public void NoMatchIsTheSharedCleanVerdict()
    {
        DnsblScore score = Score(1, "a.example", "b.example");
        Assert.Same(DnsblVerdict.Clean, score.Verdict([false, false]));
        Assert.False(DnsblVerdict.Clean.Blocked);
    }

    [Fact]
    public void AZoneGivenTwiceIsNamedOnce()
    {
        DnsblScore score = Score(-10, "list.dnswl.example=127.0.[5..12].[1..3]*-2", "list.dnswl.example=127.0.[2..4].[0..3]*-4");
        DnsblVerdict v = score.Verdict([true, true]);
        Assert.Equal(-6, v.Score);
        Assert.Equal("list.dnswl.example", v.ListedZones);
        Assert.Null(v.ReplyZone);
    }

    [Theory]
    [InlineData("192.0.2.99", "99.2.0.192.bl.example")]
    [InlineData("::ffff:192.0.2.99", "99.2.0.192.bl.example")]
    [InlineData("2001:db8:1:2:3:4:567:89ab", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example")] // RFC 5782 §2.4
    public void TheQueryNameReversesTheAddress(string client, string expected)
    {
        Assert.Equal(expected, DnsblScore.QueryName(IPAddress.Parse(client), "bl.example"));
    }
}
