// control.sock (QueueControl.cs wire form, ControlServer.cs): a request line in, "exit N" and the output out,
// bounded in size and time, mode 0600, a stale socket file taken over and ours removed at stop. The control
// behind it is a fake that records what it was asked.
using System.Net.Sockets;
using System.Text;
using EdgeMta.Delivery;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

internal sealed class ShortTempDir : IDisposable
{
    // Short on purpose: a Unix socket path must fit sockaddr_un's 108 bytes.
    public string Path { get; } = System.IO.Path.Combine("/tmp", "emq-" + Guid.NewGuid().ToString("N")[..10]);
    public ShortTempDir() => Directory.CreateDirectory(Path);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

public class ControlServerTests
{
    private sealed class FakeControl : IQueueControl
    {
        public List<QueueRequest> Requests { get; } = [];
        public Exception? Throw { get; set; }

        public ValueTask<QueueResult> RunAsync(QueueRequest request, CancellationToken cancel)
        {
            lock (Requests) Requests.Add(request);
            if (Throw is not null) throw Throw;
            return ValueTask.FromResult(new QueueResult(request.Ids.Count > 0 ? 1 : 0, $"{QueueRequestLine.Name(request.Verb)} {string.Join(',', request.Ids)} json={request.Json}\n"));
        }
    }

    private static async Task<string> Raw(string socketPath, byte[] send, bool halfClose = true)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        await s.SendAsync(send, SocketFlags.None);
        if (halfClose) s.Shutdown(SocketShutdown.Send);
        return await ReadToEnd(s);
    }

    private static async Task<string> ReadToEnd(Socket s)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            int n = await s.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            if (n == 0) return Encoding.UTF8.GetString(all.ToArray());
            all.Write(buffer, 0, n);
        }
    }

    [Fact]
    public async Task ARequestGoesToTheControlAndItsAnswerComesBack()
    {
        using var dir = new ShortTempDir();
        var control = new FakeControl();
        await using (var server = new ControlServer(dir.Path, control))
        {
            server.Start();
            var request = new QueueRequest(QueueVerb.Show, Json: true, All: false, ["Q1", "Q2"]);
            var (served, result) = await QueueClient.TryRunAsync(dir.Path, request);
            Assert.True(served);
            Assert.Equal(new QueueResult(1, "show Q1,Q2 json=True\n"), result);
            var seen = Assert.Single(control.Requests);
            Assert.Equal((QueueVerb.Show, true, false), (seen.Verb, seen.Json, seen.All));
            Assert.Equal(["Q1", "Q2"], seen.Ids);
        }
    }

    [Fact]
    public async Task ABadRequestIsExitTwoAndALineAndNeverReachesTheControl()
    {
        using var dir = new ShortTempDir();
        var control = new FakeControl();
        await using var server = new ControlServer(dir.Path, control);
        server.Start();
        string answer = await Raw(server.SocketPath, "purge --all\n"u8.ToArray());
        Assert.StartsWith("exit 2\nunknown queue command 'purge'", answer);
        answer = await Raw(server.SocketPath, "delete\n"u8.ToArray());
        Assert.StartsWith("exit 2\nqueue delete needs ids or --all", answer);
        Assert.Empty(control.Requests);
    }

    [Fact]
    public async Task AnOversizedRequestIsRefusedAfterFourKibibytes()
    {
        using var dir = new ShortTempDir();
        var control = new FakeControl();
        await using var server = new ControlServer(dir.Path, control);
        server.Start();
        // 4 KiB with no LF: the most a request may be, and still no line: refused, never buffered further.
        byte[] big = Encoding.ASCII.GetBytes("show " + new string('Q', 64 << 10));
        string answer = await Raw(server.SocketPath, big[..QueueRequestLine.MaxLineBytes], halfClose: false);
        Assert.StartsWith("exit 2\na request is at most 4096 bytes", answer);
        Assert.Empty(control.Requests);
    }

    [Fact]
    public async Task ALineWithoutItsLfIsTakenAtHalfClose()
    {
        using var dir = new ShortTempDir();
        var control = new FakeControl();
        await using var server = new ControlServer(dir.Path, control);
        server.Start();
        Assert.Equal("exit 0\nlist  json=False\n", await Raw(server.SocketPath, "list"u8.ToArray()));
    }

    [Fact]
    public async Task AClientThatSendsNoLineIsAnsweredAndClosedAtTheDeadline()
    {
        using var dir = new ShortTempDir();
        var clock = new FakeClock();
        var control = new FakeControl();
        await using var server = new ControlServer(dir.Path, control, clock);
        server.Start();
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(server.SocketPath));
        await s.SendAsync("li"u8.ToArray(), SocketFlags.None);
        // The server arms its 5 s deadline when it starts reading: wait (bounded) until it has, then pass it.
        for (int i = 0; i < 500 && clock.TimersCreated == 0; i++) await Task.Delay(10);
        Assert.True(clock.TimersCreated > 0, "the server started reading the request");
        clock.Advance(ControlServer.RequestDeadline - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, s.Available);   // not yet: the deadline has not passed
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("exit 2\nno request line within 5 s\n", await ReadToEnd(s));
        Assert.Empty(control.Requests);
    }

    [Fact]
    public async Task MoreThanEightConnectionsAtOnceAreTurnedAwayAndTheServerGoesOn()
    {
        using var dir = new ShortTempDir();
        var clock = new FakeClock();
        var control = new FakeControl();
        await using var server = new ControlServer(dir.Path, control, clock);
        server.Start();
        var idle = new List<Socket>();
        try
        {
            for (int i = 0; i < ControlServer.MaxConnections; i++)
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                idle.Add(s);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(server.SocketPath));
            }
            // Each connection arms its read deadline once the server has taken it: wait (bounded) for all eight.
            for (int i = 0; i < 500 && clock.TimersCreated < ControlServer.MaxConnections; i++) await Task.Delay(10);
            Assert.Equal(ControlServer.MaxConnections, clock.TimersCreated);
            // The ninth is answered at once, before it sends anything.
            using (var ninth = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                await ninth.ConnectAsync(new UnixDomainSocketEndPoint(server.SocketPath));
                Assert.StartsWith("exit 2\ntoo many control connections", await ReadToEnd(ninth));
            }
            clock.Advance(ControlServer.RequestDeadline);   // the idle ones time out and are closed
            foreach (var s in idle) Assert.StartsWith("exit 2\nno request line", await ReadToEnd(s));
            var (served, result) = await QueueClient.TryRunAsync(dir.Path, new QueueRequest(QueueVerb.List, false, false, []));
            Assert.True(served);
            Assert.Equal(0, result.ExitCode);
        }
        finally
        {
            foreach (var s in idle) s.Dispose();
        }
    }

    [Fact]
    public async Task TheSocketIsModeSixHundredAndRemovedAtStop()
    {
        using var dir = new ShortTempDir();
        var server = new ControlServer(dir.Path, new FakeControl());
        server.Start();
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(server.SocketPath));
        await server.DisposeAsync();
        Assert.False(File.Exists(server.SocketPath));
        var (served, _) = await QueueClient.TryRunAsync(dir.Path, new QueueRequest(QueueVerb.List, false, false, []));
        Assert.False(served);
    }

    [Fact]
    public async Task AStaleSocketFileMeansNoServerAndIsTakenOverAtStart()
    {
        using var dir = new ShortTempDir();
        string path = Path.Combine(dir.Path, ControlServer.SocketName);
        // A server killed without its stop leaves its socket file with nothing listening. (A .NET socket removes
        // its own file when disposed, so the leftover is made as a plain file: connect is refused the same way.)
        File.WriteAllText(path, "");
        var list = new QueueRequest(QueueVerb.List, false, false, []);
        Assert.False((await QueueClient.TryRunAsync(dir.Path, list)).Served);

        var control = new FakeControl();
        await using var server = new ControlServer(dir.Path, control);
        server.Start();
        var (served, result) = await QueueClient.TryRunAsync(dir.Path, list);
        Assert.True(served);
        Assert.Equal(0, result.ExitCode);
        Assert.Single(control.Requests);
    }

    [Fact]
    public async Task AControlThatThrowsIsExitTwoWithItsMessageAndTheServerGoesOn()
    {
        using var dir = new ShortTempDir();
        var control = new FakeControl { Throw = new InvalidOperationException("journal closed") };
        await using var server = new ControlServer(dir.Path, control);
        server.Start();
        var request = new QueueRequest(QueueVerb.Hold, false, true, []);
        Assert.Equal(new QueueResult(2, "error: journal closed\n"), (await QueueClient.TryRunAsync(dir.Path, request)).Result);
        control.Throw = null;
        Assert.Equal(0, (await QueueClient.TryRunAsync(dir.Path, request)).Result.ExitCode);
    }

    [Fact]
    public void APathTooLongForSockaddrUnIsAClearError()
    {
        var server = new ControlServer("/tmp/" + new string('d', 120), new FakeControl());
        var e = Assert.Throws<IOException>(server.Start);
        Assert.Contains("longer than 107 bytes", e.Message);
    }

    [Theory]
    [InlineData("exit 0\nok\n", 0, "ok\n")]
    [InlineData("exit 1\n", 1, "")]
    [InlineData("", 2, "error: the server closed the control socket without an answer\n")]
    [InlineData("exit x\n", 2, "error: the server's answer does not start with \"exit N\"\n")]
    [InlineData("exit 10\n", 2, "error: the server's answer does not start with \"exit N\"\n")]
    public void AnswersDecodeOrSayTheyDoNot(string answer, int code, string output)
    {
        Assert.Equal(new QueueResult(code, output), QueueClient.Decode(Encoding.ASCII.GetBytes(answer)));
    }
}
