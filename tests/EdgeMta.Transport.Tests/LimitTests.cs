using System.Net;

namespace EdgeMta.Transport.Tests;

public sealed class LimitTests
{
    [Fact]
    public async Task ConnectionOverTheGlobalLimitGetsTheRejectionReplyAndIsClosed()
    {
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.MaxConnections = 2);
        using TestClient first = await server.ConnectAsync();
        using TestClient second = await server.ConnectAsync();
        await first.ReadUntilAsync("hello\r\n");
        await second.ReadUntilAsync("hello\r\n");

        using (TestClient third = await server.ConnectAsync())
        {
            Assert.Equal("421 too many connections\r\n", await third.ReadToEndAsync());
        }
        Assert.Equal(1, server.Server.Counters.Rejected);
        Assert.Equal(2, server.Server.Counters.Accepted);
        Assert.Equal(new[] { ConnectionRejection.TooManyConnections }, server.Factory.Rejections);
        Assert.Equal(2, server.Factory.Created.Count); // no handler for the rejected one

        // Closing one frees its place.
        first.Dispose();
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 1));
        using TestClient fourth = await server.ConnectAsync();
        Assert.Equal("hello\r\n", await fourth.ReadUntilAsync("\r\n"));
    }

    [Fact]
    public async Task ConnectionOverThePerAddressLimitIsRejectedWhileOtherAddressesAreServed()
    {
        var gate = new CountingGate(1);
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.Gate = gate);
        using TestClient first = await server.ConnectAsync(IPAddress.Loopback);
        await first.ReadUntilAsync("hello\r\n");
        using (TestClient second = await server.ConnectAsync(IPAddress.Loopback))
        {
            Assert.Equal("421 too many from you\r\n", await second.ReadToEndAsync());
        }
        Assert.Equal(new[] { ConnectionRejection.TooManyFromAddress }, server.Factory.Rejections);

        // 127.0.0.2 is loopback too on Linux (127.0.0.0/8): another address, its own count.
        using TestClient other = await server.ConnectAsync(IPAddress.Parse("127.0.0.2"));
        Assert.Equal("hello\r\n", await other.ReadUntilAsync("\r\n"));

        first.Dispose();
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 1));
        using TestClient again = await server.ConnectAsync(IPAddress.Loopback);
        Assert.Equal("hello\r\n", await again.ReadUntilAsync("\r\n"));
        Assert.Equal(1, gate.OpenFrom(IPAddress.Loopback)); // the refused one was never counted, the closed one given back
    }
}
