// Contract: what an in-memory connection says about TLS (ConnectionInfo.TryGetTls). The in-memory transport runs
// no handshake for an inbound handler (StartTls faults, InMemoryConnection.cs), so a test states the facts a
// real handshake would have negotiated (NegotiatedTls) and the handler reads them as it would from the socket
// transport (src/EdgeMta.Transport/Connection.Tls.cs). What it does not do: encrypt, or call OnTlsEstablished.
using System.Net.Security;
using System.Security.Authentication;
using EdgeMta.Transport;

namespace EdgeMta.TestKit;

public sealed partial class InMemoryConnection
{
    private SslProtocols _tlsProtocol;
    private TlsCipherSuite _tlsCipherSuite;

    /// <summary>Makes the connection report a negotiated TLS version and cipher suite, as after a handshake.</summary>
    public void SetNegotiatedTls(SslProtocols protocol, TlsCipherSuite cipherSuite)
    {
        lock (_gate)
        {
            _tlsProtocol = protocol;
            _tlsCipherSuite = cipherSuite;
        }
    }

    bool IConnectionControl.TryGetTls(int generation, out SslProtocols protocol, out TlsCipherSuite cipherSuite)
    {
        lock (_gate)
        {
            protocol = _tlsProtocol;
            cipherSuite = _tlsCipherSuite;
            return generation == Generation && protocol != SslProtocols.None;
        }
    }
}
