// Outbound connections (OutboundHandler.cs): connect over TCP, a name and a Unix socket and talk both ways;
// refused and timed-out connects end in OnConnectFailed alone; stop reaches an outbound session; misuse throws.
using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport.Tests;

public sealed class OutboundTests
{
    [Fact]
    public async Task ConnectsOverTcpAndExchangesLinesBothWays()
    {
        await using var transport = new OutboundTransport();
        using PeerListener peer = PeerListener.Tcp();
        ScriptedClient handler = NewSmtpLikeClient();

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        await RunDialogueAsync(next, handler);

        Assert.Equal(peer.EndPoint, handler.Info.RemoteEndPoint);
        Assert.Equal(next.Socket.RemoteEndPoint, handler.Info.LocalEndPoint);
        Assert.Equal(0, transport.Server.Counters.Open); // outbound connections are not admitted inbound
        Assert.Equal(["opened", "line 220 next hop ready", "line 250 ok", "line 221 bye", "closed"], handler.Events);
    }

    [Fact]
    public async Task ConnectsToAHostNameOverADualModeSocket()
    {
        await using var transport = new OutboundTransport();
        using PeerListener peer = PeerListener.Tcp();
        ScriptedClient handler = NewSmtpLikeClient();
        int port = ((IPEndPoint)peer.EndPoint).Port;

        transport.Server.Connect(new DnsEndPoint("localhost", port), handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        await RunDialogueAsync(next, handler);

        // localhost is 127.0.0.1 here (a peer bound to IPv4 accepted it), reported as IPv4, not ::ffff:127.0.0.1.
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, port), handler.Info.RemoteEndPoint);
    }

    [Fact]
    public async Task ConnectsOverAUnixSocketWithNoIpEndPoints()
    {
        string directory = Directory.CreateTempSubdirectory("edgemta-outbound-").FullName;
        try
        {
            await using var transport = new OutboundTransport();
            using PeerListener peer = PeerListener.Unix(Path.Combine(directory, "lmtp.sock"));
            ScriptedClient handler = NewSmtpLikeClient();

            transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
            using TestClient next = await peer.AcceptAsync();
            await RunDialogueAsync(next, handler);

            Assert.Null(handler.Info.RemoteEndPoint);
            Assert.Null(handler.Info.LocalEndPoint);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task RefusedConnectCallsOnConnectFailedAndNothingElse()
    {
        await using var transport = new OutboundTransport();
        // Bound, never listening: the port is ours, so nobody else can answer on it, and a SYN gets an RST.
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var handler = new ScriptedClient();

        transport.Server.Connect(closed.LocalEndPoint!, handler, TimeSpan.FromSeconds(5));

        Assert.True(await Bounded.UntilAsync(() => handler.ConnectFailedCount == 1));
        Assert.Equal(SocketError.ConnectionRefused, handler.ConnectError);
        await transport.Server.StopAsync(TimeSpan.Zero).WaitAsync(Bounded.Wait); // anything still due would now run
        Assert.Equal(["connect failed"], handler.Events);
        Assert.Equal(0, handler.ClosedCount);
    }

    [Fact]
    public async Task ConnectThatNeverCompletesTimesOutOnTheTransportClock()
    {
        var clock = new EdgeMta.TestKit.FakeClock();
        await using var transport = new OutboundTransport(o =>
        {
            o.TimeProvider = clock;
            o.TimerPeriod = TimeSpan.FromSeconds(1);
        });
        using PeerListener peer = PeerListener.Tcp(backlog: 0);
        using Socket filler = await FillBacklogAsync(peer);
        var handler = new ScriptedClient();

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(30));
        Assert.Equal(0, handler.OpenedCount); // still connecting: the timeout, not a refusal, must end it
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, handler.ConnectFailedCount);
        clock.Advance(TimeSpan.FromSeconds(1));

        Assert.True(await Bounded.UntilAsync(() => handler.ConnectFailedCount == 1, TimeSpan.FromSeconds(2)));
        Assert.Equal(SocketError.TimedOut, handler.ConnectError);
        Assert.Equal(["connect failed"], handler.Events);
    }

    [Fact]
    public async Task StopEndsAConnectInFlightWithOperationAborted()
    {
        var transport = new OutboundTransport();
        using PeerListener peer = PeerListener.Tcp(backlog: 0);
        using Socket filler = await FillBacklogAsync(peer);
        var handler = new ScriptedClient();
        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromMinutes(5));
        Assert.Equal(0, handler.ConnectFailedCount); // still connecting

        await transport.Server.StopAsync(TimeSpan.FromSeconds(10)).WaitAsync(Bounded.Wait);

        Assert.True(await Bounded.UntilAsync(() => handler.ConnectFailedCount == 1, TimeSpan.FromSeconds(2)));
        Assert.Equal(SocketError.OperationAborted, handler.ConnectError);
        Assert.Equal(["connect failed"], handler.Events);
    }

    [Fact]
    public async Task IdleTimeoutIsTheClientsReplyTimeout()
    {
        var clock = new EdgeMta.TestKit.FakeClock();
        await using var transport = new OutboundTransport(o =>
        {
            o.TimeProvider = clock;
            o.TimerPeriod = TimeSpan.FromSeconds(1);
        });
        using PeerListener peer = PeerListener.Tcp();
        var handler = new ReplyTimeoutClient(TimeSpan.FromSeconds(300)); // RFC 5321 §4.5.3.2: the greeting

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.OpenedCount) == 1));
        TimeSpan advanced = TimeSpan.Zero;
        for (int minute = 0; minute < 10 && Volatile.Read(ref handler.TimedOutCalls) == 0; minute++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            advanced += TimeSpan.FromMinutes(1);
            await Bounded.UntilAsync(() => Volatile.Read(ref handler.TimedOutCalls) == 1, TimeSpan.FromMilliseconds(200));
        }

        Assert.Equal(1, handler.TimedOutCalls);
        Assert.InRange(advanced, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(7));
        Assert.Equal("QUIT\r\n", await next.ReadToEndAsync());
        next.Socket.Shutdown(SocketShutdown.Send); // the linger deadline is on the fake clock: end the drain here
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
    }

    [Fact]
    public async Task StopCallsOnShutdownOnAnOutboundSessionThenClosesIt()
    {
        var transport = new OutboundTransport();
        using PeerListener peer = PeerListener.Tcp();
        ScriptedClient handler = NewSmtpLikeClient();
        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        await next.SendAsync("220 next hop ready\r\n");
        Assert.Equal("EHLO client.example\r\n", await next.ReadUntilAsync("\r\n"));

        Task stop = transport.Server.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("QUIT\r\n", await next.ReadToEndAsync()); // the handler's answer to OnShutdown, then our FIN
        next.Socket.Shutdown(SocketShutdown.Send);
        await stop.WaitAsync(Bounded.Wait);

        Assert.Equal(1, handler.ShutdownCalls);
        Assert.Equal(1, handler.ClosedCount);
        Assert.Throws<InvalidOperationException>(() => transport.Server.Connect(peer.EndPoint, new ScriptedClient(), TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void ConnectBeforeStartIsMisuse()
    {
        var server = new TransportServer(new TransportOptions(), new DelegateFactory(() => new EchoLineHandler()));
        var handler = new ScriptedClient();
        Assert.Throws<InvalidOperationException>(() => server.Connect(new IPEndPoint(IPAddress.Loopback, 25), handler, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => server.Connect(new IPEndPoint(IPAddress.Loopback, 25), handler, TimeSpan.Zero));
        Assert.Empty(handler.Events);
    }

    [Fact]
    public async Task WriteMoreFromAnInboundHandlerFaultsItsConnection()
    {
        var handler = new InboundWriteMoreHandler();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadToEndAsync();
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, server.Server.Counters.Faulted);
    }

    /// <summary>A backlog of 0 holds one connection not yet accepted; with this one in it, the kernel drops
    /// further SYNs and their connects stay pending (retransmitting) until cancelled.</summary>
    private static async Task<Socket> FillBacklogAsync(PeerListener peer)
    {
        var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await filler.ConnectAsync(peer.EndPoint, timeout.Token);
        return filler;
    }

    /// <summary>EHLO after the greeting, QUIT after the 250, Close after the 221.</summary>
    internal static ScriptedClient NewSmtpLikeClient()
    {
        var handler = new ScriptedClient();
        handler.Replies["220"] = "EHLO client.example\r\n";
        handler.Replies["250"] = "QUIT\r\n";
        return handler;
    }

    /// <summary>The peer's side of <see cref="NewSmtpLikeClient"/>, ending with our FIN and OnClosed.</summary>
    private static async Task RunDialogueAsync(TestClient next, ScriptedClient handler)
    {
        await next.SendAsync("220 next hop ready\r\n");
        Assert.Equal("EHLO client.example\r\n", await next.ReadUntilAsync("\r\n"));
        await next.SendAsync("250 ok\r\n");
        Assert.Equal("QUIT\r\n", await next.ReadUntilAsync("\r\n"));
        await next.SendAsync("221 bye\r\n");
        Assert.Equal("", await next.ReadToEndAsync()); // the handler closed: our FIN
        next.Socket.Shutdown(SocketShutdown.Send);
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, handler.OpenedCount);
        Assert.Equal(0, handler.ConnectFailedCount);
    }

    private sealed class ReplyTimeoutClient(TimeSpan timeout) : ScriptedClient
    {
        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            info.SetIdleTimeout(timeout);
            return base.OnOpened(info, output);
        }
    }

    private sealed class InboundWriteMoreHandler : EchoLineHandler
    {
        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            output.Write("hello\r\n"u8);
            return HandlerStatus.WriteMore;
        }
    }
}
