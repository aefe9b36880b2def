// A scripted stand-in for rspamd's normal worker on a loopback port: it reads each `POST /checkv2` (head and a
// Content-Length body) and answers with the reply the test set, or says nothing (a slow rspamd), keeping every
// request it got so a test can check the headers and the exact octets sent. Each connection is served on its own
// task with a bounded read; Dispose stops the listener and closes what is open.
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Server.Tests;

internal sealed class FakeRspamd : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _open = [];

    public FakeRspamd()
    {
        _listener.Start();
        _ = AcceptLoop();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The whole HTTP reply to send; null: read the request and answer nothing (a slow rspamd).</summary>
    public string? Reply { get; set; }

    /// <summary>The requests received: head (text) and body (octets).</summary>
    public List<(string Head, byte[] Body)> Requests { get; } = [];

    public static string Json(string json) =>
        $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}";

    public static string Verdict(string action, double score = 1.5, double required = 15, string? message = null)
    {
        string json = FormattableString.Invariant($"{{\"is_skipped\":false,\"score\":{score},\"required_score\":{required},\"action\":\"{action}\",")
            + "\"symbols\":{\"X\":{\"name\":\"X\",\"score\":1.5}}"
            + (message is null ? "}" : ",\"messages\":{\"smtp_message\":\"" + message + "\"}}");
        return Json(json);
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            lock (_open) _open.Add(socket);
            _ = Serve(socket);
        }
    }

    private async Task Serve(Socket socket)
    {
        try
        {
            var received = new MemoryStream();
            var buffer = new byte[16 * 1024];
            int headEnd = -1;
            long need = long.MaxValue;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            while (received.Length < need)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                if (n == 0) return;
                received.Write(buffer, 0, n);
                if (headEnd < 0)
                {
                    headEnd = received.ToArray().AsSpan().IndexOf("\r\n\r\n"u8);
                    if (headEnd >= 0)
                    {
                        string head = Encoding.ASCII.GetString(received.ToArray(), 0, headEnd);
                        string length = head.Split("\r\n").First(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))[15..].Trim();
                        need = headEnd + 4 + long.Parse(length, System.Globalization.CultureInfo.InvariantCulture);
                    }
                }
            }
            byte[] all = received.ToArray();
            lock (Requests) Requests.Add((Encoding.ASCII.GetString(all, 0, headEnd), all[(headEnd + 4)..]));
            if (Reply is { } reply)
            {
                await socket.SendAsync(Encoding.UTF8.GetBytes(reply), SocketFlags.None, timeout.Token);
                socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // the test is over, or the client went away
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_open)
        {
            foreach (Socket s in _open) s.Dispose();
        }
    }
}
