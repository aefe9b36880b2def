// Contract: the system's recursive servers, read once at start from /etc/resolv.conf (resolv.conf(5)): each
// `nameserver ADDR` line, at most MAXNS = 3 as the C library uses, port 53; an IPv6 address may carry a
// %scope. No file, or no nameserver line: 127.0.0.1 and ::1, as resolv.conf(5) says ("the default is to
// use the name server on the local machine"). Other options (search, ndots, timeout) do not apply to the
// fully-qualified questions of the blocklists and are ignored. Never throws: an unreadable file is an absent one.
using System.Net;

namespace EdgeMta.Server.Dns;

public static class ResolvConf
{
    public const string DefaultPath = "/etc/resolv.conf";
    private const int MaxServers = 3;

    /// <summary>The servers named in <paramref name="text"/> (the file's contents), or the local defaults.</summary>
    public static IPEndPoint[] Parse(string? text)
    {
        var servers = new List<IPEndPoint>();
        foreach (string raw in (text ?? "").Split('\n'))
        {
            string line = raw.Trim();
            if (!line.StartsWith("nameserver", StringComparison.Ordinal) || line.Length == 10 || !char.IsWhiteSpace(line[10])) continue;
            string value = line[10..].Trim();
            int end = value.IndexOfAny([' ', '\t', '#', ';']);
            if (end >= 0) value = value[..end];
            if (IPAddress.TryParse(value, out IPAddress? address) && servers.Count < MaxServers) servers.Add(new IPEndPoint(address, 53));
        }
        return servers.Count > 0 ? [.. servers] : [new IPEndPoint(IPAddress.Loopback, 53), new IPEndPoint(IPAddress.IPv6Loopback, 53)];
    }

    /// <summary>The servers of the system's file.</summary>
    public static IPEndPoint[] Load(string path = DefaultPath)
    {
        string? text = null;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // resolv.conf(5): no file means the local machine's server
        }
        return Parse(text);
    }
}
