// Client STARTTLS on an outbound connection (RFC 3207) against an SslStream server with a self-signed
// certificate made here: a handshake the handler's checks accept continues under TLS; one they refuse ends in
// OnTlsFailed with the reason, then OnClosed, and nothing is ever sent in the clear after the STARTTLS.
using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace EdgeMta.Transport.Tests;

public sealed class OutboundTlsTests
{
    private static readonly Lazy<X509Certificate2> Certificate = new(() =>
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=mx.next-hop.example", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("mx.next-hop.example");
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    });

    [Fact]
    public async Task StartTlsAsTheClientContinuesUnderTls()
    {
        await using var transport = new OutboundTransport();
        using PeerListener peer = PeerListener.Tcp();
        var handler = new StartTlsClient(TrustOnly("mx.next-hop.example"));

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        await next.SendAsync("220 next hop ready\r\n");
        Assert.Equal("STARTTLS\r\n", await next.ReadUntilAsync("\r\n"));
        await next.SendAsync("220 go ahead\r\n");
        await using SslStream tls = await ServeHandshakeAsync(next);

        Assert.Equal("EHLO again\r\n", await ReadLineAsync(tls));
        await WriteAsync(tls, "250 ok\r\n");
        Assert.Equal("QUIT\r\n", await ReadLineAsync(tls));
        await WriteAsync(tls, "221 bye\r\n");
        Assert.Equal(0, await ReadAsync(tls, new byte[16])); // close_notify, then our FIN: a clean end
        next.Socket.Shutdown(SocketShutdown.Send);

        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(["opened", "line 220 next hop ready", "line 220 go ahead", "tls", "line 250 ok", "line 221 bye", "closed"], handler.Events);
        Assert.Null(handler.TlsFailure);
        Assert.Equal(1, transport.Server.Counters.TlsEstablished);
    }

    [Fact]
    public async Task ARefusedCertificateCallsOnTlsFailedThenOnClosed()
    {
        await using var transport = new OutboundTransport();
        using PeerListener peer = PeerListener.Tcp();
        // The wrong name: the check the handler supplies refuses the chain (docs/DELIVERY.md --relay-tls verify).
        var handler = new StartTlsClient(TrustOnly("other.example"));

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        await next.SendAsync("220 next hop ready\r\n");
        await next.ReadUntilAsync("STARTTLS\r\n");
        await next.SendAsync("220 go ahead\r\n");
        // Under TLS 1.3 the server's side may finish before the client judges the certificate: either way,
        // what matters is what the client did.
        try
        {
            await using SslStream tls = await ServeHandshakeAsync(next);
            Assert.Equal(0, await ReadAsync(tls, new byte[16])); // the client's alert, then its FIN: nothing more
        }
        catch (Exception exception) when (exception is AuthenticationException or IOException)
        {
        }

        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(["opened", "line 220 next hop ready", "line 220 go ahead", "tls failed", "closed"], handler.Events);
        Assert.Contains("certificate", handler.TlsFailure, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\n', handler.TlsFailure!);
        Assert.Equal(1, transport.Server.Counters.TlsFailed);
        Assert.Equal(0, handler.TlsEstablishedCalls);
    }

    [Fact]
    public async Task AHandshakeThatStallsFailsAtTheHandshakeTimeout()
    {
        await using var transport = new OutboundTransport(o => o.TlsHandshakeTimeout = TimeSpan.FromMilliseconds(300));
        using PeerListener peer = PeerListener.Tcp();
        var handler = new StartTlsClient(TrustOnly("mx.next-hop.example"));

        transport.Server.Connect(peer.EndPoint, handler, TimeSpan.FromSeconds(5));
        using TestClient next = await peer.AcceptAsync();
        await next.SendAsync("220 next hop ready\r\n");
        await next.ReadUntilAsync("STARTTLS\r\n");
        await next.SendAsync("220 go ahead\r\n"); // and then never answers the ClientHello

        Assert.True(await Bounded.UntilAsync(() => Volatile.Read(ref handler.ClosedCount) == 1));
        Assert.Equal(["opened", "line 220 next hop ready", "line 220 go ahead", "tls failed", "closed"], handler.Events);
        Assert.Contains("timed out", handler.TlsFailure, StringComparison.Ordinal);
    }

    private static SslClientAuthenticationOptions TrustOnly(string targetHost) => new()
    {
        TargetHost = targetHost,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        // Self-signed: trust this one certificate by its hash, but only when the name checks out.
        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0
            && certificate is not null
            && certificate.GetCertHashString() == Certificate.Value.GetCertHashString(),
    };

    private static async Task<SslStream> ServeHandshakeAsync(TestClient next)
    {
        var tls = new SslStream(new NetworkStream(next.Socket, ownsSocket: false));
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        try
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = Certificate.Value,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            }, timeout.Token);
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
        return tls;
    }

    private static async Task WriteAsync(SslStream tls, string text)
    {
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(text), timeout.Token);
        await tls.FlushAsync(timeout.Token);
    }

    private static async Task<int> ReadAsync(SslStream tls, byte[] buffer)
    {
        using var timeout = new CancellationTokenSource(Bounded.Wait);
        return await tls.ReadAsync(buffer, timeout.Token);
    }

    private static async Task<string> ReadLineAsync(SslStream tls)
    {
        var text = new StringBuilder();
        var buffer = new byte[1];
        while (!text.ToString().EndsWith('\n'))
        {
            if (await ReadAsync(tls, buffer) == 0)
            {
                throw new IOException($"TLS stream ended after '{text}'.");
            }
            text.Append((char)buffer[0]);
        }
        return text.ToString();
    }

    /// <summary>STARTTLS after the greeting, StartTls after its 220, then the ScriptedClient's EHLO again,
    /// QUIT after the 250 and Close after the 221.</summary>
    private sealed class StartTlsClient : ScriptedClient
    {
        private bool _tlsAsked;

        public StartTlsClient(SslClientAuthenticationOptions options)
        {
            ClientTlsOptions = options;
            Replies["250"] = "QUIT\r\n";
        }

        protected override HandlerStatus OnLine(string line, IBufferWriter<byte> output)
        {
            if (line.StartsWith("220", StringComparison.Ordinal))
            {
                if (_tlsAsked)
                {
                    return HandlerStatus.StartTls;
                }
                _tlsAsked = true;
                output.Write("STARTTLS\r\n"u8);
                return HandlerStatus.Continue;
            }
            return base.OnLine(line, output);
        }
    }
}
