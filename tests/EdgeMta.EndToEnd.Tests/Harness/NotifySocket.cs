using System.Net.Sockets;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// What systemd listens on for sd_notify(3): a Unix datagram socket, bound at a path in a fresh temp
/// directory or (<c>isAbstract</c>) at an abstract name, given to edgemta as NOTIFY_SOCKET. Every wait is
/// bounded: a datagram that does not come within the timeout is null, and the test fails on it.
/// </summary>
public sealed class NotifySocket : IDisposable
{
    public static readonly TimeSpan DatagramTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly string? _directory;

    public NotifySocket(bool isAbstract = false)
    {
        string name = "edgemta-e2e-notify-" + Guid.NewGuid().ToString("N")[..12];
        if (isAbstract)
        {
            Address = "@" + name;
            _socket.Bind(new UnixDomainSocketEndPoint("\0" + name));
        }
        else
        {
            _directory = Directory.CreateTempSubdirectory("edgemta-e2e-notify-").FullName;
            Address = System.IO.Path.Combine(_directory, "notify");
            _socket.Bind(new UnixDomainSocketEndPoint(Address));
        }
    }

    /// <summary>The value for NOTIFY_SOCKET.</summary>
    public string Address { get; }

    /// <summary>Every datagram received so far, in order.</summary>
    public List<string> Received { get; } = new();

    /// <summary>The next datagram, or null when none comes within <paramref name="timeout"/>.</summary>
    public async Task<string?> ReceiveAsync(TimeSpan? timeout = null)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeout ?? DatagramTimeout);
        try
        {
            int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            string datagram = Encoding.UTF8.GetString(buffer, 0, n);
            Received.Add(datagram);
            return datagram;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        if (_directory is not null)
        {
            try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
        }
    }
}
