// Sockets handed over already listening (TransportOptions.ListeningSockets, what a service manager's socket
// activation gives the host): served beside bound endpoints, refused when not listening, closed at stop.
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport.Tests;

public sealed class HandedOverSocketTests
{
    private static Socket ListeningSocket()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(16);
        return socket;
    }

    [Fact]
    public async Task AHandedOverListeningSocketIsServedAfterTheBoundEndPoints()
    {
        Socket handedOver = ListeningSocket();
        var address = (IPEndPoint)handedOver.LocalEndPoint!;
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.ListeningSockets.Add(handedOver));

        Assert.Equal(2, server.Server.BoundEndPoints.Count);
        Assert.NotEqual(address, server.Server.BoundEndPoints[0]);
        Assert.Equal(address, server.Server.BoundEndPoints[1]);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await client.ConnectAsync(address, timeout.Token);
        using var session = new TestClient(client);
        Assert.Equal("hello\r\n", await session.ReadUntilAsync("hello\r\n"));
        await session.SendAsync("ping\r\n");
        Assert.Equal("ping\r\n", await session.ReadUntilAsync("\r\n"));
    }

    [Fact]
    public async Task ALingerOfZeroLeftOnTheSocketByAnEarlierOwnerIsCleared()
    {
        // The runtime closes a listening socket abortively (SO_LINGER {1, 0}), and the service manager keeps
        // the socket across restarts: each instance finds what the one before it left, and accepted sockets
        // inherit it.
        Socket handedOver = ListeningSocket();
        handedOver.LingerState = new LingerOption(true, 0);
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.ListeningSockets.Add(handedOver));

        Assert.False(handedOver.LingerState!.Enabled);
    }

    [Fact]
    public async Task StopClosesTheHandedOverSocket()
    {
        Socket handedOver = ListeningSocket();
        var address = (IPEndPoint)handedOver.LocalEndPoint!;
        var server = new TestServer(() => new EchoLineHandler(), o => o.ListeningSockets.Add(handedOver));
        await server.DisposeAsync();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        SocketException refused = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(address).WaitAsync(Bounded.Wait));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task ASocketThatIsOnlyBoundIsRefusedAndNothingStaysOpen()
    {
        var boundOnly = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        boundOnly.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var options = new TransportOptions();
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        options.ListeningSockets.Add(boundOnly);
        var server = new TransportServer(options, new DelegateFactory(() => new EchoLineHandler()));

        ArgumentException refused = Assert.Throws<ArgumentException>(server.Start);
        Assert.Contains("not a listening TCP socket", refused.Message, StringComparison.Ordinal);
        // The endpoint bound before the refusal is closed again, and the handed-over socket with it.
        IPEndPoint bound = server.BoundEndPoints[0];
        Assert.NotEqual(0, bound.Port);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        SocketException closed = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(bound).WaitAsync(Bounded.Wait));
        Assert.Equal(SocketError.ConnectionRefused, closed.SocketErrorCode);
        Assert.Throws<ObjectDisposedException>(() => boundOnly.LocalEndPoint);
    }

    [Fact]
    public void AUdpSocketIsRefused()
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var options = new TransportOptions();
        options.ListeningSockets.Add(udp);
        var server = new TransportServer(options, new DelegateFactory(() => new EchoLineHandler()));
        Assert.Throws<ArgumentException>(server.Start);
    }
}
