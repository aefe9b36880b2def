using System.Runtime.InteropServices;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// Network namespaces a test makes for itself (ip-netns(8), iproute2), joined only by veth pairs between
/// two of them, each end given an address from the documentation ranges of RFC 5737 (192.0.2.0/24,
/// 198.51.100.0/24, 203.0.113.0/24) and brought up, loopback up in each. No default route is ever added:
/// a namespace reaches only the subnets on its own links, so nothing a test starts can reach the host's
/// network or the internet, and no address it uses can collide with a real one.
/// Names carry a random suffix (`emt-1a2b3c-lb`) so that two runs, or a run beside a crashed one, never
/// meet. <see cref="DisposeAsync"/> deletes every namespace it made (which deletes the veth ends inside) and
/// any veth still left in the host namespace by a half-made link; it stops nothing: the processes started
/// in a namespace are the test's, stopped by their pids before this is disposed.
/// How it fails: every `ip` command is bounded (<see cref="Bound"/>) and a non-zero exit fails the test with
/// the command and its stderr. Not used where <see cref="Unavailable"/> says why it cannot run.
/// </summary>
public sealed partial class NetworkNamespaces : IAsyncDisposable
{
    public const string Ip = "/usr/sbin/ip";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly ITestOutputHelper _output;
    private readonly List<string> _namespaces = [];
    private readonly List<string> _hostLinks = [];
    private int _links;

    /// <summary>The random part every name made here shares.</summary>
    public string Suffix { get; } = Guid.NewGuid().ToString("N")[..6];

    public NetworkNamespaces(ITestOutputHelper output) => _output = output;

    /// <summary>Makes namespace `emt-SUFFIX-ROLE` with loopback up; returns its full name.</summary>
    public async Task<string> AddAsync(string role)
    {
        string name = $"emt-{Suffix}-{role}";
        await RunAsync("netns", "add", name);
        _namespaces.Add(name);
        await RunAsync("-n", name, "link", "set", "lo", "up");
        return name;
    }

    /// <summary>
    /// Joins namespaces <paramref name="a"/> and <paramref name="b"/> with a veth pair, gives each end its
    /// address (CIDR notation, e.g. `198.51.100.1/30`) and brings both up. The pair is made in the host
    /// namespace and moved at once; until both ends have moved it is remembered so disposal can delete it.
    /// </summary>
    public async Task LinkAsync(string a, string addressA, string b, string addressB)
    {
        int n = ++_links;
        // Interface names hold at most 15 octets (IFNAMSIZ 16 with its NUL): `e` + 6 + index + side.
        string endA = $"e{Suffix}{n}a", endB = $"e{Suffix}{n}b";
        _hostLinks.Add(endA);
        await RunAsync("link", "add", endA, "type", "veth", "peer", "name", endB);
        await RunAsync("link", "set", endA, "netns", a);
        await RunAsync("link", "set", endB, "netns", b);
        _hostLinks.Remove(endA);
        await RunAsync("-n", a, "addr", "add", addressA, "dev", endA);
        await RunAsync("-n", b, "addr", "add", addressB, "dev", endB);
        await RunAsync("-n", a, "link", "set", endA, "up");
        await RunAsync("-n", b, "link", "set", endB, "up");
    }

    /// <summary>The launcher that runs a program inside <paramref name="name"/>: `ip netns exec NAME`, which
    /// setns(2)es and then execs the program, so the pid the test holds is the program's own.</summary>
    public static IReadOnlyList<string> Exec(string name) => [Ip, "netns", "exec", name];

    /// <summary>Runs a command inside a namespace to completion (bounded), e.g. `ip -4 route` for a check.</summary>
    public Task<ToolResult> RunInAsync(string name, params string[] command) =>
        ToolRun.RunAsync(Ip, ["netns", "exec", name, .. command], Bound, _output);

    private async Task RunAsync(params string[] arguments)
    {
        ToolResult r = await ToolRun.RunAsync(Ip, arguments, Bound);
        Assert.True(r.ExitCode == 0, $"ip failed\n{r}");
    }

    public async ValueTask DisposeAsync()
    {
        // Deleting a namespace deletes its veth ends, and a veth end deleted takes its peer with it.
        foreach (string name in _namespaces)
        {
            ToolResult r = await ToolRun.RunAsync(Ip, ["netns", "del", name], Bound);
            if (r.ExitCode != 0) _output.WriteLine($"could not delete namespace {name}\n{r}");
        }
        foreach (string link in _hostLinks) await ToolRun.RunAsync(Ip, ["link", "del", link], Bound);
        _namespaces.Clear();
        _hostLinks.Clear();
    }

    /// <summary>The namespaces this run made that still exist (`ip netns list`): empty after disposal.</summary>
    public async Task<string[]> LeftOverAsync()
    {
        ToolResult r = await ToolRun.RunAsync(Ip, ["netns", "list"], Bound);
        return r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith($"emt-{Suffix}-", StringComparison.Ordinal)).ToArray();
    }

    private static readonly Lazy<string?> Probe = new(ProbeOnce);

    /// <summary>Why namespaces cannot be made here, or null: tried once per run by making and deleting one
    /// (root alone is not enough in a container without CAP_SYS_ADMIN, or where /run/netns cannot be mounted).</summary>
    public static string? Unavailable => Probe.Value;

    private static string? ProbeOnce()
    {
        if (!File.Exists(Ip)) return $"no {Ip} (Debian package iproute2)";
        if (GetEuid() != 0) return "not root: ip netns add needs CAP_SYS_ADMIN";
        string name = "emt-probe-" + Guid.NewGuid().ToString("N")[..6];
        ToolResult add = ToolRun.RunAsync(Ip, ["netns", "add", name], Bound).GetAwaiter().GetResult();
        if (add.ExitCode != 0) return "ip netns add failed: " + add.StandardError.Trim();
        ToolRun.RunAsync(Ip, ["netns", "del", name], Bound).GetAwaiter().GetResult();
        return null;
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}

/// <summary>A fact that needs network namespaces: skipped, with the reason, where they cannot be made. As root
/// on CI (tests/run.sh) they always can, so the skip is counted in run.sh's closing line, never hidden.</summary>
public sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (NetworkNamespaces.Unavailable is string why) Skip = "network namespaces unavailable: " + why;
    }
}
