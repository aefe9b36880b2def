// The per-client connection limit behind the transport's IConnectionGate (src/EdgeMta.Server/Screening):
// keyed by ClientKey (IPv6 per /N), trusted networks exempt, every admission given back once.
using System.Net;
using EdgeMta.Policy;
using EdgeMta.Server.Screening;
using EdgeMta.Transport;

namespace EdgeMta.Server.Tests;

public sealed class ConnectionGateTests
{
    [Fact]
    public void AClientAtItsLimitIsRefusedUntilOneOfItsConnectionsEnds()
    {
        var gate = new ConnectionGate(maxPerClient: 2, ipv6Prefix: 84, ClientNetworks.Loopback);
        IPAddress client = IPAddress.Parse("203.0.113.9");
        Assert.Null(gate.TryAdmit(client));
        Assert.Null(gate.TryAdmit(client));
        Assert.Equal(ConnectionRejection.TooManyFromAddress, gate.TryAdmit(client));
        Assert.Null(gate.TryAdmit(IPAddress.Parse("203.0.113.10"))); // another client, its own count

        gate.Release(client);
        Assert.Null(gate.TryAdmit(client));
        gate.Release(client);
        gate.Release(client);
        gate.Release(IPAddress.Parse("203.0.113.10"));
        Assert.Equal(0, gate.TrackedClients); // nothing left behind once every connection ended
    }

    [Fact]
    public void IPv6ClientsAreCountedPerPrefixAndMappedIPv4AsIPv4()
    {
        var gate = new ConnectionGate(maxPerClient: 1, ipv6Prefix: 84, ClientNetworks.Loopback);
        Assert.Null(gate.TryAdmit(IPAddress.Parse("2001:db8:0:1::1")));
        // Same /84 (five groups and the top nibble of the sixth; only the low 44 bits differ): the same client.
        Assert.Equal(ConnectionRejection.TooManyFromAddress, gate.TryAdmit(IPAddress.Parse("2001:db8:0:1:0:fff:ffff:2")));
        // Another /84: the sixth group's top nibble differs.
        Assert.Null(gate.TryAdmit(IPAddress.Parse("2001:db8:0:1:0:1000::1")));

        Assert.Null(gate.TryAdmit(IPAddress.Parse("198.51.100.7")));
        Assert.Equal(ConnectionRejection.TooManyFromAddress, gate.TryAdmit(IPAddress.Parse("::ffff:198.51.100.7")));
    }

    [Fact]
    public void TrustedNetworksAreExemptAndNeverCounted()
    {
        var trusted = new ClientNetworks([IPNetwork.Parse("192.0.2.0/24")]);
        var gate = new ConnectionGate(maxPerClient: 1, ipv6Prefix: 84, trusted);
        for (int i = 0; i < 5; i++)
        {
            Assert.Null(gate.TryAdmit(IPAddress.Parse("192.0.2.1")));
        }
        Assert.Equal(0, gate.TrackedClients);
        // Loopback is exempt only by default: this gate was given another list.
        Assert.Null(gate.TryAdmit(IPAddress.Loopback));
        Assert.Equal(ConnectionRejection.TooManyFromAddress, gate.TryAdmit(IPAddress.Loopback));

        var defaults = new ConnectionGate(maxPerClient: 1, ipv6Prefix: 84, ClientNetworks.Loopback);
        Assert.Null(defaults.TryAdmit(IPAddress.Loopback));
        Assert.Null(defaults.TryAdmit(IPAddress.Loopback));
        defaults.Release(IPAddress.Loopback); // exempt: nothing to give back, nothing thrown
        Assert.Equal(0, defaults.TrackedClients);
    }

    [Fact]
    public void ZeroMeansNoLimitAndNoTable()
    {
        var gate = new ConnectionGate(maxPerClient: 0, ipv6Prefix: 84, ClientNetworks.None);
        for (int i = 0; i < 100; i++)
        {
            Assert.Null(gate.TryAdmit(IPAddress.Parse("203.0.113.9")));
        }
        Assert.Equal(0, gate.TrackedClients);
    }
}
