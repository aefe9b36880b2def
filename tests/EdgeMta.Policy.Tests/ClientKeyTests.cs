using System.Net;
using EdgeMta.Policy;

namespace EdgeMta.Policy.Tests;

public sealed class ClientKeyTests
{
    [Theory]
    [InlineData("2001:db8:1:2:3000::1", "2001:db8:1:2:3000:fff:ffff:ffff", 84, true)]
    [InlineData("2001:db8:1:2:3000::1", "2001:db8:1:2:3000:1000::1", 84, false)]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:ffff::1", 64, true)]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:3::1", 64, false)]
    [InlineData("2001:db8::1", "2001:db8::2", 128, false)]
    [InlineData("2001:db8::1", "2001:db9::1", 16, true)]
    [InlineData("2001:db8::1", "a001:db8::1", 1, false)]
    public void IPv6AddressesShareAKeyExactlyWhenTheirPrefixesAgree(string a, string b, int prefix, bool same)
    {
        Assert.Equal(same, ClientKey.From(IPAddress.Parse(a), prefix) == ClientKey.From(IPAddress.Parse(b), prefix));
    }

    [Fact]
    public void AnIPv4MappedAddressIsTheIPv4Address()
    {
        ClientKey mapped = ClientKey.From(IPAddress.Parse("::ffff:192.0.2.7"), 84);
        Assert.Equal(ClientKey.From(IPAddress.Parse("192.0.2.7"), 84), mapped);
        Assert.True(mapped.IsIPv4);
        Assert.Equal("192.0.2.7", mapped.Format(84));
    }

    [Fact]
    public void IPv4AddressesAreCountedOneByOne()
    {
        Assert.NotEqual(ClientKey.From(IPAddress.Parse("192.0.2.1"), 84), ClientKey.From(IPAddress.Parse("192.0.2.2"), 84));
    }

    [Fact]
    public void NoIPv6BlockCollidesWithAnIPv4Key()
    {
        // The IPv6 address whose top 64 bits are the IPv4 tag, and whose low bits spell 192.0.2.1.
        ClientKey v6 = ClientKey.From(IPAddress.Parse("2001:db8:ffff:ffff::c000:201"), 128);
        Assert.NotEqual(ClientKey.From(IPAddress.Parse("192.0.2.1"), 128), v6);
        Assert.False(v6.IsIPv4);
    }

    [Fact]
    public void AnIPv6KeyIsLoggedAsItsBlock()
    {
        Assert.Equal("2001:db8:1:2:3abc:9000::/84", ClientKey.From(IPAddress.Parse("2001:db8:1:2:3abc:9def::9"), 84).Format(84));
    }
}
