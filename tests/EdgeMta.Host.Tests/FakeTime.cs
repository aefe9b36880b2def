// A clock that moves only when a test moves it: TimeProvider's timestamp, in microseconds.
namespace EdgeMta.Host.Tests;

internal sealed class FakeTime : TimeProvider
{
    private long _now = 1_000_000_000;

    public override long TimestampFrequency => 1_000_000;

    public override long GetTimestamp() => _now;

    public void Advance(TimeSpan by) => _now += (long)(by.TotalSeconds * TimestampFrequency);
}

/// <summary>A Unix datagram socket bound where a NOTIFY_SOCKET can point: what systemd listens on.</summary>
internal sealed class NotifyListener : IDisposable
{
    private readonly System.Net.Sockets.Socket _socket;
    private readonly string? _directory;

    public NotifyListener(bool isAbstract = false)
    {
        _socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
        string name = "edgemta-notify-" + Guid.NewGuid().ToString("N")[..12];
        if (isAbstract)
        {
            Address = "@" + name;
            _socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint("\0" + name));
        }
        else
        {
            _directory = Directory.CreateTempSubdirectory("edgemta-notify-").FullName;
            Address = Path.Combine(_directory, "notify");
            _socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(Address));
        }
    }

    /// <summary>The value for NOTIFY_SOCKET.</summary>
    public string Address { get; }

    /// <summary>The next datagram, or null when none comes within two seconds.</summary>
    public string? Receive()
    {
        if (!_socket.Poll(TimeSpan.FromSeconds(2), System.Net.Sockets.SelectMode.SelectRead)) return null;
        var buffer = new byte[4096];
        int n = _socket.Receive(buffer);
        return System.Text.Encoding.UTF8.GetString(buffer, 0, n);
    }

    /// <summary>True when a datagram is already waiting (no wait).</summary>
    public bool HasPending => _socket.Available > 0;

    public void Dispose()
    {
        _socket.Dispose();
        if (_directory is not null) Directory.Delete(_directory, recursive: true);
    }
}
