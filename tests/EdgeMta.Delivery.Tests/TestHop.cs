// A scripted next hop for the agent's tests: a small SMTP (or LMTP) server on a loopback port that records every
// transaction and answers as the test says. Line-based, one task per connection (a test peer, not the product),
// every wait bounded by the test's cancellation.
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Delivery.Tests;

internal sealed class TestHop : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = new();
    private readonly Task _accepting;
    private int _connectionCount;

    public TestHop(bool lmtp = false)
    {
        Lmtp = lmtp;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public bool Lmtp { get; }
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string Url => $"{(Lmtp ? "lmtp" : "smtp")}://127.0.0.1:{Port}";
    public int Connections => Volatile.Read(ref _connectionCount);

    /// <summary>The greeting line (without CRLF).</summary>
    public string Greeting { get; set; } = "220 hop.example ESMTP test";
    public string Extensions { get; set; } = "PIPELINING\r\n250-8BITMIME\r\n250-SIZE 100000000\r\n250 ENHANCEDSTATUSCODES";
    /// <summary>The reply to RCPT for (connection number from 1, recipient address); null: 250.</summary>
    public Func<int, string, string?> RcptReply { get; set; } = (_, _) => null;
    /// <summary>The reply after the data (connection, recipient for LMTP or "" for SMTP); null: 250; "DROP": close
    /// without a reply (after the final dot).</summary>
    public Func<int, string, string?> DataReply { get; set; } = (_, _) => null;

    public sealed record Transaction(string From, List<string> To, byte[] Data, int Connection);
    private readonly List<Transaction> _received = new();
    public List<Transaction> Received { get { lock (_received) return [.. _received]; } }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            int n = Interlocked.Increment(ref _connectionCount);
            lock (_connections) _connections.Add(Task.Run(() => ServeAsync(client, n)));
        }
    }

    private async Task ServeAsync(TcpClient client, int n)
    {
        using var c = client;
        var stream = c.GetStream();
        var reader = new StreamReader(stream, Encoding.Latin1);
        async Task Say(string s) => await stream.WriteAsync(Encoding.Latin1.GetBytes(s + "\r\n"), _stop.Token);
        try
        {
            await Say(Greeting);
            if (!Greeting.StartsWith("220", StringComparison.Ordinal)) return;
            string from = "";
            var to = new List<string>();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                string verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO" or "LHLO": await Say("250-hop.example\r\n250-" + Extensions); break;
                    case "HELO": await Say("250 hop.example"); break;
                    case "MAIL": from = Between(line); to.Clear(); await Say("250 2.1.0 ok"); break;
                    case "RCPT":
                        string rcpt = Between(line);
                        string? reply = RcptReply(n, rcpt);
                        if (reply is null) to.Add(rcpt);
                        await Say(reply ?? "250 2.1.5 ok");
                        break;
                    case "DATA":
                        if (to.Count == 0) { await Say("554 5.5.1 no valid recipients"); break; }
                        await Say("354 go ahead");
                        var data = new MemoryStream();
                        while (await reader.ReadLineAsync(_stop.Token) is { } d && d != ".")
                        {
                            var bytes = Encoding.Latin1.GetBytes((d.StartsWith('.') ? d[1..] : d) + "\r\n");
                            data.Write(bytes);
                        }
                        lock (_received) _received.Add(new Transaction(from, [.. to], data.ToArray(), n));
                        if (Lmtp)
                        {
                            foreach (string r in to)
                            {
                                string? lr = DataReply(n, r);
                                if (lr == "DROP") return;
                                await Say(lr ?? "250 2.0.0 delivered");
                            }
                        }
                        else
                        {
                            string? dr = DataReply(n, "");
                            if (dr == "DROP") return;
                            await Say(dr ?? "250 2.0.0 queued as X");
                        }
                        break;
                    case "RSET": from = ""; to.Clear(); await Say("250 2.0.0 ok"); break;
                    case "NOOP": await Say("250 2.0.0 ok"); break;
                    case "QUIT": await Say("221 2.0.0 bye"); return;
                    default: await Say("502 5.5.2 unknown"); break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static string Between(string line)
    {
        int a = line.IndexOf('<'), b = line.IndexOf('>');
        return a >= 0 && b > a ? line[(a + 1)..b] : "";
    }

    /// <summary>Waits until <paramref name="condition"/> holds, at most 10 s; false when it never did.</summary>
    public static async Task<bool> Until(Func<bool> condition, int timeoutMs = 10_000)
    {
        for (int waited = 0; waited < timeoutMs; waited += 10)
        {
            if (condition()) return true;
            await Task.Delay(10);
        }
        return condition();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        Task[] all;
        lock (_connections) all = [.. _connections];
        await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
    }
}
