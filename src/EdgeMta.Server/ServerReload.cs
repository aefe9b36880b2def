// Contract: what SIGHUP does (docs/PROTOCOL.md "Operations"). Re-reads the recipient directory (--recipients,
// with the --domain flags as at start) and the TLS certificate and key (--tls-cert/--tls-key), and hands them
// to the sessions that start from then on: the directory through SmtpServerContext.Directory (read once per
// session, at Start), the certificate through TransportServer.ReplaceTlsCertificate (read once per
// handshake). Sessions in flight, and handshakes under way, keep what they had.
//
// All or nothing: when any file is missing, unreadable or unparsable, or the key does not match the
// certificate, nothing changes and one `reload-failed` line names the file and the reason; otherwise one
// `reloaded` line gives the entries now in force and the certificate's SHA-256 fingerprint, so an operator
// can check that the new one is in use.
//
// A storm coalesces: one reload runs at a time and at most one more is pending, however many requests
// arrive (a request during a reload is served by the pending one, which reads the files after it). So 100
// SIGHUPs in a second never run two reloads at once nor queue 100. Reloads run on the thread pool, never on
// the caller's thread (a signal's), and never throw: a reload must not take the server down.
//
// What it does not do: re-read flags (they stay as at start), turn STARTTLS on or off (advertised or not
// from the start, RFC 3207 §4), watch files for changes, or dispose the certificate it replaces (see
// TransportServer.ReplaceTlsCertificate).
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Transport;

namespace EdgeMta.Server;

public sealed class ServerReload
{
    private readonly ServerOptions _options;
    private readonly SmtpServerContext _context;
    private readonly TransportServer _transport;
    private readonly ServerLog _log;
    private readonly Lock _gate = new();
    private bool _running;
    private bool _pending;

    internal ServerReload(ServerOptions options, SmtpServerContext context, TransportServer transport, ServerLog log)
    {
        _options = options;
        _context = context;
        _transport = transport;
        _log = log;
    }

    /// <summary>No reload running or pending (tests wait on it).</summary>
    internal bool Idle
    {
        get
        {
            lock (_gate) return !_running && !_pending;
        }
    }

    /// <summary>Asks for a reload and returns at once; coalesced with any reload running or pending.</summary>
    public void Request()
    {
        lock (_gate)
        {
            if (_running)
            {
                _pending = true; // starts after the running one, so it reads the files as they are now or later
                return;
            }
            _running = true;
        }
        ThreadPool.UnsafeQueueUserWorkItem(static self => self.RunUntilNoneIsPending(), this, preferLocal: false);
    }

    /// <summary>Reads the files and swaps them in now, on the caller's thread; logs one line either way. Not
    /// coalesced: only <see cref="RunUntilNoneIsPending"/> calls it, one at a time.</summary>
    /// <returns>True when the new files are in force; false when the old ones stay.</returns>
    internal bool ReloadOnce()
    {
        string file = "recipients";
        try
        {
            RecipientDirectory? directory = null;
            if (_options.RecipientsFile is { } recipients)
            {
                using var reader = new StreamReader(recipients);
                directory = RecipientDirectory.Parse(reader, _options.Domains);
            }
            file = "tls";
            ServerCertificate? certificate = null;
            if (_options.TlsCertificateFile is { } certificateFile && _options.TlsKeyFile is { } keyFile)
            {
                certificate = ServerCertificate.Load(certificateFile, keyFile);
                _transport.ReplaceTlsCertificate(certificate.Certificate, certificate.Intermediates);
            }
            // Everything that can fail has run by now (the certificate swap last, and it either happens or
            // throws): what is left is one reference write, so a failure never leaves half a reload in force.
            if (directory is not null)
            {
                _context.Directory = directory;
            }
            LogReloaded(certificate);
            return true;
        }
        catch (FileNotFoundException e)
        {
            // Spelled out here: the AOT build strips the runtime's own message texts down to resource keys.
            LogFailed(file, $"no such file {e.FileName}");
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            LogFailed(file, "permission denied");
            return false;
        }
        catch (CryptographicException e)
        {
            LogFailed(file, $"not a usable PEM certificate and matching unencrypted private key ({e.Message})");
            return false;
        }
        catch (Exception e) when (e is IOException or FormatException or ArgumentException)
        {
            LogFailed(file, e.Message);
            return false;
        }
        catch (Exception e)
        {
            LogFailed(file, e.GetType().Name + ": " + e.Message); // unexpected; still not worth stopping the server for
            return false;
        }
    }

    // Each pass serves every request made before it began; it ends when none came during it.
    private void RunUntilNoneIsPending()
    {
        while (true)
        {
            ReloadOnce();
            lock (_gate)
            {
                if (!_pending)
                {
                    _running = false;
                    return;
                }
                _pending = false;
            }
        }
    }

    // Everything is formatted before Begin: the log's lock is held only while the line is copied in.
    private void LogReloaded(ServerCertificate? certificate)
    {
        byte[] fingerprint = "none"u8.ToArray();
        string notAfter = "-";
        if (certificate is not null)
        {
            fingerprint = Encoding.ASCII.GetBytes(certificate.Certificate.GetCertHashString(HashAlgorithmName.SHA256));
            notAfter = certificate.Certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        }
        int entries = _context.Directory.EntryCount;
        _log.Begin(LogEvent.Reloaded)
            .Field("recipients"u8, entries)
            .Field("tls-sha256"u8, fingerprint)
            .Field("tls-not-after"u8, notAfter)
            .End();
    }

    private void LogFailed(string file, string reason)
    {
        byte[] text = Encoding.UTF8.GetBytes(reason);
        _log.Begin(LogEvent.ReloadFailed).Field("file"u8, file).Field("reason"u8, text).End();
    }
}
