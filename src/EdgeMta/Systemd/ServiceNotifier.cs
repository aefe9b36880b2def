// sd_notify(3) by hand: each state change is one datagram to the AF_UNIX socket named in $NOTIFY_SOCKET
// (an absolute path, or '@' for Linux's abstract namespace), as systemd's own client sends it. No package:
// Microsoft.Extensions.Hosting.Systemd needs the Generic Host (docs/PERF-NOTES.md keeps the host thin).
// What it does not do: decide when to send (ServiceManager does), or talk to anything but that one socket.
// How it fails: never fatally. Without NOTIFY_SOCKET it is off and silent. A socket that is missing,
// refuses, or times out (one second at most per send) costs one warning line on stderr, the first time;
// later sends are still tried, since systemd recreates its socket when it re-executes itself.
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Systemd;

internal sealed class ServiceNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly EndPoint? _target;
    private readonly string _address;
    private readonly TextWriter _errors;
    private int _warned;

    private ServiceNotifier(Socket? socket, EndPoint? target, string address, TextWriter errors)
    {
        _socket = socket;
        _target = target;
        _address = address;
        _errors = errors;
    }

    /// <summary>True when NOTIFY_SOCKET named a usable address (whether or not anyone listens there).</summary>
    public bool Enabled => _socket is not null;

    /// <summary>The notifier for <c>$NOTIFY_SOCKET</c>; off when it is unset or empty.</summary>
    public static ServiceNotifier FromEnvironment(TextWriter errors) =>
        Create(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"), errors);

    /// <summary>The notifier for one NOTIFY_SOCKET value. An address that is neither an absolute path nor
    /// '@name' (or too long for sun_path, 107 bytes) is warned about once and left off.</summary>
    public static ServiceNotifier Create(string? address, TextWriter errors)
    {
        if (string.IsNullOrEmpty(address))
        {
            return new ServiceNotifier(null, null, "", errors);
        }
        EndPoint target;
        try
        {
            target = address[0] switch
            {
                '/' => new UnixDomainSocketEndPoint(address),
                // sd_notify(3): a leading '@' is the abstract namespace, whose names start with a NUL byte.
                '@' when address.Length > 1 => new UnixDomainSocketEndPoint("\0" + address[1..]),
                _ => throw new ArgumentException("neither an absolute path nor @name"),
            };
        }
        catch (ArgumentException e)
        {
            errors.WriteLine($"edgemta: warning: NOTIFY_SOCKET={address} is not usable ({e.Message}); systemd will not hear from edgemta");
            return new ServiceNotifier(null, null, address, errors);
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified)
        {
            SendTimeout = 1000, // a full receive queue must not hold the stop or the watchdog for long
        };
        return new ServiceNotifier(socket, target, address, errors);
    }

    /// <summary>Sends newline-separated assignments (<c>READY=1\nSTATUS=…</c>); true when the datagram went out.
    /// Safe from any thread: a datagram send is one syscall.</summary>
    public bool Send(string state)
    {
        if (_socket is null) return false;
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(state), SocketFlags.None, _target!);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            if (e is SocketException s && Interlocked.Exchange(ref _warned, 1) == 0)
            {
                // .NET reports ENOENT from sendto(2) on a Unix socket as AddressNotAvailable, whose own text
                // ("Cannot assign requested address") would send an operator looking in the wrong place.
                string reason = s.SocketErrorCode switch
                {
                    SocketError.AddressNotAvailable => "no such socket",
                    SocketError.ConnectionRefused => "nobody receives on it",
                    SocketError.TimedOut or SocketError.WouldBlock => "its queue stayed full for a second",
                    _ => s.Message,
                };
                _errors.WriteLine($"edgemta: warning: cannot notify systemd at NOTIFY_SOCKET={_address} ({reason}); serving on without it");
            }
            return false;
        }
    }

    public void Dispose() => _socket?.Dispose();
}
