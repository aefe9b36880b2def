using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>A throwaway self-signed certificate for localhost/127.0.0.1, written as PEM files for --tls-cert/--tls-key.</summary>
public static class TestCertificate
{
    private static readonly Lazy<string[]> Shared = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("edgemta-e2e-tls-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return Write(dir);
    });

    /// <summary>`--tls-cert FILE --tls-key FILE` for one certificate made once per test run.</summary>
    public static string[] Flags => Shared.Value;

    /// <summary>Writes cert.pem and key.pem (PKCS#8) into <paramref name="directory"/>; returns the flags that name them.</summary>
    public static string[] Write(string directory)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        string certPath = Path.Combine(directory, "cert.pem"), keyPath = Path.Combine(directory, "key.pem");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return ["--tls-cert", certPath, "--tls-key", keyPath];
    }
}
