// The command line's end of control.sock (wire form in QueueControl.cs): connects to DIR/control.sock, writes the
// request line, half-closes, reads "exit N" LF and the output to the end.
// No server is an answer, not an error: when the socket file is absent, or nothing listens on it (a server
// killed without its stop leaves the file: ECONNREFUSED), TryRunAsync says false and the caller works offline
// (OfflineQueue) under the spool's lock, which a live server would hold.
// Bounds: the answer is read within Deadline (5 minutes: a bounce of a large queue is journalled first) and at
// most MaxAnswerBytes; a reply that does not start "exit N" LF is an error with exit 2.
// How it fails: never throws for a socket problem; a server that goes away mid-answer gives exit 2 and a line.
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.Delivery;

public static class QueueClient
{
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);
    public const int MaxAnswerBytes = 256 << 20;

    /// <summary>Runs <paramref name="request"/> on the server of <paramref name="spoolDirectory"/>; false when no
    /// server listens there (then <paramref name="result"/> is default).</summary>
    public static async Task<(bool Served, QueueResult Result)> TryRunAsync(string spoolDirectory, QueueRequest request,
        TimeProvider? time = null, CancellationToken cancel = default)
    {
        string path = Path.Combine(Path.GetFullPath(spoolDirectory), ControlServer.SocketName);
        if (!File.Exists(path)) return (false, default);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var deadline = new CancellationTokenSource(Deadline, time ?? TimeProvider.System);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel, deadline.Token);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), linked.Token).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return (false, default);   // a stale socket file: no server
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            return (true, new QueueResult(2, $"error: {path}: permission denied (the server's user may use it)\n"));
        }
        catch (Exception e) when (e is SocketException or ArgumentOutOfRangeException)
        {
            // ArgumentOutOfRange: a path longer than sockaddr_un holds; the server could not have bound it either.
            return (false, default);
        }
        try
        {
            byte[] line = Encoding.ASCII.GetBytes(QueueRequestLine.Format(request));
            try
            {
                int sent = 0;
                while (sent < line.Length) sent += await socket.SendAsync(line.AsMemory(sent), SocketFlags.None, linked.Token).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.Shutdown or SocketError.ConnectionReset)
            {
                // The server answered without reading (too many connections) and closed: its answer is still
                // there to read.
            }
            byte[] answer = await ReadAllAsync(socket, linked.Token).ConfigureAwait(false);
            return (true, Decode(answer));
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return (true, new QueueResult(2, $"error: the server did not answer within {Deadline.TotalMinutes:0} minutes\n"));
        }
        catch (SocketException e)
        {
            return (true, new QueueResult(2, $"error: control socket: {e.Message}\n"));
        }
        catch (InvalidDataException e)
        {
            return (true, new QueueResult(2, $"error: {e.Message}\n"));
        }
    }

    private static async Task<byte[]> ReadAllAsync(Socket socket, CancellationToken cancel)
    {
        var all = new MemoryStream();
        byte[] buffer = new byte[16 << 10];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel).ConfigureAwait(false);
            if (n == 0) return all.ToArray();
            if (all.Length + n > MaxAnswerBytes) throw new InvalidDataException($"the server's answer is over {MaxAnswerBytes >> 20} MiB");
            all.Write(buffer, 0, n);
        }
    }

    /// <summary>"exit N" LF then the output; anything else is exit 2 with a line saying so.</summary>
    public static QueueResult Decode(ReadOnlySpan<byte> answer)
    {
        int lf = answer.IndexOf((byte)'\n');
        ReadOnlySpan<byte> head = lf < 0 ? answer : answer[..lf];
        if (lf < 0 || !head.StartsWith("exit "u8) || head.Length != 6 || head[5] is < (byte)'0' or > (byte)'9')
            return new QueueResult(2, lf < 0 && answer.IsEmpty ? "error: the server closed the control socket without an answer\n"
                : "error: the server's answer does not start with \"exit N\"\n");
        return new QueueResult(head[5] - '0', Encoding.UTF8.GetString(answer[(lf + 1)..]));
    }
}
