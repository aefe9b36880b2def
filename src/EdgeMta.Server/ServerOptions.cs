using System.Net;
using EdgeMta.Protocol;

namespace EdgeMta.Server;

/// <summary>
/// Everything the command line says about one server, read once at start. The host fills it from flags;
/// the server turns it into the precomputed options of the protocol, the transport and the spool, so nothing
/// on the hot path ever looks here again. Defaults are PROTOCOL.md's.
/// </summary>
public sealed record ServerOptions
{
    public const int DefaultPort = 2525;

    public IReadOnlyList<IPEndPoint> Listen { get; init; } = [new IPEndPoint(IPAddress.Loopback, DefaultPort)];
    public string SpoolDirectory { get; init; } = "spool";
    public string HostName { get; init; } = Environment.MachineName;
    public IReadOnlyList<string> Domains { get; init; } = [];
    public string? RecipientsFile { get; init; }

    /// <summary>25 MiB, as Postfix's message_size_limit ships (RFC 1870 SIZE is advertised with it).</summary>
    public long MaxMessageSize { get; init; } = 26_214_400;
    public int MaxRecipients { get; init; } = 1000;
    public int MaxConnections { get; init; } = 20_000;
    public int MaxConnectionsPerAddress { get; init; } = 50;

    /// <summary>RFC 5321 §4.5.3.2: at least 5 minutes for commands, 10 for the data block.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan DataTimeout { get; init; } = TimeSpan.FromSeconds(600);

    public VrfyMode Vrfy { get; init; } = VrfyMode.Ambiguous;
    public bool ExpnEnabled { get; init; }
    public bool LegacySend { get; init; }
    public bool NormalizeBareNewlines { get; init; }
    public bool RefuseMail { get; init; }
    public string? TlsCertificateFile { get; init; }
    public string? TlsKeyFile { get; init; }
    public bool RequireTls { get; init; }
    public TimeSpan GreetDelay { get; init; } = TimeSpan.Zero;

    /// <summary>False only for benchmarks (`--sync none`): 250 then means "in the page cache", not "on disk".</summary>
    public bool SyncEveryCommit { get; init; } = true;
    public bool Verbose { get; init; }

    /// <summary>How long a graceful stop waits for transactions in DATA before closing them unacknowledged.</summary>
    public TimeSpan ShutdownDeadline { get; init; } = TimeSpan.FromSeconds(30);
}
