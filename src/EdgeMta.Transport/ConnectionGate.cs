// Contract: the seam through which the host decides, per client, whether a connection may begin
// (docs/SCREENING.md: per-client decisions run once the real client is known, after any PROXY header).
//
// What it is: called once per inbound connection, after the transport's global limit (MaxConnections, at
// accept) and after the PROXY pre-phase (Connection.Proxy.cs), with the client's address (the header's, or the
// socket peer's; IPv4-mapped IPv6 given as IPv4). A refusal is written by the factory's WriteRejection and the
// connection closes; an admitted client is released exactly once, when its connection ends.
// What it is not: a place to block. It runs on a socket thread (the epoll thread with inline completions): no
// I/O, no DNS, no lock held across anything slow. The transport knows no policy: the limits live behind it.
using System.Net;

namespace EdgeMta.Transport;

/// <summary>Per-client admission, implemented by the host (the server's ConnectionGate over EdgeMta.Policy).</summary>
public interface IConnectionGate
{
    /// <summary>Null to admit <paramref name="client"/> (and count it), or why not. Must not block or throw.</summary>
    ConnectionRejection? TryAdmit(IPAddress client);

    /// <summary>An admitted client's connection ended: the same address TryAdmit admitted.</summary>
    void Release(IPAddress client);
}
