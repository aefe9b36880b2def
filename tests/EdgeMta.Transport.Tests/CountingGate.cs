// A plain per-address gate for the transport's tests: at most Max connections per address, counted exactly as
// admitted and released, so a test can check that every admission is given back once.
using System.Net;

namespace EdgeMta.Transport.Tests;

internal sealed class CountingGate(int max) : IConnectionGate
{
    private readonly Dictionary<IPAddress, int> _open = new();

    public int Released;

    public ConnectionRejection? TryAdmit(IPAddress client)
    {
        lock (_open)
        {
            _open.TryGetValue(client, out int count);
            if (count >= max)
            {
                return ConnectionRejection.TooManyFromAddress;
            }
            _open[client] = count + 1;
            return null;
        }
    }

    public void Release(IPAddress client)
    {
        lock (_open)
        {
            _open[client]--;
            Released++;
        }
    }

    public int OpenFrom(IPAddress client)
    {
        lock (_open)
        {
            return _open.GetValueOrDefault(client);
        }
    }
}
