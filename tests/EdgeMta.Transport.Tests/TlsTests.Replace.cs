// Replacing the certificate (the server's SIGHUP reload): handshakes that start afterwards present the new
// one, a session already under TLS with the old one carries on, and a refused replacement changes nothing.
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EdgeMta.Transport.Tests;

public sealed partial class TlsTests
{
    [Fact]
    public async Task AReplacedCertificateIsPresentedByLaterHandshakesWhileEarlierSessionsCarryOn()
    {
        using X509Certificate2 first = SelfSigned("CN=first.localhost"), second = SelfSigned("CN=second.localhost");
        await using var server = new TestServer(() => new TlsEchoHandler(), o => o.TlsCertificate = first);

        using TestClient early = await server.ConnectAsync();
        await using SslStream earlyTls = await StartTlsAsync(early);
        Assert.Equal(first.Thumbprint, earlyTls.RemoteCertificate!.GetCertHashString());

        server.Server.ReplaceTlsCertificate(second, intermediates: null);

        using TestClient late = await server.ConnectAsync();
        await using SslStream lateTls = await StartTlsAsync(late);
        Assert.Equal(second.Thumbprint, lateTls.RemoteCertificate!.GetCertHashString());

        await WriteAsync(earlyTls, "still here\r\n");
        Assert.Equal("still here\r\n", await ReadUntilAsync(earlyTls, "still here\r\n"));
    }

    [Fact]
    public async Task AReplacementWithoutAPrivateKeyIsRefusedAndTheOldCertificateStays()
    {
        using X509Certificate2 first = SelfSigned("CN=first.localhost");
        using X509Certificate2 withKey = SelfSigned("CN=keyless.localhost");
        using X509Certificate2 keyless = X509CertificateLoader.LoadCertificate(withKey.RawData);
        await using var server = new TestServer(() => new TlsEchoHandler(), o => o.TlsCertificate = first);

        Assert.Throws<ArgumentException>(() => server.Server.ReplaceTlsCertificate(keyless, intermediates: null));

        using TestClient client = await server.ConnectAsync();
        await using SslStream tls = await StartTlsAsync(client);
        Assert.Equal(first.Thumbprint, tls.RemoteCertificate!.GetCertHashString());
    }

    [Fact]
    public async Task AServerBuiltWithoutTlsRefusesACertificateLater()
    {
        using X509Certificate2 certificate = SelfSigned("CN=late.localhost");
        await using var server = new TestServer(() => new TlsEchoHandler());
        Assert.Throws<InvalidOperationException>(() => server.Server.ReplaceTlsCertificate(certificate, intermediates: null));
    }

    private static async Task<SslStream> StartTlsAsync(TestClient client)
    {
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("starttls\r\n");
        await client.ReadUntilAsync("220 go\r\n");
        SslStream tls = await HandshakeAsync(client);
        await ReadUntilAsync(tls, "tls ok\r\n");
        return tls;
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }
}
