using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>One SMTP reply (RFC 5321 §4.2): a code and its text lines, e.g. 250 ["2.0.0 OK queued as X"].</summary>
public sealed record SmtpReply(int Code, IReadOnlyList<string> Lines)
{
    /// <summary>The text of the last line, after "NNN ".</summary>
    public string Text => Lines.Count > 0 ? Lines[^1] : "";

    /// <summary>The RFC 3463 enhanced status code the reply starts with ("5.6.0"), or "".</summary>
    public string Enhanced
    {
        get
        {
            string first = Lines.Count > 0 ? Lines[0] : "";
            int space = first.IndexOf(' ');
            string token = space < 0 ? first : first[..space];
            return token.Count(c => c == '.') == 2 && token.Length >= 5 && char.IsAsciiDigit(token[0]) ? token : "";
        }
    }

    /// <summary>The id in `250 2.0.0 OK queued as &lt;id&gt;`, or null.</summary>
    public string? QueueId
    {
        get
        {
            const string marker = "queued as ";
            int i = Text.IndexOf(marker, StringComparison.OrdinalIgnoreCase);
            return Code == 250 && i >= 0 ? Text[(i + marker.Length)..].Trim().Trim('<', '>') : null;
        }
    }

    public override string ToString() =>
        string.Join("\n", Lines.Select((l, i) => $"{Code}{(i == Lines.Count - 1 ? ' ' : '-')}{l}"));
}

/// <summary>
/// A raw SMTP client over a loopback socket, for transcripts no well-behaved client would send.
/// Every read has a deadline (<see cref="ReadTimeout"/> unless given): a silent server fails the test
/// instead of hanging it. Replies are parsed per RFC 5321 §4.2.1: "NNN-text" continues, "NNN text" ends.
/// A transcript of both directions is kept for assertion messages.
/// </summary>
public sealed class SmtpConnection : IAsyncDisposable
{
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);
    private const int MaxReplyLine = 64 * 1024;

    private readonly Socket _socket;
    private Stream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;
    private string _expecting = "";
    private TimeSpan _deadline;
    private readonly StringBuilder _transcript = new();

    public Socket Socket => _socket;

    /// <summary>True once the server closed its side (EOF) or reset the connection.</summary>
    public bool Closed { get; private set; }

    public string Transcript { get { lock (_transcript) return _transcript.ToString(); } }

    private SmtpConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
    }

    /// <summary>True after <see cref="StartTlsAsync"/>.</summary>
    public bool IsTls => _stream is SslStream;

    /// <summary>The certificate the server presented in the handshake (null before <see cref="StartTlsAsync"/>).</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate? RemoteCertificate => (_stream as SslStream)?.RemoteCertificate;

    /// <summary>
    /// Runs the TLS handshake (RFC 3207) after the server's 220 to STARTTLS. Fails if the server sent any
    /// plaintext after that 220: such bytes could only be injected. Accepts any certificate (test servers
    /// are self-signed).
    /// </summary>
    public async Task StartTlsAsync(string targetHost = "localhost")
    {
        if (!(_start == _end)) Assert.Fail($"The server sent plaintext after its 220 to STARTTLS\n{Transcript}");
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        using var cts = new CancellationTokenSource(ReadTimeout);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, cts.Token);
        }
        catch (Exception e) when (e is IOException or AuthenticationException or OperationCanceledException)
        {
            Assert.Fail($"The TLS handshake after STARTTLS failed: {e.Message}\n{Transcript}");
        }
        Note("C: ", $"<TLS established: {ssl.SslProtocol}>");
        _stream = ssl;
    }

    /// <summary>A session over a socket the test connected itself (e.g. before the server was started).</summary>
    public static SmtpConnection Over(Socket connected) => new(connected);

    public static async Task<SmtpConnection> ConnectAsync(int port, TimeSpan? timeout = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = new CancellationTokenSource(timeout ?? ReadTimeout);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
            socket.Dispose();
            Assert.Fail($"Cannot connect to 127.0.0.1:{port}: {e.Message}");
        }
        return new SmtpConnection(socket);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>Writes all of <paramref name="data"/> (bounded by <paramref name="timeout"/>, default 10 s).</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> data, TimeSpan? timeout = null)
    {
        Note("C: ", data.Length <= 2048 ? Encoding.UTF8.GetString(data.Span) : $"<{data.Length} bytes>");
        using var cts = new CancellationTokenSource(timeout ?? ReadTimeout);
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, 256 * 1024);
            await _stream.WriteAsync(data[..n], cts.Token);
            data = data[n..];
        }
    }

    /// <summary>Sends one command line (CRLF added) and reads its reply.</summary>
    public async Task<SmtpReply> CommandAsync(string line)
    {
        await SendAsync(line + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>Sends a command and asserts the reply code (and enhanced code, when given).</summary>
    public async Task<SmtpReply> CommandAsync(string line, int expectedCode, string? enhanced = null)
    {
        await SendAsync(line + "\r\n");
        return await ExpectAsync(expectedCode, enhanced, line);
    }

    public async Task<SmtpReply> ExpectAsync(int code, string? enhanced = null, string? after = null, TimeSpan? timeout = null)
    {
        after = after is null ? null : Visible(after);
        SmtpReply? reply = await TryReadReplyAsync(timeout, $"{code}{(enhanced is null ? "" : " " + enhanced)}{(after is null ? "" : " to " + after)}");
        if (!(reply is not null)) Assert.Fail($"Expected {code}{(after is null ? "" : " to " + after)}, the server closed the connection.\n{Transcript}");
        if (!(reply.Code == code)) Assert.Fail($"Expected {code}{(after is null ? "" : " to " + after)}, got `{reply}`.\n{Transcript}");
        if (enhanced is not null)
        {
            if (!(reply.Enhanced == enhanced)) Assert.Fail($"Expected enhanced status {enhanced}, got `{reply}`.\n{Transcript}");
        }
        return reply;
    }

    /// <summary>Reads one whole (possibly multi-line) reply; fails if the connection ends first.</summary>
    public async Task<SmtpReply> ReadReplyAsync(TimeSpan? timeout = null)
    {
        SmtpReply? reply = await TryReadReplyAsync(timeout);
        if (!(reply is not null)) Assert.Fail($"Expected a reply, the server closed the connection.\n{Transcript}");
        return reply;
    }

    /// <summary>One whole reply, or null when the server closes (or resets) first. Fails on a malformed line or the deadline.</summary>
    /// <summary>One line as received, CRLF removed, or null at the end of the stream: for what is not a whole
    /// reply, such as the first line of a greeting whose last line has not come yet.</summary>
    public async Task<string?> ReadRawLineAsync(TimeSpan timeout)
    {
        _expecting = " (one raw line)";
        _deadline = timeout;
        using var cts = new CancellationTokenSource(timeout);
        return await ReadLineAsync(cts.Token);
    }

    public async Task<SmtpReply?> TryReadReplyAsync(TimeSpan? timeout = null, string? expecting = null)
    {
        _expecting = expecting is null ? "" : $" (expecting {expecting})";
        _deadline = timeout ?? ReadTimeout;
        using var cts = new CancellationTokenSource(_deadline);
        var lines = new List<string>();
        int code = 0;
        while (true)
        {
            string? line = await ReadLineAsync(cts.Token);
            if (line is null)
            {
                if (!(lines.Count == 0)) Assert.Fail($"The connection ended inside a multi-line reply.\n{Transcript}");
                return null;
            }
            if (!(line.Length >= 3 && int.TryParse(line.AsSpan(0, 3), out int c) && (line.Length == 3 || line[3] is ' ' or '-')))
            {
                Assert.Fail($"Malformed reply line `{line}` (RFC 5321 §4.2).\n{Transcript}");
            }
            c = int.Parse(line.AsSpan(0, 3));
            if (!(code == 0 || c == code)) Assert.Fail($"Multi-line reply changed its code: `{line}`.\n{Transcript}");
            code = c;
            lines.Add(line.Length > 4 ? line[4..] : "");
            if (line.Length == 3 || line[3] == ' ') return new SmtpReply(code, lines);
        }
    }

    /// <summary>
    /// Reads replies until the server closes the connection; fails if it has not closed by the deadline.
    /// A reset counts as a close (a server may close with unread client bytes pending, which makes TCP send RST).
    /// </summary>
    public async Task<List<SmtpReply>> ReadUntilClosedAsync(TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? ReadTimeout);
        var replies = new List<SmtpReply>();
        while (true)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (!(left > TimeSpan.Zero)) Assert.Fail($"The server did not close the connection in time.\n{Transcript}");
            SmtpReply? r = await TryReadReplyAsync(left, "the server to close the connection");
            if (r is null) return replies;
            replies.Add(r);
        }
    }

    /// <summary>A CRLF-terminated line without its CRLF; null on EOF or reset.</summary>
    private async Task<string?> ReadLineAsync(CancellationToken token)
    {
        while (true)
        {
            int lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (lf >= 0)
            {
                int stop = lf > _start && _buffer[lf - 1] == '\r' ? lf - 1 : lf;
                string line = Encoding.UTF8.GetString(_buffer, _start, stop - _start);
                if (!(stop == lf - 1)) Assert.Fail($"Reply line `{line}` ends in a bare LF, not CRLF (RFC 5321 §2.3.8).\n{Transcript}");
                _start = lf + 1;
                Note("S: ", line);
                return line;
            }
            if (Closed) return null;
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (!(_end < Math.Min(_buffer.Length, MaxReplyLine))) Assert.Fail($"A reply line longer than {MaxReplyLine} bytes.\n{Transcript}");
            int n;
            try
            {
                n = await _stream.ReadAsync(_buffer.AsMemory(_end), token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"No complete reply from the server within {_deadline.TotalSeconds:0.#} s{_expecting}.\n{Transcript}");
                throw;
            }
            catch (Exception e) when (IsReset(e))
            {
                Note("S: ", "<connection reset>");
                n = 0;
            }
            if (n == 0)
            {
                Closed = true;
                if (_end > _start) Note("S: ", $"<close after {_end - _start} bytes without CRLF>");
                else Note("S: ", "<close>");
                if (_end > _start) Assert.Fail($"The server closed in the middle of a reply line.\n{Transcript}");
                return null;
            }
            _end += n;
        }
    }

    private static bool IsReset(Exception e) =>
        (e as SocketException ?? e.InnerException as SocketException)?.SocketErrorCode
            is SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown;

    /// <summary>True when the server has closed (or resets) within <paramref name="timeout"/> without sending anything more.</summary>
    public async Task<bool> IsClosedAsync(TimeSpan timeout)
    {
        try
        {
            return await TryReadReplyAsync(timeout) is null;
        }
        catch (Xunit.Sdk.XunitException)
        {
            return false;
        }
    }

    private void Note(string who, string text)
    {
        lock (_transcript)
        {
            if (_transcript.Length > 64 * 1024) return;
            foreach (string line in text.Split("\r\n"))
            {
                if (line.Length == 0) continue;
                string l = line.Length > 300 ? line[..300] + $"...<{line.Length} chars>" : line;
                _transcript.Append(who).AppendLine(Visible(l));
            }
        }
    }

    /// <summary>Control characters spelled out (\0, \r, \n, \xNN), so a transcript shows what was really sent.</summary>
    public static string Visible(string text)
    {
        var visible = new StringBuilder(text.Length);
        foreach (char ch in text) visible.Append(ch switch { '\0' => "\\0", '\r' => "\\r", '\n' => "\\n", < ' ' => $"\\x{(int)ch:x2}", _ => ch.ToString() });
        return visible.ToString();
    }

    /// <summary>Closes abruptly with RST (SO_LINGER 0), like a client that vanishes.</summary>
    public void Abort()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    public async ValueTask DisposeAsync()
    {
        try { await _stream.DisposeAsync(); } catch (IOException) { } catch (SocketException) { }
        _socket.Dispose();
    }
}
