using System.Net;
using EdgeMta.TestKit;

namespace EdgeMta.Policy.Tests;

public sealed class DnsblVerdictCacheTests
{
    private static readonly DnsblVerdict Listed = new(1, true, "bl.example", "bl.example");
    private static readonly IPAddress Client = IPAddress.Parse("192.0.2.7");

    [Theory]
    [InlineData(5, 60)]       // below postscreen_dnsbl_min_ttl: kept 60 s
    [InlineData(300, 300)]
    [InlineData(86400, 3600)] // above postscreen_dnsbl_max_ttl: kept an hour
    public void AVerdictIsKeptForItsTtlClamped(int ttlSeconds, int keptSeconds)
    {
        var clock = new FakeClock();
        var cache = new DnsblVerdictCache(10, clock);
        cache.Store(Client, Listed, TimeSpan.FromSeconds(ttlSeconds));
        clock.Advance(TimeSpan.FromSeconds(keptSeconds) - TimeSpan.FromMilliseconds(1));
        Assert.True(cache.TryGet(Client, out DnsblVerdict v));
        Assert.Same(Listed, v);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(cache.TryGet(Client, out _));
    }

    [Fact]
    public void TheKeyIsTheWholeAddressNotItsBlock()
    {
        var cache = new DnsblVerdictCache(10, new FakeClock());
        cache.Store(IPAddress.Parse("2001:db8::1"), Listed, TimeSpan.FromMinutes(5));
        Assert.True(cache.TryGet(IPAddress.Parse("2001:db8::1"), out _));
        Assert.False(cache.TryGet(IPAddress.Parse("2001:db8::2"), out _)); // same /84
        cache.Store(Client, Listed, TimeSpan.FromMinutes(5));
        Assert.True(cache.TryGet(IPAddress.Parse("::ffff:192.0.2.7"), out _));
    }

    [Fact]
    public void AFloodOfClientsNeverHoldsMoreThanTheCapacity()
    {
        var clock = new FakeClock();
        var cache = new DnsblVerdictCache(100, clock);
        for (int i = 0; i < 10_000; i++)
        {
            cache.Store(new IPAddress([198, 51, (byte)(i >> 8), (byte)i]), Listed, TimeSpan.FromMinutes(10));
            Assert.True(cache.Count <= 100);
        }
        Assert.Equal(100, cache.Count);
        // First in, first out: the last hundred are there, the one before them is not.
        Assert.True(cache.TryGet(new IPAddress([198, 51, 9999 >> 8 & 0xFF, 9999 & 0xFF]), out _));
        Assert.True(cache.TryGet(new IPAddress([198, 51, 9900 >> 8 & 0xFF, 9900 & 0xFF]), out _));
        Assert.False(cache.TryGet(new IPAddress([198, 51, 9899 >> 8 & 0xFF, 9899 & 0xFF]), out _));
    }

    [Fact]
    public void StoringAgainRenewsInPlaceWithoutTakingASecondSlot()
    {
        var clock = new FakeClock();
        var cache = new DnsblVerdictCache(2, clock);
        cache.Store(Client, Listed, TimeSpan.FromSeconds(60));
        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.False(cache.TryGet(Client, out _));
        cache.Store(Client, DnsblVerdict.Clean, TimeSpan.FromSeconds(60));
        Assert.Equal(1, cache.Count);
        Assert.True(cache.TryGet(Client, out DnsblVerdict v));
        Assert.Same(DnsblVerdict.Clean, v);
        cache.Store(IPAddress.Parse("192.0.2.8"), Listed, TimeSpan.FromSeconds(60));
        Assert.Equal(2, cache.Count);
    }
}
