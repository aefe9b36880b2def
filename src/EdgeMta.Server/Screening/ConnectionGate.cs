// Contract: per-client admission after the real client is known (docs/SCREENING.md: "The address in the header
// is the client: per-address limits and their loopback exemption ... use it"), behind the transport's
// IConnectionGate.
//
// What it does: counts open connections per ClientKey (IPv4 /32, IPv6 /--client-ipv6-prefix, 84 by default:
// one host on IPv6 holds a /64 or more, Postfix's smtpd_client_ipv6_prefix_length) against
// --max-connections-per-ip, and exempts --trusted-network (loopback by default: the local relay and load tests
// open many connections from one address, as Postfix exempts $mynetworks). Answers TooManyFromAddress, which
// the server writes as its existing 421 4.7.0.
// What it does not do: the global --max-connections (the transport's, at accept, before anything is read), or
// anything slow: it runs on a socket thread under one short lock, no I/O. One method per check, so that the
// next (a per-client connection rate) is one more method in TryAdmit, before CountIn, which must stay last
// because it is the only one that changes state.
// How it fails: never throws for a client; the table holds one entry per client with an open connection, so
// it is bounded by --max-connections.
using System.Net;
using EdgeMta.Policy;
using EdgeMta.Transport;

namespace EdgeMta.Server.Screening;

/// <summary>The per-address connection limit, keyed by the client behind any PROXY header.</summary>
internal sealed class ConnectionGate : IConnectionGate
{
    private readonly int _maxPerClient;
    private readonly int _ipv6Prefix;
    private readonly ClientNetworks _trusted;
    private readonly Dictionary<ClientKey, int> _open = new();

    /// <param name="maxPerClient">Open connections per client; 0: no limit.</param>
    /// <param name="ipv6Prefix">1..128: the block an IPv6 client is counted by.</param>
    /// <param name="trusted">Exempt from every per-client limit.</param>
    public ConnectionGate(int maxPerClient, int ipv6Prefix, ClientNetworks trusted)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxPerClient);
        ArgumentOutOfRangeException.ThrowIfLessThan(ipv6Prefix, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ipv6Prefix, 128);
        ArgumentNullException.ThrowIfNull(trusted);
        _maxPerClient = maxPerClient;
        _ipv6Prefix = ipv6Prefix;
        _trusted = trusted;
    }

    /// <summary>Clients with at least one open connection counted (for tests and the bound above).</summary>
    internal int TrackedClients
    {
        get
        {
            lock (_open)
            {
                return _open.Count;
            }
        }
    }

    public ConnectionRejection? TryAdmit(IPAddress client)
    {
        if (IsExempt(client))
        {
            return null;
        }
        ClientKey key = ClientKey.From(client, _ipv6Prefix);
        return CountIn(key);
    }

    public void Release(IPAddress client)
    {
        if (_maxPerClient == 0 || IsExempt(client))
        {
            return; // never counted: the same answer as at admission (the settings are fixed for the process)
        }
        ClientKey key = ClientKey.From(client, _ipv6Prefix);
        lock (_open)
        {
            if (_open.TryGetValue(key, out int count))
            {
                if (count <= 1)
                {
                    _open.Remove(key);
                }
                else
                {
                    _open[key] = count - 1;
                }
            }
        }
    }

    /// <summary>--trusted-network: exempt from every per-client check.</summary>
    private bool IsExempt(IPAddress client) => _trusted.Contains(client);

    /// <summary>--max-connections-per-ip: count the client in, or refuse it at the limit.</summary>
    private ConnectionRejection? CountIn(ClientKey key)
    {
        if (_maxPerClient == 0)
        {
            return null;
        }
        lock (_open)
        {
            _open.TryGetValue(key, out int count);
            if (count >= _maxPerClient)
            {
                return ConnectionRejection.TooManyFromAddress;
            }
            _open[key] = count + 1;
        }
        return null;
    }
}
