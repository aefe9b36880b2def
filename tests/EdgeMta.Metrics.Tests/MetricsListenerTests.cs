// The metrics port against real loopback clients, well-behaved and not: every deadline runs on a FakeClock,
// so a slowloris or a client that never reads is cut by moving time, not by waiting 10 s. The waits here
// are bounded (WaitTimeout) so a bug fails the test instead of hanging it.
using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeMta.Metrics;
using EdgeMta.TestKit;

namespace EdgeMta.Metrics.Tests;

public sealed class MetricsListenerTests : IAsyncLifetime
{
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(10);
    private readonly FakeClock _clock = new();
    private readonly List<Socket> _clients = [];
    private MetricsListener? _listener;

    private MetricsListener Start(Action<PrometheusTextWriter>? render = null, int maxConnections = 4, int maxBodyBytes = 4 << 20)
    {
        _listener = MetricsListener.Start(new MetricsListenerOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            MaxConnections = maxConnections,
            MaxBodyBytes = maxBodyBytes,
            Clock = _clock,
        }, render ?? (w => w.Sample("test_up"u8, 1)));
        return _listener;
    }

    private Socket Connect(int? receiveBuffer = null)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)WaitTimeout.TotalMilliseconds };
        if (receiveBuffer is int size) s.ReceiveBufferSize = size;
        _clients.Add(s);
        s.Connect(_listener!.BoundEndPoint);
        return s;
    }

    /// <summary>Everything until the server closes; a reset ends it too (reported).</summary>
    private static string ReadToEnd(Socket s, out bool reset)
    {
        var all = new MemoryStream();
        var buffer = new byte[16384];
        reset = false;
        try
        {
            int n;
            while ((n = s.Receive(buffer)) > 0) all.Write(buffer, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            reset = true;
        }
        return Encoding.Latin1.GetString(all.ToArray());
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + WaitTimeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            Thread.Sleep(5);
        }
    }

    private static string Get(Socket s, string head)
    {
        s.Send(Encoding.Latin1.GetBytes(head));
        return ReadToEnd(s, out _);
    }

    [Fact]
    public void AGetOfMetricsIsTheRenderedBodyWithItsContentTypeAndLengthThenAClose()
    {
        Start(w => { w.Family("test_things_total"u8, "counter"u8, "Things."u8); w.Sample("test_things_total"u8, 42); });
        string response = Get(Connect(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
        const string body = "# HELP test_things_total Things.\n# TYPE test_things_total counter\ntest_things_total 42\n";
        Assert.Equal(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" +
            $"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}", response);
        WaitUntil(() => Volatile.Read(ref _listener!._served) == 1 && _listener.Open == 0, "the connection is closed");
    }

    [Theory]
    [InlineData("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n", true)]
    [InlineData("DELETE /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n", true)]
    [InlineData("GET /other HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n", false)]
    [InlineData("EHLO example.com\r\n", "HTTP/1.1 400 Bad Request\r\n", false)]
    public void OtherRequestsGetAShortErrorAndAClose(string request, string statusLine, bool allow)
    {
        Start();
        string response = Get(Connect(), request);
        Assert.StartsWith(statusLine, response);
        Assert.Contains("\r\nConnection: close\r\n", response);
        Assert.Equal(allow, response.Contains("\r\nAllow: GET\r\n", StringComparison.Ordinal));
        Assert.DoesNotContain("test_up", response);
    }

    [Fact]
    public async Task AOneMegabyteRequestLineIsAnswered431OrResetAndNeverBuffered()
    {
        Start();
        Socket s = Connect();
        byte[] huge = Encoding.ASCII.GetBytes("GET /" + new string('a', 1 << 20) + " HTTP/1.1\r\n\r\n");
        // Sent from another thread: the server stops reading at 8 KiB, so this send may block until the reset.
        Task sending = Task.Run(() => { try { s.Send(huge); } catch (SocketException) { } catch (ObjectDisposedException) { } });
        string response = ReadToEnd(s, out bool reset);
        Assert.True(response.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", StringComparison.Ordinal) || (response.Length == 0 && reset),
            $"got {response.Length} bytes, reset {reset}: {response[..Math.Min(80, response.Length)]}");
        WaitUntil(() => Volatile.Read(ref _listener!._tooLarge) == 1 && _listener.Open == 0, "the connection is closed");
        s.Dispose();
        await sending.WaitAsync(WaitTimeout);
    }

    [Fact]
    public void APartialHeadIsClosedAtTheHeadDeadlineAndNotBefore()
    {
        MetricsListener listener = Start();
        Socket s = Connect();
        s.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n"u8.ToArray()); // no empty line: the head never ends
        WaitUntil(() => _clock.TimersCreated >= 1 && listener.Open == 1, "the head deadline is armed");
        _clock.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        Assert.Equal(0, Volatile.Read(ref listener._headTimeouts));
        Assert.Equal(1, listener.Open);
        _clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal("", ReadToEnd(s, out _));
        WaitUntil(() => Volatile.Read(ref listener._headTimeouts) == 1 && listener.Open == 0, "the slot is free again");
    }

    [Fact]
    public void AClientThatNeverReadsIsDroppedAtTheSendDeadline()
    {
        // 32 MB: far more than loopback's socket buffers hold, so the send blocks on the client's window.
        byte[] line = Encoding.ASCII.GetBytes(new string('x', 1000));
        MetricsListener listener = Start(w => { for (int i = 0; i < 32_000; i++) w.Family("test_filler"u8, "gauge"u8, line); }, maxBodyBytes: 64 << 20);
        Socket s = Connect(receiveBuffer: 4096);
        s.Send("GET /metrics HTTP/1.1\r\n\r\n"u8.ToArray());
        WaitUntil(() => _clock.TimersCreated >= 2, "the send deadline is armed");
        Assert.Equal(1, listener.Open);
        _clock.Advance(TimeSpan.FromSeconds(10));
        WaitUntil(() => Volatile.Read(ref listener._sendTimeouts) == 1 && listener.Open == 0, "the stuck send is dropped");
        Assert.Equal(0, Volatile.Read(ref listener._served));
    }

    [Fact]
    public void ConnectionsOverTheCapAreClosedAtAcceptAndTheSlotsComeBack()
    {
        MetricsListener listener = Start(maxConnections: 2);
        Socket first = Connect(), second = Connect();
        first.Send("GET /met"u8.ToArray());
        second.Send("G"u8.ToArray());
        WaitUntil(() => listener.Open == 2, "two slowloris clients hold both slots");
        Socket third = Connect();
        Assert.Equal("", ReadToEnd(third, out _));
        Assert.Equal(1, Volatile.Read(ref listener._refused));
        WaitUntil(() => _clock.TimersCreated >= 2, "both head deadlines are armed");
        _clock.Advance(TimeSpan.FromSeconds(10));
        WaitUntil(() => listener.Open == 0, "the deadline frees both slots");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", Get(Connect(), "GET /metrics HTTP/1.1\r\n\r\n"));
    }

    [Fact]
    public async Task StoppingClosesConnectionsStillOpen()
    {
        MetricsListener listener = Start();
        Socket s = Connect();
        s.Send("GET /"u8.ToArray());
        WaitUntil(() => listener.Open == 1, "the connection is open");
        await listener.DisposeAsync();
        Assert.Equal("", ReadToEnd(s, out _));
        WaitUntil(() => listener.Open == 0, "the connection is closed");
        Assert.Equal(0, Volatile.Read(ref listener._headTimeouts));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (Socket s in _clients) s.Dispose();
        if (_listener is not null) await _listener.DisposeAsync();
    }
}
