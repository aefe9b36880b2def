// One connection of the metrics port: read a request head (bounded in size and time), send one response
// (bounded in time), close. The head buffer is MaxHeadBytes from ArrayPool; the body is rendered into a
// pooled buffer with room kept in front for the HTTP head, so a response is one contiguous send.
// After the response, whatever the client sent beyond the head and is already here is read and dropped
// (at most DrainBytes), so the close is a FIN the client can read the answer before, not a reset; a
// client still sending after that (a 1 MB request line) gets a reset, which is the bound doing its work.
using System.Buffers;
using System.Buffers.Text;
using System.Net.Sockets;

namespace EdgeMta.Metrics;

public sealed partial class MetricsListener
{
    private const int HeadRoom = 256;
    private const int DrainBytes = 64 * 1024;

    private async Task ServeAsync(Socket client)
    {
        byte[] head = ArrayPool<byte>.Shared.Rent(_options.MaxHeadBytes);
        try
        {
            HttpAnswer? answer;
            using (var deadline = new CancellationTokenSource(_options.HeadTimeout, _options.Clock))
            using (_stop.Token.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), deadline))
            {
                try
                {
                    answer = await ReadHeadAsync(client, head, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    if (!_stop.IsCancellationRequested) Interlocked.Increment(ref _headTimeouts);
                    return;
                }
            }
            if (answer is not { } a) return; // closed before a whole head
            if (a == HttpAnswer.HeadTooLarge) Interlocked.Increment(ref _tooLarge);
            using (var deadline = new CancellationTokenSource(_options.SendTimeout, _options.Clock))
            using (_stop.Token.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), deadline))
            {
                try
                {
                    await RespondAsync(client, a, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    if (!_stop.IsCancellationRequested) Interlocked.Increment(ref _sendTimeouts);
                    return;
                }
            }
            client.Shutdown(SocketShutdown.Send);
            Drain(client, head);
            Interlocked.Increment(ref _served);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The peer reset or left: nothing to answer.
        }
        finally
        {
            client.Dispose();
            ArrayPool<byte>.Shared.Return(head);
            Interlocked.Decrement(ref _open);
        }
    }

    /// <summary>The answer once the head is judged; null when the client closed first. Each pass reads at
    /// least one byte into a buffer of MaxHeadBytes, so the loop ends within that many passes.</summary>
    private async Task<HttpAnswer?> ReadHeadAsync(Socket client, byte[] head, CancellationToken token)
    {
        int max = _options.MaxHeadBytes;
        int filled = 0;
        while (filled < max)
        {
            int n = await client.ReceiveAsync(head.AsMemory(filled, max - filled), SocketFlags.None, token).ConfigureAwait(false);
            if (n == 0) return null;
            filled += n;
            if (HttpRequestHead.TryRead(head.AsSpan(0, filled), out HttpAnswer answer) == HeadStatus.Complete) return answer;
        }
        return HttpAnswer.HeadTooLarge; // RFC 6585 §5: 431 Request Header Fields Too Large
    }

    private async Task RespondAsync(Socket client, HttpAnswer answer, CancellationToken token)
    {
        using var body = new PooledBufferWriter(answer == HttpAnswer.Metrics ? 16 * 1024 : 512, _options.MaxBodyBytes + HeadRoom, start: HeadRoom);
        ReadOnlySpan<byte> contentType = "text/plain; charset=utf-8"u8;
        if (answer == HttpAnswer.Metrics)
        {
            try
            {
                _render(new PrometheusTextWriter(body));
                contentType = PrometheusTextWriter.ContentType;
            }
#pragma warning disable CA1031 // whatever the render throws (a body over MaxBodyBytes, a spool gauge's I/O error) is a 500, not a lost task
            catch (Exception)
#pragma warning restore CA1031
            {
                answer = HttpAnswer.ServerError;
                body.Rewind(HeadRoom);
            }
        }
        if (answer != HttpAnswer.Metrics)
        {
            body.Write(Status(answer));
            body.Write("\n"u8);
        }
        int start = WriteHead(body.Array, answer, contentType, body.Written - HeadRoom);
        await SendAllAsync(client, body.Array.AsMemory(start, body.Written - start), token).ConfigureAwait(false);
    }

    private static async Task SendAllAsync(Socket client, ReadOnlyMemory<byte> data, CancellationToken token)
    {
        // Each pass sends at least one byte (or throws): bounded by the length.
        while (!data.IsEmpty)
        {
            int sent = await client.SendAsync(data, SocketFlags.None, token).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <summary>Writes the status line and fields so they end at <see cref="HeadRoom"/>, where the body
    /// starts; returns where the response starts.</summary>
    private static int WriteHead(byte[] buffer, HttpAnswer answer, ReadOnlySpan<byte> contentType, int bodyLength)
    {
        Span<byte> head = stackalloc byte[HeadRoom];
        int n = 0;
        Append(head, ref n, "HTTP/1.1 "u8);
        Append(head, ref n, Status(answer));
        Append(head, ref n, "\r\nContent-Type: "u8);
        Append(head, ref n, contentType);
        Append(head, ref n, "\r\nContent-Length: "u8);
        Utf8Formatter.TryFormat(bodyLength, head[n..], out int digits);
        n += digits;
        if (answer == HttpAnswer.MethodNotAllowed) Append(head, ref n, "\r\nAllow: GET"u8); // RFC 9110 §15.5.6
        Append(head, ref n, "\r\nConnection: close\r\n\r\n"u8);
        int start = HeadRoom - n;
        head[..n].CopyTo(buffer.AsSpan(start));
        return start;
    }

    private static void Append(Span<byte> head, ref int n, ReadOnlySpan<byte> text)
    {
        text.CopyTo(head[n..]);
        n += text.Length;
    }

    private static ReadOnlySpan<byte> Status(HttpAnswer answer) => answer switch
    {
        HttpAnswer.Metrics => "200 OK"u8,
        HttpAnswer.NotFound => "404 Not Found"u8,
        HttpAnswer.MethodNotAllowed => "405 Method Not Allowed"u8,
        HttpAnswer.HeadTooLarge => "431 Request Header Fields Too Large"u8,
        HttpAnswer.ServerError => "500 Internal Server Error"u8,
        _ => "400 Bad Request"u8,
    };

    /// <summary>Reads and drops what the client already sent past the head, without waiting for more.</summary>
    private static void Drain(Socket client, byte[] scratch)
    {
        int left = DrainBytes;
        while (left > 0 && client.Available > 0)
        {
            int n = client.Receive(scratch, 0, Math.Min(scratch.Length, left), SocketFlags.None);
            if (n <= 0) return;
            left -= n;
        }
    }
}
