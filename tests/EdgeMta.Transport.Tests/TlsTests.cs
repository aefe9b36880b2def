// Stream mode (TLS below the seam) over loopback, with a self-signed certificate made here: the switch
// drops plaintext pipelined after the request, the handler contract holds under TLS (pipelined input, one
// send per pass, Pause/Resume, timeouts, OnClosed once), and a handshake that fails or stalls closes.
using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace EdgeMta.Transport.Tests;

public sealed partial class TlsTests
{
    private static readonly Lazy<X509Certificate2> Certificate = new(() =>
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    });

    [Fact]
    public async Task StartTlsDropsPipelinedPlaintextThenEchoesPipelinedLinesOverTls()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler, o => o.TlsCertificate = Certificate.Value);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");

        // "injected" arrives with the request, in the same read: it must never reach the handler.
        await client.SendAsync("starttls\r\ninjected\r\n");
        Assert.Equal("220 go\r\n", await client.ReadUntilAsync("220 go\r\n"));
        await using SslStream tls = await HandshakeAsync(client);

        Assert.Equal("tls ok\r\n", await ReadUntilAsync(tls, "tls ok\r\n"));
        await WriteAsync(tls, "a\r\nb\r\nc\r\n");
        Assert.Equal("a\r\nb\r\nc\r\n", await ReadUntilAsync(tls, "c\r\n"));
        await WriteAsync(tls, "quit\r\n");
        Assert.Equal("bye\r\n", await ReadToEndAsync(tls)); // ends with close_notify, then FIN: a clean 0

        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, handler.TlsEstablishedCalls);
        Assert.DoesNotContain("injected", handler.Lines);
        Assert.Equal(["starttls", "a", "b", "c", "quit"], handler.Lines);
        Assert.Equal(1, server.Server.Counters.TlsEstablished);
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 0));
    }

    [Fact]
    public async Task LineSplitAcrossTlsRecordsIsKeptUntilWhole()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler, o => o.TlsCertificate = Certificate.Value);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("starttls\r\n");
        await client.ReadUntilAsync("220 go\r\n");
        await using SslStream tls = await HandshakeAsync(client);
        await ReadUntilAsync(tls, "tls ok\r\n");
        foreach (string part in (string[])["spl", "it li", "ne\r", "\n"])
        {
            await WriteAsync(tls, part); // one TLS record each
        }
        Assert.Equal("split line\r\n", await ReadUntilAsync(tls, "\r\n"));
    }

    [Fact]
    public async Task PauseResumeAndIdleTimeoutWorkUnderTls()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler, o => o.TlsCertificate = Certificate.Value);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("starttls\r\n");
        await client.ReadUntilAsync("220 go\r\n");
        await using SslStream tls = await HandshakeAsync(client);
        await ReadUntilAsync(tls, "tls ok\r\n");

        // "short" waits, kept, until the resume; it then sets a short idle timeout.
        await WriteAsync(tls, "pause\r\nshort\r\n");
        Assert.True(await Bounded.UntilAsync(() => handler.Paused));
        Assert.True(handler.Info.Resume());
        Assert.Equal("paused\r\nresumed\r\nshort\r\n", await ReadUntilAsync(tls, "short\r\n"));

        // Then silence: the handler's 421 goes out encrypted and the connection closes.
        Assert.Equal("421 idle\r\n", await ReadToEndAsync(tls));
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, handler.TimedOutCalls);
    }

    [Fact]
    public async Task FailedHandshakeClosesTheConnectionAndCallsOnClosedOnce()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler, o => o.TlsCertificate = Certificate.Value);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("starttls\r\n");
        await client.ReadUntilAsync("220 go\r\n");
        await client.SendAsync("MAIL FROM:<not-a-client-hello@example.com>\r\n");

        await ReadUntilClosedAsync(client);
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.True(await Bounded.UntilAsync(() => server.Server.Counters.Open == 0));
        Assert.Equal(0, handler.TlsEstablishedCalls);
        Assert.Equal(1, server.Server.Counters.TlsFailed);
        Assert.Equal(["starttls"], handler.Lines);
        Assert.Equal(1, handler.ClosedCount);
    }

    [Fact]
    public async Task StalledHandshakeIsClosedAtTheHandshakeTimeout()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler, o =>
        {
            o.TlsCertificate = Certificate.Value;
            o.TlsHandshakeTimeout = TimeSpan.FromMilliseconds(300);
        });
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("starttls\r\n");
        await client.ReadUntilAsync("220 go\r\n");

        // No ClientHello ever comes.
        await ReadUntilClosedAsync(client);
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(0, handler.TlsEstablishedCalls);
        Assert.Equal(1, server.Server.Counters.TlsFailed);
    }

    [Fact]
    public async Task StartTlsFromOnOpenedServesImplicitTls()
    {
        // RFC 8314 (port 465 style): the handshake comes first, the greeting after it, encrypted.
        var handler = new TlsEchoHandler { TlsFirst = true };
        await using var server = new TestServer(() => handler, o => o.TlsCertificate = Certificate.Value);
        using TestClient client = await server.ConnectAsync();
        await using SslStream tls = await HandshakeAsync(client);
        Assert.Equal("tls ok\r\n", await ReadUntilAsync(tls, "tls ok\r\n"));
        await WriteAsync(tls, "x\r\nquit\r\n");
        Assert.Equal("x\r\nbye\r\n", await ReadToEndAsync(tls));
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
    }

    [Fact]
    public async Task StartTlsWithoutACertificateFaultsTheConnection()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("starttls\r\n");
        await ReadUntilClosedAsync(client);
        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(1, server.Server.Counters.Faulted);
    }

    private static async Task<SslStream> HandshakeAsync(TestClient client)
    {
        var tls = new SslStream(new NetworkStream(client.Socket, ownsSocket: false));
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, _, _, _) => true, // self-signed, made above
        }, timeout.Token);
        return tls;
    }

    private static async Task WriteAsync(SslStream tls, string text)
    {
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(text), timeout.Token);
        await tls.FlushAsync(timeout.Token);
    }

    private static async Task<string> ReadUntilAsync(SslStream tls, string expected)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        while (!text.ToString().EndsWith(expected, StringComparison.Ordinal))
        {
            int n = await tls.ReadAsync(buffer, timeout.Token);
            if (n == 0)
            {
                throw new IOException($"TLS stream ended before '{expected}'; got '{text}'.");
            }
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return text.ToString();
    }

    private static async Task<string> ReadToEndAsync(SslStream tls)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        while (true)
        {
            int n = await tls.ReadAsync(buffer, timeout.Token);
            if (n == 0)
            {
                return text.ToString();
            }
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
    }

    /// <summary>Reads plaintext until the server's FIN or reset (a failed handshake may end either way).</summary>
    private static async Task ReadUntilClosedAsync(TestClient client)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        try
        {
            while (await client.Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // reset: closed too
        }
    }

    /// <summary>The echo handler, plus: "starttls" answers 220 and StartTls; "pause" answers Pause (the test
    /// resumes); "short" sets a 300 ms idle timeout; "tlsinfo" says what TryGetTls reports; after the handshake it
    /// says "tls ok".</summary>
    private sealed class TlsEchoHandler : EchoLineHandler
    {
        public readonly List<string> Lines = new();
        public int TlsEstablishedCalls;
        public bool TlsFirst;

        public override HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            if (!TlsFirst)
            {
                return base.OnOpened(info, output);
            }
            Info = info;
            return HandlerStatus.StartTls;
        }

        protected override HandlerStatus OnLine(ReadOnlySpan<byte> line, IBufferWriter<byte> output)
        {
            string text = Encoding.ASCII.GetString(line);
            lock (Lines)
            {
                Lines.Add(text);
            }
            switch (text)
            {
                case "starttls":
                    output.Write("220 go\r\n"u8);
                    return HandlerStatus.StartTls;
                case "short":
                    Info.SetIdleTimeout(TimeSpan.FromMilliseconds(300));
                    return base.OnLine(line, output);
                case "tlsinfo":
                    output.Write(Encoding.ASCII.GetBytes(Info.TryGetTls(out SslProtocols protocol, out TlsCipherSuite suite)
                        ? $"{protocol} {suite}\r\n" : "plain\r\n"));
                    return HandlerStatus.Continue;
                case "pause":
                    output.Write("paused\r\n"u8);
                    Paused = true;
                    return HandlerStatus.Pause;
                default:
                    return base.OnLine(line, output);
            }
        }

        public override HandlerStatus OnTlsEstablished(IBufferWriter<byte> output)
        {
            Interlocked.Increment(ref TlsEstablishedCalls);
            output.Write("tls ok\r\n"u8);
            return HandlerStatus.Continue;
        }
    }
}
