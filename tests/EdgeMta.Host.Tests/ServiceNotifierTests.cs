// sd_notify datagrams against real Unix datagram sockets, as systemd binds them: a path and an abstract
// ('@') name; and the one warning for a NOTIFY_SOCKET that is missing or not an address at all.
using EdgeMta.Systemd;

namespace EdgeMta.Host.Tests;

public class ServiceNotifierTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EachSendIsOneDatagramOnTheNamedSocket(bool isAbstract)
    {
        using var systemd = new NotifyListener(isAbstract);
        var errors = new StringWriter();
        using var notifier = ServiceNotifier.Create(systemd.Address, errors);

        Assert.True(notifier.Send("READY=1\nSTATUS=serving"));
        Assert.True(notifier.Send("STOPPING=1"));
        Assert.Equal("READY=1\nSTATUS=serving", systemd.Receive());
        Assert.Equal("STOPPING=1", systemd.Receive());
        Assert.Empty(errors.ToString());
    }

    [Fact]
    public void AMissingSocketIsOneWarningHoweverManySends()
    {
        string missing = Path.Combine(Path.GetTempPath(), "edgemta-no-such-" + Guid.NewGuid().ToString("N"), "notify");
        var errors = new StringWriter();
        using var notifier = ServiceNotifier.Create(missing, errors);
        Assert.True(notifier.Enabled);

        for (int i = 0; i < 3; i++) Assert.False(notifier.Send("WATCHDOG=1"));

        string[] lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string line = Assert.Single(lines);
        Assert.Equal($"edgemta: warning: cannot notify systemd at NOTIFY_SOCKET={missing} (no such socket); serving on without it", line.TrimEnd());
    }

    [Fact]
    public void ASocketNobodyReceivesOnIsOneWarning()
    {
        // A socket file whose receiver is gone (systemd stopped): connect(2) semantics say ECONNREFUSED.
        var errors = new StringWriter();
        string directory = Directory.CreateTempSubdirectory("edgemta-notify-").FullName;
        try
        {
            string path = Path.Combine(directory, "notify");
            using (var bound = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified))
            {
                // .NET unlinks the path it bound when the socket closes; a renamed socket file stays behind.
                bound.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path + ".bound"));
                File.Move(path + ".bound", path);
            }
            using var notifier = ServiceNotifier.Create(path, errors);
            Assert.False(notifier.Send("READY=1"));
            Assert.False(notifier.Send("WATCHDOG=1"));
            Assert.Equal($"edgemta: warning: cannot notify systemd at NOTIFY_SOCKET={path} (nobody receives on it); serving on without it",
                Assert.Single(errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)).TrimEnd());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void ASocketThatAppearsLaterIsReachedThen()
    {
        // systemd re-creating its socket (daemon-reexec): later sends are still tried.
        using var systemd = new NotifyListener();
        var errors = new StringWriter();
        using var notifier = ServiceNotifier.Create(systemd.Address + ".later", errors);
        Assert.False(notifier.Send("WATCHDOG=1"));
        File.Delete(systemd.Address + ".later");
        using var later = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
        later.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(systemd.Address + ".later"));
        Assert.True(notifier.Send("WATCHDOG=1"));
        var buffer = new byte[64];
        Assert.Equal("WATCHDOG=1", System.Text.Encoding.ASCII.GetString(buffer, 0, later.Receive(buffer)));
    }

    [Theory]
    [InlineData("relative/notify")]
    [InlineData("@")]
    [InlineData("vsock:2:1234")]
    public void AnAddressThatIsNeitherAPathNorAbstractIsOneWarningAndOff(string address)
    {
        var errors = new StringWriter();
        using var notifier = ServiceNotifier.Create(address, errors);
        Assert.False(notifier.Enabled);
        Assert.False(notifier.Send("READY=1"));
        Assert.Single(errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void WithoutNotifySocketNothingIsSentOrSaid()
    {
        var errors = new StringWriter();
        using var notifier = ServiceNotifier.Create(null, errors);
        Assert.False(notifier.Enabled);
        Assert.False(notifier.Send("READY=1"));
        Assert.Empty(errors.ToString());
    }
}
