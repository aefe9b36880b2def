// Contract: the STARTTLS certificate, read once at start from the PEM files `--tls-cert` and `--tls-key` name.
//
// The certificate file may hold the whole chain (leaf first, then intermediates, as certbot's fullchain.pem):
// the first certificate is the server's, the rest are sent with it in the handshake so clients can build the
// path (RFC 8446 §4.4.2). The key file holds the matching private key, unencrypted, as PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
// How it fails: a file that cannot be read throws IOException or UnauthorizedAccessException; a file that
// holds no usable certificate or key, or a key that does not match the certificate, throws
// CryptographicException. The host turns the first into exit 1 and the second into exit 2.
// Nothing here is reflection-based: X509Certificate2.CreateFromPemFile and the PEM importers are AOT-safe.
// On Linux OpenSSL uses the imported key as it is; the PKCS#12 round trip some guides show is for Windows
// SChannel, which cannot use an ephemeral key, and is not needed here.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EdgeMta.Server;

public sealed class ServerCertificate : IDisposable
{
    private ServerCertificate(X509Certificate2 certificate, X509Certificate2Collection intermediates)
    {
        Certificate = certificate;
        Intermediates = intermediates;
    }

    /// <summary>The server's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The certificates after the first in the certificate file (may be empty).</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>Reads the certificate (and chain) and the private key; checks that they belong together.</summary>
    public static ServerCertificate Load(string certificateFile, string keyFile)
    {
        // Read both files first, so an unreadable file is an I/O error, not a crypto one.
        string certificatePem = File.ReadAllText(certificateFile);
        string keyPem = File.ReadAllText(keyFile);
        X509Certificate2 certificate = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new CryptographicException("the key does not belong to the certificate");
        }
        var all = new X509Certificate2Collection();
        all.ImportFromPem(certificatePem);
        var intermediates = new X509Certificate2Collection();
        for (int i = 1; i < all.Count; i++) intermediates.Add(all[i]);
        if (all.Count > 0) all[0].Dispose();
        return new ServerCertificate(certificate, intermediates);
    }

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (X509Certificate2 intermediate in Intermediates) intermediate.Dispose();
    }
}
