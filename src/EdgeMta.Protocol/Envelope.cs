// Contract: the SMTP envelope of the message in progress (RFC 5321 §2.3.1), in session-owned byte storage.
//
// It holds the client's address and HELO/EHLO name (for the session), and the reverse path with its MAIL
// parameters and each forward path with its RCPT parameters (for the transaction), all as raw octets
// (parameters unparsed, as the client sent them after validation). Storage is two arrays that grow to the
// largest envelope seen and are then reused: no allocation per command or per message once warm.
// Paths are stored without brackets and without any source route; "<>" is an empty reverse path.
using System.Runtime.CompilerServices;

namespace EdgeMta.Protocol;

/// <summary>The envelope the session builds and gives to <see cref="IMessageStore.Begin"/>. Valid until the session moves on.</summary>
public sealed class Envelope
{
    private struct Slice
    {
        public int Start;
        public int Length;
    }

    private struct RecipientSlots
    {
        public Slice Path;
        public Slice Parameters;
    }

    // Storage starts empty or small and grows on first use, then is kept for the pooled session's next
    // connection: an idle connection (no MAIL yet) holds almost nothing (README, "Performance work": 10,000 idle connections).
    private byte[] _session = new byte[64];
    private int _sessionUsed;
    private Slice _clientAddress;
    private Slice _heloName;

    private byte[] _transaction = [];
    private int _transactionUsed;
    private Slice _reversePath;
    private Slice _mailParameters;
    private RecipientSlots[] _recipients = [];

    /// <summary>The client's IP address as text ("192.0.2.1", "2001:db8::1").</summary>
    public ReadOnlySpan<byte> ClientAddress => _session.AsSpan(_clientAddress.Start, _clientAddress.Length);
    /// <summary>The HELO/EHLO argument, sanitised (no CR, LF or other control octets).</summary>
    public ReadOnlySpan<byte> HeloName => _session.AsSpan(_heloName.Start, _heloName.Length);
    /// <summary>EHLO (not HELO) was used.</summary>
    public bool Extended { get; internal set; }
    /// <summary>The session is under TLS (STARTTLS done).</summary>
    public bool Tls { get; internal set; }

    /// <summary>The MAIL FROM mailbox without brackets or route; empty for the null path "&lt;&gt;".</summary>
    public ReadOnlySpan<byte> ReversePath => _transaction.AsSpan(_reversePath.Start, _reversePath.Length);
    /// <summary>The MAIL parameters as sent ("SIZE=1000 BODY=8BITMIME"), empty when none.</summary>
    public ReadOnlySpan<byte> MailParameters => _transaction.AsSpan(_mailParameters.Start, _mailParameters.Length);
    /// <summary>SIZE=, or -1.</summary>
    public long DeclaredSize { get; internal set; } = -1;
    public BodyType Body { get; internal set; }
    public bool SmtpUtf8 { get; internal set; }

    public int RecipientCount { get; private set; }

    /// <summary>Forward path <paramref name="i"/>, without brackets or route.</summary>
    public ReadOnlySpan<byte> GetForwardPath(int i)
    {
        RecipientSlots r = _recipients[i];
        return _transaction.AsSpan(r.Path.Start, r.Path.Length);
    }

    /// <summary>The RCPT parameters of recipient <paramref name="i"/> as sent, empty when none.</summary>
    public ReadOnlySpan<byte> GetRecipientParameters(int i)
    {
        RecipientSlots r = _recipients[i];
        return _transaction.AsSpan(r.Parameters.Start, r.Parameters.Length);
    }

    internal void SetClient(ReadOnlySpan<byte> address)
    {
        _sessionUsed = 0;
        _clientAddress = Append(ref _session, ref _sessionUsed, address);
        _heloName = default;
        Extended = false;
        Tls = false;
    }

    /// <summary>
    /// Stores the HELO/EHLO name with every control octet, DEL and non-ASCII octet replaced by '?' (RFC 5321
    /// §4.4: the trace must stay one well-formed header; EHLO names are ASCII, A-labels under RFC 6531 §3.7.1).
    /// </summary>
    internal void SetHelo(ReadOnlySpan<byte> name, bool extended)
    {
        _sessionUsed = _clientAddress.Start + _clientAddress.Length;
        _heloName = Append(ref _session, ref _sessionUsed, name);
        Span<byte> stored = _session.AsSpan(_heloName.Start, _heloName.Length);
        for (int i = 0; i < stored.Length; i++)
        {
            if (stored[i] < 0x20 || stored[i] >= 0x7F)
            {
                stored[i] = (byte)'?';
            }
        }
        Extended = extended;
    }

    internal void ForgetHelo()
    {
        _heloName = default;
        Extended = false;
    }

    internal void BeginTransaction(ReadOnlySpan<byte> reversePath, ReadOnlySpan<byte> parameters, in MailParameters parsed)
    {
        ResetTransaction();
        _reversePath = Append(ref _transaction, ref _transactionUsed, reversePath);
        _mailParameters = Append(ref _transaction, ref _transactionUsed, parameters);
        DeclaredSize = parsed.DeclaredSize;
        Body = parsed.Body;
        SmtpUtf8 = parsed.SmtpUtf8;
    }

    internal void AddRecipient(ReadOnlySpan<byte> forwardPath, ReadOnlySpan<byte> parameters)
    {
        if (RecipientCount == _recipients.Length)
        {
            Array.Resize(ref _recipients, Math.Max(8, _recipients.Length * 2));
        }
        ref RecipientSlots r = ref _recipients[RecipientCount++];
        r.Path = Append(ref _transaction, ref _transactionUsed, forwardPath);
        r.Parameters = Append(ref _transaction, ref _transactionUsed, parameters);
    }

    internal void ResetTransaction()
    {
        _transactionUsed = 0;
        _reversePath = default;
        _mailParameters = default;
        RecipientCount = 0;
        DeclaredSize = -1;
        Body = BodyType.Unspecified;
        SmtpUtf8 = false;
    }

    /// <summary>Drops storage a big envelope grew (1,000 recipients with long parameters: about 0.5 MB), so a
    /// pooled session keeps only what a typical one needs while it waits for its next connection.</summary>
    internal void ReleaseGrownStorage()
    {
        if (_transaction.Length > KeptTransactionBytes)
        {
            _transaction = [];
        }
        if (_recipients.Length > KeptRecipientSlots)
        {
            _recipients = [];
        }
        if (_session.Length > KeptSessionBytes)
        {
            _session = new byte[64];
        }
    }

    /// <summary>Bytes of storage this envelope holds now (for tests).</summary>
    internal int StorageBytes => _transaction.Length + _session.Length + _recipients.Length * Unsafe.SizeOf<RecipientSlots>();

    internal const int KeptTransactionBytes = 4096;
    internal const int KeptRecipientSlots = 32;
    internal const int KeptSessionBytes = 1024;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Slice Append(ref byte[] buffer, ref int used, ReadOnlySpan<byte> value)
    {
        if (used + value.Length > buffer.Length)
        {
            Array.Resize(ref buffer, Math.Max(Math.Max(buffer.Length * 2, 256), used + value.Length));
        }
        value.CopyTo(buffer.AsSpan(used));
        var slice = new Slice { Start = used, Length = value.Length };
        used += value.Length;
        return slice;
    }
}
