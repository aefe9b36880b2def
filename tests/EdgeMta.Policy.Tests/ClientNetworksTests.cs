using System.Net;
using EdgeMta.Policy;

namespace EdgeMta.Policy.Tests;

public sealed class ClientNetworksTests
{
    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.200.0.9", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("192.0.2.1", false)]
    [InlineData("::2", false)]
    public void LoopbackIsTheDefaultExemption(string address, bool contained)
    {
        Assert.Equal(contained, ClientNetworks.Loopback.Contains(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("198.51.100.0/24", "198.51.100.200", true)]
    [InlineData("198.51.100.0/24", "198.51.101.1", false)]
    [InlineData("203.0.113.9", "203.0.113.9", true)]
    [InlineData("203.0.113.9", "203.0.113.10", false)]
    [InlineData("2001:db8::/32", "2001:db8:ffff::1", true)]
    [InlineData("2001:db8::/32", "::ffff:198.51.100.1", false)]
    public void ABlockContainsItsAddressesOnly(string block, string address, bool contained)
    {
        Assert.True(ClientNetworks.TryParseNetwork(block, out IPNetwork? network));
        Assert.Equal(contained, new ClientNetworks([network.Value]).Contains(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("198.51.100.1/24")]
    [InlineData("198.51.100.0/33")]
    [InlineData("example.com")]
    [InlineData("198.51.100.0/")]
    public void AMalformedBlockIsRefused(string text)
    {
        Assert.False(ClientNetworks.TryParseNetwork(text, out _));
    }
}
