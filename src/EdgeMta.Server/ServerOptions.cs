using System.Net;
using EdgeMta.Protocol;
using EdgeMta.Spool;

namespace EdgeMta.Server;

/// <summary>
/// Everything the command line says about one server, read once at start, nested per library: the
/// protocol session's settings are a <see cref="SmtpSessionOptions"/> and the spool's a
/// <see cref="SpoolOptions"/>, each library's own type with its own defaults (docs/PROTOCOL.md's), so a
/// default is written once, where the library that honours it lives; the host's flags read theirs from
/// here. The transport's limits stay flat: its options object carries run-time parts (the log, the
/// certificate, the endpoints) that the server builds.
/// </summary>
public sealed record ServerOptions
{
    public const int DefaultPort = 2525;

    /// <summary>Where the server listens when neither <see cref="Listen"/> nor <see cref="ListeningSockets"/> says.</summary>
    public static IPEndPoint DefaultListen => new(IPAddress.Loopback, DefaultPort);

    /// <summary>Addresses to bind. Empty: <see cref="DefaultListen"/>, unless <see cref="ListeningSockets"/> has some.</summary>
    public IReadOnlyList<IPEndPoint> Listen { get; init; } = [];

    /// <summary>Sockets already bound and listening, handed over by the service manager (socket activation):
    /// served beside <see cref="Listen"/>; the server owns them from Start on.</summary>
    public IReadOnlyList<System.Net.Sockets.Socket> ListeningSockets { get; init; } = [];

    /// <summary>The protocol session's settings. Its TlsAvailable must say whether a certificate is given to
    /// <see cref="EdgeMtaServer.Start"/>.</summary>
    public SmtpSessionOptions Session { get; init; } = new() { HostName = Environment.MachineName };

    /// <summary>The spool's settings. Its MaxMessageSize is the server's to set (the session's limit plus the
    /// room for our Received: header), so whatever it says here is replaced at start.</summary>
    public SpoolOptions Spool { get; init; } = new() { Directory = "spool" };

    /// <summary>The recipient directory: a file in docs/PROTOCOL.md's format, and the local domains.</summary>
    public string? RecipientsFile { get; init; }
    public IReadOnlyList<string> Domains { get; init; } = [];

    public const int DefaultMaxConnections = 20_000;

    /// <summary>Null: <see cref="DefaultMaxConnections"/>, which the host lowers, without a warning, to what the
    /// open-file limit allows (docs/PROTOCOL.md "Command line"); a value given is lowered with a warning.</summary>
    public int? MaxConnections { get; init; }
    /// <summary>Per client (ClientIpv6Prefix for IPv6); <see cref="TrustedNetworks"/> are exempt, as Postfix
    /// exempts $mynetworks.</summary>
    public int MaxConnectionsPerAddress { get; init; } = 50;

    /// <summary>--listen-proxy: listeners whose connections begin with a PROXY header (docs/SCREENING.md).</summary>
    public IReadOnlyList<IPEndPoint> ListenProxy { get; init; } = [];

    /// <summary>--proxy-trusted: who may connect to a <see cref="ListenProxy"/> listener; required with it.</summary>
    public IReadOnlyList<IPNetwork> ProxyTrusted { get; init; } = [];

    /// <summary>--proxy-timeout: the PROXY header must be whole this long after accept.</summary>
    public TimeSpan ProxyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>--client-ipv6-prefix: IPv6 clients are counted per /N by every per-client limit (1..128).</summary>
    public int ClientIpv6Prefix { get; init; } = 84;

    /// <summary>--trusted-network: exempt from every per-client limit; loopback by default.</summary>
    public EdgeMta.Policy.ClientNetworks TrustedNetworks { get; init; } = EdgeMta.Policy.ClientNetworks.Loopback;

    public string? TlsCertificateFile { get; init; }
    public string? TlsKeyFile { get; init; }
    public bool Verbose { get; init; }

    /// <summary>--metrics-listen: where the host serves `GET /metrics` (Prometheus text); null, the default, serves none.</summary>
    public IPEndPoint? MetricsListen { get; init; }

    /// <summary>How long a graceful stop waits for transactions in DATA before closing them unacknowledged.</summary>
    /// <summary>Store and forward (docs/DELIVERY.md): null without --relay, when mail stays in the spool.</summary>
    public EdgeMta.Delivery.DeliveryOptions? Delivery { get; init; }

    public TimeSpan ShutdownDeadline { get; init; } = TimeSpan.FromSeconds(30);
}
