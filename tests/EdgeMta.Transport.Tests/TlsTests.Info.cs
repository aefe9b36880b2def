// What the handler learns of the handshake (ConnectionInfo.TryGetTls, Connection.Tls.cs): nothing in plaintext,
// then the version and cipher suite the client negotiated, as the client's own SslStream reports them.
using System.Net.Security;

namespace EdgeMta.Transport.Tests;

public sealed partial class TlsTests
{
    [Fact]
    public async Task TheHandlerIsToldTheNegotiatedVersionAndCipherSuiteOnlyUnderTls()
    {
        var handler = new TlsEchoHandler();
        await using var server = new TestServer(() => handler, o => o.TlsCertificate = Certificate.Value);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("tlsinfo\r\n");
        Assert.Equal("plain\r\n", await client.ReadUntilAsync("plain\r\n"));

        await client.SendAsync("starttls\r\n");
        await client.ReadUntilAsync("220 go\r\n");
        await using SslStream tls = await HandshakeAsync(client);
        await ReadUntilAsync(tls, "tls ok\r\n");
        await WriteAsync(tls, "tlsinfo\r\n");
        string expected = $"{tls.SslProtocol} {tls.NegotiatedCipherSuite}\r\n";
        Assert.Equal(expected, await ReadUntilAsync(tls, expected));
    }
}
