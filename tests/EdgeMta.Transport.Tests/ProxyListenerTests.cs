// The PROXY listener's pre-phase (Connection.Proxy.cs) over real loopback sockets: the greeting only after the
// header, the client the header names, one deadline from accept on a fake clock, and every refusal a close
// with nothing written and one report.
using System.Collections.Concurrent;
using System.Net;
using EdgeMta.TestKit;
using EdgeMta.Transport.Proxy;

namespace EdgeMta.Transport.Tests;

public sealed class ProxyListenerTests
{
    private sealed class RecordingLog : ITransportLog
    {
        public readonly ConcurrentQueue<(IPEndPoint? Peer, ProxyRejectReason Reason)> Rejected = new();

        public void HandlerFaulted(long connectionId, Exception exception) { }

        public void AcceptBackingOff(System.Net.Sockets.SocketError error, TimeSpan delay) { }

        public void ListenerStopped(string endPoint, System.Net.Sockets.SocketError error) { }

        public void InternalError(Exception exception) { }

        public void ProxyRejected(IPEndPoint? peer, ProxyRejectReason reason) => Rejected.Enqueue((peer, reason));
    }

    private static TestServer ProxyServer(Func<IConnectionHandler> create, RecordingLog log, string trusted = "127.0.0.0/8", Action<TransportOptions>? configure = null) =>
        new(create, o =>
        {
            o.ProxyEndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
            o.ProxyTrustedNetworks.Add(IPNetwork.Parse(trusted));
            o.Log = log;
            configure?.Invoke(o);
        });

    private static async Task<TestClient> ConnectProxyAsync(TestServer server, IPAddress? from = null)
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        if (from is not null)
        {
            socket.Bind(new IPEndPoint(from, 0));
        }
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await socket.ConnectAsync(server.Server.BoundEndPoints[1], timeout.Token);
        return new TestClient(socket);
    }

    [Fact]
    public async Task TheGreetingFollowsTheHeaderAndTheHandlerSeesTheClientItNames()
    {
        var log = new RecordingLog();
        var handler = new EchoLineHandler();
        await using TestServer server = ProxyServer(() => handler, log);
        using TestClient client = await ConnectProxyAsync(server);

        await client.SendAsync("PROXY TCP4 203.0.113.9 192.0.2.25 40000 25");
        // Half a header: no handler yet, so nothing can have been written (spec §5).
        Assert.False(await Bounded.UntilAsync(() => !server.Factory.Created.IsEmpty, TimeSpan.FromMilliseconds(200)));
        // The rest of the header and the first line in one segment: the line is input, not part of the header.
        await client.SendAsync("\r\nping\r\n");
        Assert.Equal("hello\r\nping\r\n", await client.ReadUntilAsync("ping\r\n"));

        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.9"), 40000), handler.Info.ClientEndPoint);
        var peer = (IPEndPoint)client.Socket.LocalEndPoint!;
        Assert.Equal(peer, handler.Info.ProxyEndPoint);
        Assert.Equal(peer, handler.Info.RemoteEndPoint);
        Assert.Equal(1, server.Server.Counters.ProxyAccepted);
        Assert.Empty(log.Rejected);
    }

    [Fact]
    public async Task AV2LocalHealthCheckKeepsTheSocketsOwnEndpoints()
    {
        var log = new RecordingLog();
        var handler = new EchoLineHandler();
        await using TestServer server = ProxyServer(() => handler, log);
        using TestClient client = await ConnectProxyAsync(server);
        byte[] local = ProxyHeaderTests.V2(0x20, 0x11, new byte[12]); // LOCAL with a body to skip (haproxy issue 511)
        await client.SendAsync([.. local, .. "quit\r\n"u8]);
        Assert.Equal("hello\r\nbye\r\n", await client.ReadToEndAsync());
        var peer = (IPEndPoint)client.Socket.LocalEndPoint!;
        Assert.Equal(peer, handler.Info.ClientEndPoint);
        Assert.Null(handler.Info.ProxyEndPoint);
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n", ProxyRejectReason.V1Unknown)]
    [InlineData("EHLO client.example\r\n", ProxyRejectReason.BadSignature)]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ProxyRejectReason.V1Malformed)]
    public async Task AnInvalidHeaderIsClosedWithNothingWrittenAndReportedOnce(string header, ProxyRejectReason reason)
    {
        var log = new RecordingLog();
        await using TestServer server = ProxyServer(() => new EchoLineHandler(), log);
        using TestClient client = await ConnectProxyAsync(server);
        await client.SendAsync(header);
        Assert.Equal("", await ReadToCloseAsync(client));
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 0));
        Assert.Equal([reason], log.Rejected.Select(r => r.Reason));
        Assert.Equal(client.Socket.LocalEndPoint, log.Rejected.Single().Peer);
        Assert.Empty(server.Factory.Created);
        Assert.Equal(1, server.Server.Counters.ProxyRejected);
    }

    [Fact]
    public async Task AV2HeaderOver4KiBIsRefusedAsSoonAsItsLengthIsRead()
    {
        var log = new RecordingLog();
        await using TestServer server = ProxyServer(() => new EchoLineHandler(), log);
        using TestClient client = await ConnectProxyAsync(server);
        await client.SendAsync(ProxyHeaderTests.V2(0x21, 0x11, new byte[12], declaredLength: 5000));
        Assert.Equal("", await ReadToCloseAsync(client));
        Assert.True(await Bounded.UntilAsync(() => !log.Rejected.IsEmpty));
        Assert.Equal(ProxyRejectReason.TooLarge, log.Rejected.Single().Reason);
    }

    [Fact]
    public async Task APeerOutsideTheTrustedNetworksIsClosedAtAccept()
    {
        var log = new RecordingLog();
        await using TestServer server = ProxyServer(() => new EchoLineHandler(), log, trusted: "192.0.2.0/24");
        using TestClient client = await ConnectProxyAsync(server);
        Assert.Equal("", await ReadToCloseAsync(client)); // closed without anything sent by us
        Assert.True(await Bounded.UntilAsync(() => !log.Rejected.IsEmpty));
        Assert.Equal(ProxyRejectReason.Untrusted, log.Rejected.Single().Reason);
        Assert.Equal(0, server.Server.Counters.Open);
        Assert.Empty(server.Factory.Created);
    }

    [Fact]
    public async Task TheTimeoutRunsFromAcceptAndIsNotReArmedByLateBytes()
    {
        var clock = new FakeClock();
        var log = new RecordingLog();
        await using TestServer server = ProxyServer(() => new EchoLineHandler(), log, configure: o =>
        {
            o.TimeProvider = clock;
            o.ProxyTimeout = TimeSpan.FromSeconds(5);
        });
        using TestClient client = await ConnectProxyAsync(server);
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 1));
        const string header = "PROXY TCP4 203.0.113.9 192.0.2.25 40000 25\r\n";
        // One byte a second: each arrives before the deadline, none moves it.
        for (int i = 0; i < 4; i++)
        {
            await client.SendAsync(header[i].ToString());
            await Task.Delay(50); // let the byte be read before the clock moves (a naive re-arm would then show)
            clock.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.Empty(log.Rejected);
        await client.SendAsync(header[4].ToString());
        clock.Advance(TimeSpan.FromSeconds(1.5)); // 5.5 s after accept, 1.5 s after the last byte
        Assert.Equal("", await ReadToCloseAsync(client));
        Assert.True(await Bounded.UntilAsync(() => !log.Rejected.IsEmpty));
        Assert.Equal(ProxyRejectReason.TimedOut, log.Rejected.Single().Reason);
        Assert.Empty(server.Factory.Created);
    }

    [Fact]
    public async Task APlainListenerNeverLooksForAHeader()
    {
        var log = new RecordingLog();
        var handler = new EchoLineHandler();
        await using TestServer server = ProxyServer(() => handler, log);
        using TestClient client = await server.ConnectAsync(); // BoundEndPoints[0]: the plain listener
        await client.ReadUntilAsync("hello\r\n"); // greeted at once
        await client.SendAsync("PROXY TCP4 203.0.113.9 192.0.2.25 40000 25\r\n");
        Assert.Equal("PROXY TCP4 203.0.113.9 192.0.2.25 40000 25\r\n", await client.ReadUntilAsync("25\r\n"));
        Assert.Equal(client.Socket.LocalEndPoint, handler.Info.ClientEndPoint);
        Assert.Null(handler.Info.ProxyEndPoint);
    }

    [Fact]
    public async Task ThePerAddressLimitCountsProxiedClientsByTheirOwnAddress()
    {
        var log = new RecordingLog();
        var gate = new CountingGate(1);
        await using TestServer server = ProxyServer(() => new EchoLineHandler(), log, configure: o => o.Gate = gate);
        using TestClient first = await ConnectProxyAsync(server);
        await first.SendAsync("PROXY TCP4 203.0.113.9 127.0.0.1 40000 25\r\n");
        await first.ReadUntilAsync("hello\r\n");
        using TestClient other = await ConnectProxyAsync(server);
        await other.SendAsync("PROXY TCP4 203.0.113.10 127.0.0.1 40000 25\r\n");
        await other.ReadUntilAsync("hello\r\n");
        using TestClient again = await ConnectProxyAsync(server);
        await again.SendAsync("PROXY TCP4 203.0.113.9 127.0.0.1 40001 25\r\n");
        Assert.Equal("421 too many from you\r\n", await again.ReadToEndAsync());
        Assert.Equal([ConnectionRejection.TooManyFromAddress], server.Factory.Rejections);
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 2));
        Assert.Equal(1, gate.OpenFrom(IPAddress.Parse("203.0.113.9")));
        Assert.Equal(0, gate.OpenFrom(IPAddress.Loopback)); // the proxy itself is never counted
    }

    /// <summary>Reads to the server's close, FIN or reset; returns what was received.</summary>
    private static async Task<string> ReadToCloseAsync(TestClient client)
    {
        try
        {
            return await client.ReadToEndAsync();
        }
        catch (System.Net.Sockets.SocketException)
        {
            return ""; // a reset: closed with unread input, nothing was written before it
        }
    }
}
