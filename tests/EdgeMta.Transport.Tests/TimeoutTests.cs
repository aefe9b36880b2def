using System.Buffers;
using System.Net.Sockets;

namespace EdgeMta.Transport.Tests;

public sealed class TimeoutTests
{
    [Fact]
    public async Task IdleTimeoutSetByTheHandlerFiresAndItsReplyIsDelivered()
    {
        var handler = new ShortTimeoutHandler();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        Assert.Equal("hello\r\n421 idle\r\n", await client.ReadToEndAsync());
        Assert.Equal(1, handler.TimedOutCalls);
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
    }

    [Fact]
    public async Task InputKeepsAnIdleConnectionAlive()
    {
        // 2 s timeout, a line every 300 ms for 4.8 s in all: the gaps keep a 6x margin, so a loaded CI
        // machine stretching a delay cannot fake a timeout, while the whole run outlasts the timeout twice.
        var handler = new ShortTimeoutHandler(TimeSpan.FromSeconds(2));
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        for (int i = 0; i < 16; i++)
        {
            await Task.Delay(300);
            await client.SendAsync("ping\r\n");
            await client.ReadUntilAsync("ping\r\n");
        }
        Assert.Equal(0, handler.TimedOutCalls);
    }

    [Fact]
    public async Task ClientThatStopsReadingIsNotBufferedWithoutBoundAndTimesOut()
    {
        var handler = new FloodHandler();
        await using var server = new TestServer(() => handler, o =>
        {
            o.MaxOutputBytes = 1 << 20;
            o.SendTimeout = TimeSpan.FromSeconds(1);
        });
        using TestClient client = await server.ConnectAsync();
        client.Socket.ReceiveBufferSize = 64 * 1024; // fixed: no autotuning to megabytes
        int sent = 0;
        long mostHeld = 0;
        try
        {
            // Each line asks for 1 MiB; socket buffers hold a few MiB at most, so the server's send
            // blocks after a few lines, and from then on it must not process (and buffer) more.
            for (; sent < 60 && Volatile.Read(ref handler.ClosedCount) == 0; sent++)
            {
                await client.SendAsync("more\r\n");
                await Task.Delay(25);
                mostHeld = Math.Max(mostHeld, server.Server.Buffers.Outstanding);
            }
        }
        catch (SocketException)
        {
            // The send timeout closed the connection while we were still writing.
        }
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, server.Server.Counters.SendTimedOut);
        Assert.True(handler.Answered < 20, $"answered {handler.Answered} of {sent} lines while the client read nothing");
        Assert.True(mostHeld <= 2, $"held {mostHeld} buffers"); // one output in flight, at most one input
        Assert.True(await Bounded.UntilAsync(() => server.Server.Buffers.Outstanding == 0));
    }

    // TransportOptions.TimeProvider: every deadline and the sweep run on the given clock. Five minutes of a
    // fake clock pass in a few sweeps, which no wall clock could do within this test's bound.
    [Fact]
    public async Task TheIdleTimeoutRunsOnTheInjectedClock()
    {
        var clock = new EdgeMta.TestKit.FakeClock();
        var handler = new EchoLineHandler();
        await using var server = new TestServer(() => handler, o =>
        {
            o.TimeProvider = clock;
            o.TimerPeriod = TimeSpan.FromSeconds(1);
        });
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        TimeSpan advanced = TimeSpan.Zero;
        for (int minute = 0; minute < 20 && Volatile.Read(ref handler.TimedOutCalls) == 0; minute++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            advanced += TimeSpan.FromMinutes(1);
            // The sweep posts the timeout; the connection runs it on the thread pool, so look a moment.
            await Bounded.UntilAsync(() => Volatile.Read(ref handler.TimedOutCalls) == 1, TimeSpan.FromMilliseconds(200));
        }
        Assert.Equal(1, handler.TimedOutCalls);
        Assert.InRange(advanced, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(7)); // the default 5-minute idle timeout
        Assert.Equal("421 idle\r\n", await client.ReadToEndAsync());
    }

    private sealed class ShortTimeoutHandler(TimeSpan timeout) : EchoLineHandler
    {
        public ShortTimeoutHandler() : this(TimeSpan.FromMilliseconds(500)) { }

        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            info.SetIdleTimeout(timeout);
            return base.OnOpened(info, output);
        }
    }

    private sealed class FloodHandler : EchoLineHandler
    {
        public int Answered;

        // 1 MiB per pass however many lines arrived together, so the output cap is never the cause.
        public override HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
        {
            consumed = input.LastIndexOf((byte)'\n') + 1;
            if (consumed > 0)
            {
                Interlocked.Increment(ref Answered);
                Span<byte> span = output.GetSpan(1 << 20);
                span[..(1 << 20)].Fill((byte)'z');
                output.Advance(1 << 20);
            }
            return HandlerStatus.Continue;
        }
    }
}
