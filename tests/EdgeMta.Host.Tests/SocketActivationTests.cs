// Socket activation's reading of LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (sd_listen_fds_with_names(3)),
// and how the host shares the sockets out by name. Adopting real descriptors 3.. is the end-to-end
// tests' part (systemd-socket-activate), since a test runner's own descriptor 3 is not a socket.
using System.Net;
using System.Net.Sockets;
using EdgeMta.Systemd;

namespace EdgeMta.Host.Tests;

public class SocketActivationTests
{
    [Fact]
    public void DescriptorsStartAtThreeAndTakeTheirNamesInOrder()
    {
        SocketActivation.PassedSocket[] passed = SocketActivation.Parse("77", "3", "smtp:metrics:smtp", ownPid: 77);
        Assert.Equal([new(3, "smtp"), new(4, "metrics"), new(5, "smtp")], passed);
    }

    [Theory]
    [InlineData(null, "2")]      // not socket-activated
    [InlineData("", "2")]
    [InlineData("78", "2")]      // inherited by a child of the activated process: not ours
    public void VariablesForNoOneOrForAnotherProcessHandNothingOver(string? pid, string fds)
    {
        Assert.Empty(SocketActivation.Parse(pid, fds, "smtp:smtp", ownPid: 77));
    }

    [Fact]
    public void WithoutNamesEverySocketIsUnnamed()
    {
        Assert.Equal([new(3, "unknown"), new(4, "unknown")], SocketActivation.Parse("77", "2", null, ownPid: 77));
        Assert.Equal([new(3, "unknown")], SocketActivation.Parse("77", "1", "", ownPid: 77));
    }

    [Theory]
    [InlineData("x", "1", null)]
    [InlineData("77", "x", null)]
    [InlineData("77", null, null)]
    [InlineData("77", "-1", null)]
    [InlineData("77", "99999", null)]
    [InlineData("77", "2", "smtp")]          // names for one socket, two passed
    [InlineData("77", "1", "smtp:metrics")]
    public void VariablesMeantForUsThatDoNotParseAreRefused(string pid, string? fds, string? names)
    {
        var e = Assert.Throws<SocketActivationException>(() => SocketActivation.Parse(pid, fds, names, ownPid: 77));
        Assert.Contains("LISTEN_", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SmtpTakesItsOwnNameAndTheRestIsClosedWithAWarningEach()
    {
        Socket smtp = Listening(), metrics = Listening(), other = Listening();
        var handedOver = new HandedOverSockets([(smtp, "smtp"), (metrics, "metrics"), (other, "submission")], named: true);

        Assert.Equal([smtp], handedOver.Take("smtp", takesUnnamed: true));
        Assert.Equal([metrics], handedOver.Take("metrics"));
        var errors = new StringWriter();
        handedOver.CloseRest(errors, served: "smtp, metrics");

        Assert.Equal(0, handedOver.Count);
        Assert.Equal("edgemta: warning: the socket named 'submission' from systemd is not one edgemta serves (smtp, metrics); closed\n",
            errors.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Throws<ObjectDisposedException>(() => other.LocalEndPoint);
        Assert.NotNull(smtp.LocalEndPoint); // taken, so still open
        smtp.Dispose();
        metrics.Dispose();
    }

    [Fact]
    public void WithoutNamesSmtpTakesEverySocket()
    {
        Socket a = Listening(), b = Listening();
        var handedOver = new HandedOverSockets([(a, "unknown"), (b, "unknown")], named: false);
        Assert.Equal([a, b], handedOver.Take("smtp", takesUnnamed: true));
        Assert.Equal(0, handedOver.Count);
        a.Dispose();
        b.Dispose();
    }

    private static Socket Listening()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(1);
        return socket;
    }
}
