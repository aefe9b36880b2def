using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// An in-test SMTP or LMTP server on a loopback port, the next hop edgemta relays to, whose every reply a test
/// can script (<see cref="Rule"/>, see <see cref="HopStep"/>) and which records every connection and transaction.
/// Without a rule it behaves as a plain, well-behaved next hop: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SIZE
/// (RFC 2920, 6152, 2034, 1870), 250 to everything, a 354 only when a recipient was accepted (RFC 2920 §3.1).
/// Deliberately not: TLS, AUTH, CHUNKING, DSN (never advertised), nor any queueing: "delivered" means the hop
/// said 2xx and kept the bytes in memory.
/// Bounded: at most <see cref="MaxConnections"/> at once (more are accepted and closed, and counted), command
/// lines of 4 KiB and data lines of 1 MiB (longer: the connection is closed), 64 MiB of data per transaction,
/// 30 s of silence per read. A client fault closes its connection; nothing a client sends makes the hop throw.
/// </summary>
public sealed partial class ScriptedHop : IAsyncDisposable
{
    /// <summary>A rule's answer meaning: close the connection now, without a reply.</summary>
    public const string Drop = "<drop>";
    public const int MaxConnections = 100;
    private const int MaxCommandLine = 4096, MaxDataLine = 1 << 20, MaxData = 64 << 20;
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly List<Task> _sessions = [];
    private readonly List<Socket> _open = [];
    private readonly List<HopTransaction> _transactions = [];
    private readonly List<TimeSpan> _connectionTimes = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _connections, _transactionCount, _active;

    public bool Lmtp { get; }
    public int Port { get; }
    /// <summary>The name in the default greeting and EHLO reply (a loop test sets it to edgemta's --hostname).</summary>
    public string HostName { get; init; } = "hop.test";
    /// <summary>How much data arrives before <see cref="HopStep.MidData"/> is asked (64 KiB).</summary>
    public int MidDataBytes { get; init; } = 64 * 1024;
    /// <summary>Asked at every step; null (or a null answer) gives the default reply. Settable while running.</summary>
    public Func<HopEvent, string?>? Rule { get; set; }

    /// <summary>`relay` URL for edgemta: smtp://127.0.0.1:PORT or lmtp://127.0.0.1:PORT.</summary>
    public string Url => $"{(Lmtp ? "lmtp" : "smtp")}://127.0.0.1:{Port}";

    private ScriptedHop(bool lmtp, int port, int? receiveBuffer)
    {
        Lmtp = lmtp;
        _listener = new TcpListener(IPAddress.Loopback, port);
        // A small receive window set on the listener is inherited by accepted sockets (socket(7) SO_RCVBUF): a
        // sender of a big message then cannot have it all in flight, so a MidData drop really is before its dot.
        if (receiveBuffer is int bytes) _listener.Server.ReceiveBufferSize = bytes;
        _listener.Start(512);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Listens on 127.0.0.1:<paramref name="port"/> (0: any free port; a port from
    /// <see cref="LoopbackPort.Free"/> to come up where a client was refused before).</summary>
    public static ScriptedHop Start(bool lmtp = false, int port = 0, int? receiveBuffer = null, string hostName = "hop.test",
        Func<HopEvent, string?>? rule = null) =>
        new(lmtp, port, receiveBuffer) { HostName = hostName, Rule = rule };

    /// <summary>Connections accepted so far (those closed at once included).</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>When each connection was accepted, measured from the hop's start.</summary>
    public TimeSpan[] ConnectionTimes { get { lock (_transactions) return [.. _connectionTimes]; } }

    /// <summary>A snapshot of every transaction so far, in the order their MAIL commands arrived.</summary>
    public HopTransaction[] Transactions { get { lock (_transactions) return [.. _transactions]; } }

    /// <summary>The transactions that delivered to <paramref name="recipient"/> (a 2xx after the data).</summary>
    public HopTransaction[] DeliveriesTo(string recipient)
    {
        // Under the lock the sessions record with: a transaction's lists may be growing meanwhile.
        lock (_transactions) return _transactions.Where(t => t.DeliveredTo.Contains(recipient, StringComparer.OrdinalIgnoreCase)).ToArray();
    }

    /// <summary>Every delivered (transaction, recipient) pair.</summary>
    public int DeliveredCount
    {
        get { lock (_transactions) return _transactions.Sum(t => t.DeliveredTo.Count); }
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polled every 20 ms), at most <paramref name="bound"/>
    /// (10 s unless given); fails the test with every recorded transaction past it.</summary>
    public async Task WaitUntilAsync(Func<ScriptedHop, bool> condition, string what, TimeSpan? bound = null, Func<string>? context = null)
    {
        TimeSpan limit = bound ?? LogWait.Bound;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            lock (_transactions)
            {
                if (condition(this)) return;
            }
            if (clock.Elapsed > limit)
            {
                string seen;
                lock (_transactions) seen = string.Join('\n', _transactions.Select(t => t.ToString()));
                Assert.Fail($"The next hop did not see {what} within {limit.TotalSeconds} s. {Connections} connection(s); " +
                            $"transactions:\n{seen}\n{context?.Invoke()}");
            }
            await Task.Delay(20);
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;   // a connection reset before accept(2) returned
            }
            int index = Interlocked.Increment(ref _connections) - 1;
            lock (_transactions)
            {
                _connectionTimes.Add(_clock.Elapsed);
                if (_active >= MaxConnections)
                {
                    socket.Dispose();
                    continue;
                }
                _active++;
                _open.Add(socket);
                _sessions.Add(Task.Run(() => SessionAsync(socket, index)));
            }
        }
    }

    private async Task SessionAsync(Socket socket, int connection)
    {
        var session = new Session(this, socket, connection);
        try
        {
            await session.RunAsync(_stop.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or the hop is stopping: what was recorded stays recorded.
        }
        finally
        {
            session.Abandon();
            lock (_transactions)
            {
                _active--;
                _open.Remove(socket);
            }
            socket.Dispose();
        }
    }

    private HopTransaction BeginTransaction(int connection, string line, string sender)
    {
        lock (_transactions)
        {
            var t = new HopTransaction { Connection = connection, Index = _transactionCount++, Sender = sender, MailLine = line };
            _transactions.Add(t);
            return t;
        }
    }

    private void Record(Action change)
    {
        lock (_transactions) change();
    }

    private string? Ask(HopEvent e) => Rule?.Invoke(e);

    /// <summary>Stops listening, closes every connection, and waits (5 s at most) for the sessions to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Stop();
        Task[] sessions;
        lock (_transactions)
        {
            foreach (Socket s in _open) s.Dispose();
            sessions = [.. _sessions];
        }
        try
        {
            await Task.WhenAll([_acceptLoop, .. sessions]).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }

    private static string AddressOf(string argument)
    {
        // "FROM:<a@b> SIZE=1" or "TO:<c@d>": the path between the first '<' and its '>' (RFC 5321 §4.1.2), else
        // the first word after the colon.
        int open = argument.IndexOf('<'), close = open < 0 ? -1 : argument.IndexOf('>', open);
        if (open >= 0 && close > open) return argument[(open + 1)..close];
        int colon = argument.IndexOf(':');
        string rest = colon < 0 ? argument : argument[(colon + 1)..];
        return rest.Trim().Split(' ', 2)[0];
    }

    private static byte[] Reply(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\r\n") + "\r\n");
}
