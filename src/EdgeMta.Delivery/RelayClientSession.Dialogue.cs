// Contract: the session's opening and closing dialogue: the greeting (RFC 5321 §3.1, §4.2), EHLO or LHLO
// (RFC 5321 §4.1.1.1, RFC 2033 §4.1) with the HELO fallback for SMTP, the loop check (docs/DELIVERY.md
// "Loops"), STARTTLS per --relay-tls (RFC 3207) and QUIT. It does not run transactions (.Transaction.cs).
// A refused greeting or hello ends the session as Refused, a missing required STARTTLS as TlsFailed, a
// greeting or hello reply naming our own hostname as Loop; each with one line saying why.
using System.Buffers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using EdgeMta.Transport;

namespace EdgeMta.Delivery;

public sealed partial class RelayClientSession
{
    private readonly byte[] _hello;
    private readonly byte[] _helo;
    private SmtpExtensions _extensions;
    private long _sizeLimit;
    private bool _tlsActive;
    private bool _tlsDeclined;

    private bool Offers(SmtpExtensions extension) => (_extensions & extension) == extension;

    private HandlerStatus OnGreeting(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code != 220)
        {
            End(SessionEnd.Refused, $"greeting: {ReplyLine(reply)}");
            // RFC 5321 §3.1: after a 554 greeting the client should still say QUIT; after 421 the server is gone.
            return reply.Code == 421 ? CloseNow() : Quit(output);
        }

        string domain = ServerCapabilities.DomainOf(reply);
        if (ServerCapabilities.NamesHost(domain, _options.Hostname))
            return Loop(output, "greeting", domain);
        return SendHello(output);
    }

    private HandlerStatus SendHello(IBufferWriter<byte> output)
    {
        output.Write(_hello);
        _phase = Phase.Hello;
        _info.SetIdleTimeout(_options.CommandTimeout);
        return HandlerStatus.Continue;
    }

    private HandlerStatus OnHello(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code / 100 == 5 && !_lmtp)
        {
            // RFC 5321 §4.1.4: a server that does not know EHLO gets HELO, and offers no extension. LMTP has no
            // HELO (RFC 2033 §4.1).
            output.Write(_helo);
            _phase = Phase.Helo;
            return HandlerStatus.Continue;
        }

        if (!ServerCapabilities.TryParse(reply, out var capabilities, out _))
            return Refused(output, _lmtp ? "LHLO" : "EHLO", reply);
        if (ServerCapabilities.NamesHost(capabilities.Domain, _options.Hostname))
            return Loop(output, _lmtp ? "LHLO reply" : "EHLO reply", capabilities.Domain);
        _extensions = capabilities.Extensions;
        _sizeLimit = capabilities.SizeLimit;
        return AfterHello(output);
    }

    private HandlerStatus OnHelo(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code / 100 != 2)
            return Refused(output, "HELO", reply);
        string domain = ServerCapabilities.DomainOf(reply);
        if (ServerCapabilities.NamesHost(domain, _options.Hostname))
            return Loop(output, "HELO reply", domain);
        _extensions = SmtpExtensions.None;
        _sizeLimit = 0;
        return AfterHello(output);
    }

    private HandlerStatus AfterHello(IBufferWriter<byte> output)
    {
        if (_shutdownRequested)
        {
            End(SessionEnd.Shutdown, "server stopping");
            return Quit(output);
        }

        if (!_tlsActive && !_tlsDeclined && _options.Tls != RelayTlsMode.None)
        {
            if (Offers(SmtpExtensions.StartTls))
            {
                output.Write("STARTTLS\r\n"u8);
                _phase = Phase.StartTls;
                return HandlerStatus.Continue;
            }

            if (_options.Tls != RelayTlsMode.May)
            {
                End(SessionEnd.TlsFailed, $"STARTTLS not offered (--relay-tls {ModeName(_options.Tls)})");
                return Quit(output);
            }
        }

        return NextTransaction(output);
    }

    private HandlerStatus OnStartTlsReply(SmtpReply reply, IBufferWriter<byte> output)
    {
        if (reply.Code == 220)
        {
            // RFC 3207 §4: the handshake starts right after the 220; the transport drops any byte after it.
            _phase = Phase.Handshake;
            return HandlerStatus.StartTls;
        }

        if (_options.Tls != RelayTlsMode.May)
        {
            End(SessionEnd.TlsFailed, $"STARTTLS: {ReplyLine(reply)}");
            return Quit(output);
        }

        // --relay-tls may: TLS was an offer, not a condition; the session goes on in the clear.
        _tlsDeclined = true;
        return AfterHello(output);
    }

    private HandlerStatus Refused(IBufferWriter<byte> output, string command, SmtpReply reply)
    {
        End(SessionEnd.Refused, $"{command}: {ReplyLine(reply)}");
        return reply.Code == 421 ? CloseNow() : Quit(output);
    }

    private HandlerStatus Loop(IBufferWriter<byte> output, string where, string domain)
    {
        End(SessionEnd.Loop, $"mail loops back to myself: the {where} names {domain}");
        return Quit(output);
    }

    /// <summary>RFC 5321 §4.1.1.10: QUIT, then close without waiting for the 221 (nothing depends on it).</summary>
    private HandlerStatus Quit(IBufferWriter<byte> output)
    {
        output.Write("QUIT\r\n"u8);
        return CloseNow();
    }

    private HandlerStatus CloseNow()
    {
        _phase = Phase.Closed;
        return HandlerStatus.Close;
    }

    private static string ModeName(RelayTlsMode mode) => mode switch
    {
        RelayTlsMode.None => "none",
        RelayTlsMode.May => "may",
        RelayTlsMode.Require => "require",
        _ => "verify",
    };

    private static byte[] BuildHello(ReadOnlySpan<byte> verb, string hostname)
    {
        var bytes = new byte[verb.Length + Encoding.ASCII.GetByteCount(hostname) + 2];
        verb.CopyTo(bytes);
        int length = verb.Length + Encoding.ASCII.GetBytes(hostname, bytes.AsSpan(verb.Length));
        bytes[length] = (byte)'\r';
        bytes[length + 1] = (byte)'\n';
        return bytes;
    }

    /// <summary>
    /// docs/DELIVERY.md --relay-tls: none, may and require take any certificate (RFC 7435 opportunistic
    /// security: encryption without authentication beats none); verify checks the chain and that the certificate
    /// names the relay's host (TargetHost), against --relay-ca alone when given, else the system store.
    /// </summary>
    private static SslClientAuthenticationOptions BuildClientTls(RelaySessionOptions options)
    {
        var tls = new SslClientAuthenticationOptions
        {
            // A Unix socket has no host name; "localhost" is what its certificate would be made for.
            TargetHost = options.Endpoint.Host.Length > 0 ? options.Endpoint.Host : "localhost",
        };
        if (options.Tls != RelayTlsMode.Verify)
        {
            tls.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
            return tls;
        }

        if (options.TrustAnchors is { Count: > 0 } anchors)
        {
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(anchors);
            tls.CertificateChainPolicy = policy;
        }

        return tls;
    }
}
