using System.Net;

namespace EdgeMta.LoadTests;

/// <summary>One scenario, fully resolved: what edgemta-load's command line turns into.</summary>
public sealed record LoadOptions
{
    public string Scenario { get; init; } = "custom";
    public required IPEndPoint Target { get; init; }
    public int Sessions { get; init; } = 10;
    /// <summary>How many messages to attempt; null with a Duration means as many as fit.</summary>
    public long? Messages { get; init; }
    public TimeSpan? Duration { get; init; }
    public LoadShape Shape { get; init; } = new LoadShape.Closed();
    public SizeMix Sizes { get; init; } = SizeMix.Single(1024);
    public bool PerMessageConnections { get; init; }
    public bool Pipelining { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(1);
    public string Helo { get; init; } = "load.edgemta.test";
    public string From { get; init; } = "load@edgemta.test";
    public string To { get; init; } = "sink@example.com";
    public string? ReportDir { get; init; }
    public bool Quiet { get; init; }
    /// <summary>A PROXY header (v1 or v2) first on every connection, for a --listen-proxy listener.</summary>
    public ProxyVersion Proxy { get; init; }

    public long MessageLimit => Messages ?? (Duration is null ? 1000 : long.MaxValue);

    public string DescribeConnections() =>
        (PerMessageConnections ? "one connection per message" : "connections reused")
        + (Pipelining ? ", PIPELINING" : ", no pipelining")
        + (Proxy switch { ProxyVersion.V1 => ", PROXY v1", ProxyVersion.V2 => ", PROXY v2", _ => "" });

    public static bool TryParseEndPoint(string text, out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (IPEndPoint.TryParse(text, out IPEndPoint? ep) && ep.Port != 0) { endPoint = ep; return true; }
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], out int port) || port is <= 0 or > 65535) return false;
        string host = text[..colon];
        if (host == "localhost") { endPoint = new IPEndPoint(IPAddress.Loopback, port); return true; }
        try
        {
            IPAddress[] addresses = Dns.GetHostAddresses(host);
            if (addresses.Length == 0) return false;
            endPoint = new IPEndPoint(addresses[0], port);
            return true;
        }
        catch (System.Net.Sockets.SocketException) { return false; }
    }
}
