using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeMta.LoadTests.Tests;

/// <summary>
/// A scripted SMTP server on loopback for tests: answers each command line with what
/// <c>respond</c> returns (null closes the connection), reads message data after a 354 up to the
/// dot, then answers with <c>afterDot</c> (null closes instead). Bounded: it stops on Dispose.
/// </summary>
sealed class FakeSmtpServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly Func<string, string?> _respond;
    readonly string? _afterDot;

    public FakeSmtpServer(Func<string, string?> respond, string? afterDot)
    {
        _respond = respond;
        _afterDot = afterDot;
        _listener.Start();
        _ = AcceptLoop();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>The usual answers: 220, 250 to EHLO/MAIL/RCPT/RSET, 354 to DATA, 221 to QUIT.</summary>
    public static string? Standard(string line) => line.ToUpperInvariant() switch
    {
        var l when l.StartsWith("EHLO") => "250-fake\r\n250 PIPELINING",
        var l when l.StartsWith("DATA") => "354 go",
        var l when l.StartsWith("QUIT") => "221 bye",
        _ => "250 ok",
    };

    async Task AcceptLoop()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = Serve(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    async Task Serve(TcpClient client)
    {
        using (client)
        {
            try
            {
                NetworkStream stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII);
                await Write(stream, "220 fake ESMTP");
                while (await reader.ReadLineAsync(_stop.Token) is string line)
                {
                    string? reply = _respond(line);
                    if (reply is null) return;
                    await Write(stream, reply);
                    if (reply.StartsWith("221", StringComparison.Ordinal)) return;
                    if (!reply.StartsWith("354", StringComparison.Ordinal)) continue;
                    while (await reader.ReadLineAsync(_stop.Token) is string data && data != ".") { }
                    if (_afterDot is null) return;
                    await Write(stream, _afterDot);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException) { }
        }
    }

    static async Task Write(NetworkStream s, string reply) => await s.WriteAsync(Encoding.ASCII.GetBytes(reply + "\r\n"));

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}

/// <summary>A real SMTP server process on a free loopback port, stopped by its pid on Dispose:
/// Postfix's smtp-sink, or Python's aiosmtpd with its Sink handler.</summary>
sealed class SinkProcess : IDisposable
{
    public const string SmtpSinkBinary = "/usr/sbin/smtp-sink";
    public const string SystemPython = "/usr/bin/python3";
    public const string AiosmtpdPackage = "/usr/lib/python3/dist-packages/aiosmtpd";
    readonly Process _process;

    public static SinkProcess SmtpSink() => new(port =>
    {
        var start = new ProcessStartInfo(SmtpSinkBinary);
        if (Environment.UserName == "root") { start.ArgumentList.Add("-u"); start.ArgumentList.Add("nobody"); }
        start.ArgumentList.Add($"127.0.0.1:{port}");
        start.ArgumentList.Add("256");
        return start;
    });

    public static SinkProcess Aiosmtpd() => new(port =>
    {
        var start = new ProcessStartInfo(SystemPython);
        foreach (string a in new[] { "-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink" })
            start.ArgumentList.Add(a);
        return start;
    });

    SinkProcess(Func<int, ProcessStartInfo> command)
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        EndPoint = new IPEndPoint(IPAddress.Loopback, port);
        ProcessStartInfo start = command(port);
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        _process = Process.Start(start)!;
        for (int attempt = 0; ; attempt++)      // up to 10 s for the listener to appear
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(EndPoint);
                return;
            }
            catch (SocketException) when (attempt < 100 && !_process.HasExited) { Thread.Sleep(100); }
            catch (SocketException)
            {
                Dispose();      // never leave the server behind when it did not come up
                throw;
            }
        }
    }

    public IPEndPoint EndPoint { get; }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}

/// <summary>A fact that is skipped, with the reason, when smtp-sink is not installed.</summary>
public sealed class SmtpSinkFactAttribute : FactAttribute
{
    public SmtpSinkFactAttribute()
    {
        if (!File.Exists(SinkProcess.SmtpSinkBinary))
            Skip = $"{SinkProcess.SmtpSinkBinary} is absent: install Debian's postfix package (tests/run.sh does)";
    }
}

/// <summary>A fact that is skipped, with the reason, when Debian's python3-aiosmtpd is not installed.</summary>
public sealed class AiosmtpdFactAttribute : FactAttribute
{
    public AiosmtpdFactAttribute()
    {
        if (!File.Exists(SinkProcess.SystemPython) || !Directory.Exists(SinkProcess.AiosmtpdPackage))
            Skip = $"{SinkProcess.AiosmtpdPackage} is absent: install Debian's python3-aiosmtpd package (tests/run.sh does)";
    }
}
