// The request deadline on real sockets and a fake clock (src/EdgeMta.Transport/RequestDeadline.cs): bytes that
// complete nothing do not move it, a transfer earns N / rate seconds per read, a stress shortening reaches a
// waiting request and not a transfer. Each step moves the fake clock, then one send and its acknowledgement
// (or the timeout reply): the timeout is seen in the step its deadline falls in, or the next one when the
// sweep's signal and the byte race (the byte's receive then wins and the next sweep posts again).
using System.Buffers;

namespace EdgeMta.Transport.Tests;

public sealed class RequestDeadlineTests
{
    private const string Ack = "ok\r\n", Cut = "421 timeout\r\n";

    [Fact]
    public async Task ARequestTrickledOneByteEveryTwentySecondsIsCutAtItsDeadline()
    {
        var clock = new EdgeMta.TestKit.FakeClock();
        await using var server = Server(clock, () => new TrickleHandler(clock, info => info.SetRequestDeadline(RequestDeadline.Request(TimeSpan.FromSeconds(290)))));
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        double? cutAt = await TrickleAsync(clock, client, TimeSpan.FromSeconds(20), "x", steps: 40);
        // 290 s falls in the step that ends at 300 s; 320 s only when that step's byte raced the sweep.
        Assert.NotNull(cutAt);
        Assert.InRange(cutAt.Value, 300, 320);
    }

    [Fact]
    public async Task TheIdleTimeoutAloneIsRestartedByEveryByteAndNeverCutsATrickle()
    {
        // What the request deadline replaces: the same trickle against a 290 s idle timeout lives 800 s and on.
        var clock = new EdgeMta.TestKit.FakeClock();
        await using var server = Server(clock, () => new TrickleHandler(clock, info => info.SetIdleTimeout(TimeSpan.FromSeconds(290))));
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        Assert.Null(await TrickleAsync(clock, client, TimeSpan.FromSeconds(20), "x", steps: 40));
    }

    [Fact]
    public async Task ATransferBelowItsMinimumRateIsCutAndOneAboveItIsNot()
    {
        var clock = new EdgeMta.TestKit.FakeClock();
        await using var server = Server(clock, () => new TrickleHandler(clock, info => info.SetRequestDeadline(RequestDeadline.Transfer(TimeSpan.FromSeconds(10), 100))));
        using TestClient slow = await server.ConnectAsync();
        await slow.ReadUntilAsync("hello\r\n");
        // 50 bytes a second at a minimum of 100: each second earns 0.5 s, so 10 s last until 19 s (10 + 0.5 x 18).
        double? cutAt = await TrickleAsync(clock, slow, TimeSpan.FromSeconds(1), new string('s', 50), steps: 60);
        Assert.NotNull(cutAt);
        Assert.InRange(cutAt.Value, 19, 20);

        using TestClient fast = await server.ConnectAsync();
        await fast.ReadUntilAsync("hello\r\n");
        // 200 bytes a second earn 2 s a second, capped at 10 s ahead: a minute and never short of time.
        Assert.Null(await TrickleAsync(clock, fast, TimeSpan.FromSeconds(1), new string('f', 200), steps: 60));
    }

    [Fact]
    public async Task AShorteningReachesAWaitingRequestAndLeavesATransferAlone()
    {
        var clock = new EdgeMta.TestKit.FakeClock();
        int opened = 0;
        await using var server = Server(clock, () => new TrickleHandler(clock, info => info.SetRequestDeadline(Interlocked.Increment(ref opened) == 1
            ? RequestDeadline.Request(TimeSpan.FromSeconds(300))
            : RequestDeadline.Transfer(TimeSpan.FromSeconds(300), 1))));
        using TestClient request = await server.ConnectAsync();
        await request.ReadUntilAsync("hello\r\n");
        using TestClient transfer = await server.ConnectAsync();
        await transfer.ReadUntilAsync("hello\r\n");
        clock.Advance(TimeSpan.FromSeconds(5));
        server.Server.ShortenRequestDeadlines(TimeSpan.FromSeconds(10));
        // A round trip on each: the shortening was posted before the byte, so it has been applied (at 5 s) by the ack.
        Assert.Equal(Ack, await RoundTripAsync(request, "x"));
        Assert.Equal(Ack, await RoundTripAsync(transfer, "x"));
        double? cutAt = await TrickleAsync(clock, request, TimeSpan.FromSeconds(1), "x", steps: 30);
        Assert.NotNull(cutAt);
        Assert.InRange(cutAt.Value, 15, 16); // 5 s + 10 s, not 300 s
        Assert.Equal(Ack, await RoundTripAsync(transfer, "x")); // its own 300 s stand
    }

    private static TestServer Server(EdgeMta.TestKit.FakeClock clock, Func<IConnectionHandler> create) =>
        new(create, o =>
        {
            o.TimeProvider = clock;
            o.TimerPeriod = TimeSpan.FromSeconds(1);
        });

    /// <summary>Each step: the clock moves, then one send. Returns the handler's clock reading when it was cut, or
    /// null if it lived through every step.</summary>
    private static async Task<double?> TrickleAsync(EdgeMta.TestKit.FakeClock clock, TestClient client, TimeSpan step, string bytes, int steps)
    {
        for (int i = 0; i < steps; i++)
        {
            clock.Advance(step);
            string answer = await RoundTripAsync(client, bytes);
            if (answer != Ack)
            {
                Assert.StartsWith(Cut, answer);
                return double.Parse(answer[Cut.Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return null;
    }

    /// <summary>Sends, then reads the acknowledgement, or whatever came before the close (the timeout reply). A
    /// send may fail once the server closed; what it said by then is still there to read.</summary>
    private static async Task<string> RoundTripAsync(TestClient client, string bytes)
    {
        try
        {
            await client.SendAsync(bytes);
        }
        catch (System.Net.Sockets.SocketException)
        {
        }
        string text = await client.ReadOnceAsync();
        while (text.StartsWith(Ack, StringComparison.Ordinal) && text.Length > Ack.Length)
        {
            text = text[Ack.Length..]; // an earlier byte's ack and the cut, read together
        }
        for (int reads = 0; text != Ack && text.Count(c => c == '\n') < 2 && reads < 4; reads++)
        {
            string more = await client.ReadOnceAsync(); // the cut's second line, if it came apart
            if (more.Length == 0) break;
            text += more;
        }
        return text;
    }

    /// <summary>Greets, arms what the test says, acknowledges every receive with "ok" (consuming everything, so
    /// nothing ever completes a request), and on a timeout answers "421 timeout" and the clock's reading in seconds.</summary>
    private sealed class TrickleHandler(EdgeMta.TestKit.FakeClock clock, Action<ConnectionInfo> arm) : IConnectionHandler
    {
        public HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            arm(info);
            output.Write("hello\r\n"u8);
            return HandlerStatus.Continue;
        }

        public HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
        {
            consumed = input.Length;
            output.Write("ok\r\n"u8);
            return HandlerStatus.Continue;
        }

        public HandlerStatus OnResumed(IBufferWriter<byte> output) => HandlerStatus.Continue;

        public HandlerStatus OnTimedOut(IBufferWriter<byte> output)
        {
            long seconds = (long)clock.GetElapsedTime(0).TotalSeconds;
            output.Write(System.Text.Encoding.ASCII.GetBytes($"{Cut}{seconds}\r\n"));
            return HandlerStatus.Close;
        }

        public HandlerStatus OnShutdown(IBufferWriter<byte> output) => HandlerStatus.Close;

        public void OnClosed() { }
    }
}
