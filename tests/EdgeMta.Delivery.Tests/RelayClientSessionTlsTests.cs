// STARTTLS per --relay-tls (docs/DELIVERY.md, RFC 3207): when it is said, what happens when it is missing or
// refused under each mode, the EHLO again after the handshake with the old capabilities forgotten (§4.2), and
// the certificate checks handed to the transport.
using System.Security.Cryptography.X509Certificates;
using EdgeMta.Delivery;
using static EdgeMta.Delivery.Tests.RelayHarness;

namespace EdgeMta.Delivery.Tests;

public class RelayClientSessionTlsTests
{
    private const string Message = "Subject: test\r\n\r\nhello\r\n";

    [Theory]
    [InlineData(RelayTlsMode.May)]
    [InlineData(RelayTlsMode.Require)]
    [InlineData(RelayTlsMode.Verify)]
    public void OfferedStartTlsIsUsedAndEhloIsSaidAgainWithTheOldCapabilitiesForgotten(RelayTlsMode mode)
    {
        using var h = Ready(Options(tls: mode), ["PIPELINING", "STARTTLS"], To(Message, "a@x.net"));
        Assert.Equal("STARTTLS\r\n", h.Take());
        h.Reply("220 2.0.0 ready\r\n");
        Assert.Equal(1, h.Connection.TlsHandshakes);
        Assert.Equal("EHLO edge.example.org\r\n", h.Take());
        Assert.Equal("mx.example.net", h.Connection.ClientTlsOptions!.TargetHost);
        Assert.Equal(mode != RelayTlsMode.Verify, h.Connection.ClientTlsOptions.RemoteCertificateValidationCallback is not null);
        h.Reply(Ehlo("STARTTLS"));
        // No PIPELINING now: MAIL alone; and no second STARTTLS.
        Assert.Equal("MAIL FROM:<sender@example.com>\r\n", h.Take());
        Assert.Equal(1, h.Connection.TlsHandshakes);
    }

    [Fact]
    public void ModeNoneNeverSaysStartTls()
    {
        using var h = Ready(Options(tls: RelayTlsMode.None), ["STARTTLS"], To(Message, "a@x.net"));
        Assert.Equal("MAIL FROM:<sender@example.com>\r\n", h.Take());
        Assert.Equal(0, h.Connection.TlsHandshakes);
    }

    [Fact]
    public void ModeMayGoesOnInTheClearWhenStartTlsIsAbsentOrRefused()
    {
        using (var h = Ready(Options(tls: RelayTlsMode.May), [], To(Message, "a@x.net")))
        {
            Assert.Equal("MAIL FROM:<sender@example.com>\r\n", h.Take());
        }

        using var refused = Ready(Options(tls: RelayTlsMode.May), ["STARTTLS"], To(Message, "a@x.net"));
        Assert.Equal("STARTTLS\r\n", refused.Take());
        refused.Reply("454 4.7.0 TLS not available\r\n");
        Assert.Equal("MAIL FROM:<sender@example.com>\r\n", refused.Take());
    }

    [Theory]
    [InlineData(RelayTlsMode.Require)]
    [InlineData(RelayTlsMode.Verify)]
    public void RequiredTlsNotOfferedEndsTheSessionBeforeAnyTransaction(RelayTlsMode mode)
    {
        using var h = Ready(Options(tls: mode), ["PIPELINING"], To(Message, "a@x.net"));
        Assert.Equal("QUIT\r\n", h.Take());
        var end = h.Work.End();
        Assert.Equal(SessionEnd.TlsFailed, end.End);
        Assert.Contains("STARTTLS not offered", end.Reason);
        Assert.Equal(0, h.Work.TryNextCalls);
    }

    [Fact]
    public void RequiredTlsRefusedEndsTheSession()
    {
        using var h = Ready(Options(tls: RelayTlsMode.Require), ["STARTTLS"], To(Message, "a@x.net"));
        h.Take();
        h.Reply("454 4.7.0 TLS not available\r\n");
        Assert.Equal("QUIT\r\n", h.Take());
        Assert.Equal((SessionEnd.TlsFailed, "STARTTLS: 454 4.7.0 TLS not available"), h.Work.End());
    }

    [Fact]
    public void AFailedHandshakeEndsTheSessionOnceWithItsReason()
    {
        using var h = Open(Options(tls: RelayTlsMode.Verify), To(Message, "a@x.net"));
        h.Connection.TlsFailure = "RemoteCertificateNameMismatch";
        h.Reply("220 mx.example.net ESMTP\r\n");
        h.Reply(Ehlo("STARTTLS"));
        h.Reply("220 go\r\n");
        Assert.True(h.Connection.IsClosed);
        var end = h.Work.End();
        Assert.Equal(SessionEnd.TlsFailed, end.End);
        Assert.Contains("RemoteCertificateNameMismatch", end.Reason);
        Assert.Equal(0, h.Work.TryNextCalls);
    }

    [Fact]
    public void VerifyWithATrustAnchorTrustsOnlyThatAnchor()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new CertificateRequest("CN=relay-ca", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var anchor = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var options = Options("smtp://[2001:db8::1]:2525", RelayTlsMode.Verify) with { TrustAnchors = [anchor] };
        var tls = new RelayClientSession(options, new ScriptedWork()).ClientTlsOptions;
        Assert.Equal("2001:db8::1", tls.TargetHost);
        Assert.Null(tls.RemoteCertificateValidationCallback);
        var policy = tls.CertificateChainPolicy!;
        Assert.Equal(X509ChainTrustMode.CustomRootTrust, policy.TrustMode);
        Assert.Equal(anchor.Thumbprint, Assert.Single(policy.CustomTrustStore).Thumbprint);
    }

    [Fact]
    public void AnOverrideReplacesTheBuiltOptions()
    {
        var own = new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "test.invalid" };
        var session = new RelayClientSession(Options(tls: RelayTlsMode.Verify) with { ClientTlsOverride = own }, new ScriptedWork());
        Assert.Same(own, session.ClientTlsOptions);
    }
}
