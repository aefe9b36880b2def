using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport.Tests;

public sealed class LifecycleTests
{
    [Fact]
    public async Task IdleConnectionsHoldNoReceiveBuffers()
    {
        const int count = 1000;
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.MaxConnections = 0);
        var clients = new List<TestClient>(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                clients.Add(await server.ConnectAsync());
            }
            foreach (TestClient client in clients)
            {
                await client.ReadUntilAsync("hello\r\n");
            }
            Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == count));
            Assert.True(await Bounded.UntilAsync(() => server.Server.Buffers.Outstanding == 0),
                $"{server.Server.Buffers.Outstanding} buffers held by {count} idle connections");

            // The count is live: a partial line is kept, and holds a buffer until it is completed.
            await clients[0].SendAsync("part");
            Assert.True(await Bounded.UntilAsync(() => server.Server.Buffers.Outstanding == 1));
            await clients[0].SendAsync("ial\r\n");
            Assert.Equal("partial\r\n", await clients[0].ReadUntilAsync("\r\n"));
            Assert.True(await Bounded.UntilAsync(() => server.Server.Buffers.Outstanding == 0));
        }
        finally
        {
            foreach (TestClient client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task ClientThatVanishesMidLineGetsOnClosedExactlyOnce()
    {
        var handler = new EchoLineHandler();
        await using var server = new TestServer(() => handler);
        TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("half a li");
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ReceivedCalls) == 1));
        client.Socket.LingerState = new LingerOption(true, 0); // close with RST, as a crashed client
        client.Dispose();
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 0));
        Assert.Equal(1, handler.ClosedCount);
        Assert.True(await Bounded.UntilAsync(() => server.Server.Buffers.Outstanding == 0));
    }

    [Fact]
    public async Task ClientThatClosesWhileTheServerSendsGetsOnClosedExactlyOnce()
    {
        var handler = new EchoLineHandler();
        await using var server = new TestServer(() => handler);
        TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync(string.Concat(Enumerable.Repeat("some pipelined line\r\n", 2000)));
        client.Dispose();
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 0));
        Assert.Equal(1, handler.ClosedCount);
    }

    [Fact]
    public async Task StopAsyncLetsHandlersSayGoodbyeThenClosesTheRestAtTheDeadline()
    {
        var handlers = new List<EchoLineHandler>();
        int made = 0;
        var server = new TestServer(() =>
        {
            // The third connection is "in DATA": it finishes first, and never does in this test.
            EchoLineHandler handler = Interlocked.Increment(ref made) == 3 ? new BusyHandler() : new EchoLineHandler();
            lock (handlers)
            {
                handlers.Add(handler);
            }
            return handler;
        });
        using TestClient idle1 = await server.ConnectAsync();
        using TestClient idle2 = await server.ConnectAsync();
        using TestClient busy = await server.ConnectAsync();
        await idle1.ReadUntilAsync("hello\r\n");
        await idle2.ReadUntilAsync("hello\r\n");
        await busy.ReadUntilAsync("hello\r\n");

        Task stop = server.Server.StopAsync(TimeSpan.FromMilliseconds(500));
        Assert.Equal("421 shutting down\r\n", await idle1.ReadToEndAsync());
        Assert.Equal("421 shutting down\r\n", await idle2.ReadToEndAsync());
        Assert.Equal("", await busy.ReadToEndAsync().ContinueWith(t => t.IsFaulted ? "" : t.Result));
        await stop.WaitAsync(Bounded.Wait);

        Assert.Equal(0, server.Server.Counters.Open);
        Assert.All(handlers, h => Assert.Equal(1, h.ClosedCount));
        Assert.All(handlers, h => Assert.Equal(1, h.ShutdownCalls));
        await Assert.ThrowsAnyAsync<SocketException>(() => server.ConnectAsync());
        await server.DisposeAsync();
    }

    [IPv6LoopbackFact]
    public async Task ServesIPv6Loopback()
    {
        await using var server = new TestServer(() => new EchoLineHandler(), address: IPAddress.IPv6Loopback);
        Assert.Equal(IPAddress.IPv6Loopback, server.EndPoint.Address);
        Assert.NotEqual(0, server.EndPoint.Port);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("v6\r\n");
        Assert.Equal("v6\r\n", await client.ReadUntilAsync("\r\n"));
    }

    [Fact]
    public async Task ListensOnSeveralEndPointsAtOnce()
    {
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.Equal(2, server.Server.BoundEndPoints.Count);
        Assert.NotEqual(server.Server.BoundEndPoints[0].Port, server.Server.BoundEndPoints[1].Port);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.Server.BoundEndPoints[1]).WaitAsync(Bounded.Wait);
        using var client = new TestClient(socket);
        Assert.Equal("hello\r\n", await client.ReadUntilAsync("\r\n"));
    }

    private sealed class BusyHandler : EchoLineHandler
    {
        public override HandlerStatus OnShutdown(IBufferWriter<byte> output)
        {
            Interlocked.Increment(ref ShutdownCalls);
            return HandlerStatus.Continue;
        }
    }
}

/// <summary>Skipped, with the reason, only on a machine where ::1 cannot be bound.</summary>
public sealed class IPv6LoopbackFactAttribute : FactAttribute
{
    public IPv6LoopbackFactAttribute()
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        }
        catch (SocketException exception)
        {
            Skip = $"::1 cannot be bound here ({exception.SocketErrorCode})";
        }
    }
}
