// Contract: a list of networks a client address is checked against: --trusted-network (exempt from every
// per-client limit, as Postfix's smtpd_client_event_limit_exceptions = $mynetworks) and --proxy-trusted (who
// may send a PROXY header). Parsed once at start; Contains is a scan of a short array, no allocation.
// IPv4-mapped IPv6 addresses are matched as IPv4, as everywhere else (ClientKey.cs).
using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace EdgeMta.Policy;

/// <summary>A fixed set of CIDR blocks.</summary>
public sealed class ClientNetworks
{
    private readonly IPNetwork[] _networks;

    public ClientNetworks(IEnumerable<IPNetwork> networks)
    {
        ArgumentNullException.ThrowIfNull(networks);
        _networks = [.. networks];
    }

    /// <summary>127.0.0.0/8 and ::1/128: today's loopback exemption, the default of --trusted-network.</summary>
    public static ClientNetworks Loopback { get; } = new([IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")]);

    /// <summary>Matches nothing.</summary>
    public static ClientNetworks None { get; } = new([]);

    /// <summary>The blocks, as given.</summary>
    public IReadOnlyList<IPNetwork> Networks => _networks;

    /// <summary>Parses "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128).</summary>
    public static bool TryParseNetwork(string text, [NotNullWhen(true)] out IPNetwork? network)
    {
        network = null;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        if (!text.Contains('/'))
        {
            if (!IPAddress.TryParse(text, out IPAddress? address))
            {
                return false;
            }
            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }
        // A block with host bits set (192.0.2.1/24) is refused, as an operator's typo should be: IPNetwork.TryParse
        // would quietly keep the address and match only what its own masking says.
        int slash = text.IndexOf('/');
        if (!IPAddress.TryParse(text.AsSpan(0, slash), out IPAddress? baseAddress)
            || !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int prefix))
        {
            return false;
        }
        Span<byte> bytes = stackalloc byte[16];
        baseAddress.TryWriteBytes(bytes, out int length);
        if (prefix > length * 8)
        {
            return false;
        }
        for (int bit = prefix; bit < length * 8; bit++)
        {
            if ((bytes[bit >> 3] & (0x80 >> (bit & 7))) != 0)
            {
                return false;
            }
        }
        network = new IPNetwork(baseAddress, prefix);
        return true;
    }

    /// <summary>True if <paramref name="address"/> lies in one of the blocks.</summary>
    public bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        foreach (IPNetwork network in _networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }
        return false;
    }
}
