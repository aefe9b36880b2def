// Contract: the server's log (README: one line per session and per accepted message, every command with
// --verbose), `time event-id name key=value ...` on stdout, values sanitised so one line stays one line.
// Lines are formatted into a buffer of the thread's own, with no lock held; the finished line is copied
// under a short lock into the shared buffer that a background thread writes out. No lock is ever held
// between Begin and End, so a line abandoned half-way (an exception while formatting) is simply lost and
// can never stop another session from logging. A line longer than the thread's buffer is cut there; a
// writer that cannot keep up loses whole lines, never the server's time or memory.
// What it does not do: rotate, filter by level, or ship anywhere; stdout goes where the service manager puts it.
using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace EdgeMta.Server.Logging;

/// <summary>Stable ids of the log lines, so that scripts can grep for them across versions.</summary>
public enum LogEvent
{
    Listening = 1,
    SessionOpened = 10,
    SessionClosed = 11,
    MessageAccepted = 20,
    MessageRefused = 21,
    Command = 30,
    Reply = 31,
    SpoolRecovered = 40,
    SpoolTrouble = 41,
    TransportTrouble = 42,
    Stopping = 50,
    Reloaded = 60,
    ReloadFailed = 61,
    SignalIgnored = 62,
    JournalDeleted = 68,
    SegmentCompacted = 69,
    Delivered = 70,
    Deferred = 71,
    Failed = 72,
    Bounce = 73,
    PossibleDuplicate = 74,
    RelayDead = 75,
    RelayAlive = 76,
    DeliveryTrouble = 77,
    DeliveryOff = 78,
    DeliveryStarted = 79,
    ProxyRejected = 80,
    RateLimited = 85,
    DnsblListed = 90,
    DnsblTrouble = 91,
    DnsblRefused = 92,
    StressOn = 95,
    StressOff = 96,
    RequestTimeout = 97,
    Rspamd = 100,
    RspamdFailed = 101,
    Pregreet = 105,
    NonSmtp = 106,
}

/// <summary>
/// The server's log: one line per session and per accepted message on stdout, every command and reply with
/// --verbose. Cheap on the hot path: a line is formatted in a per-thread UTF-8 buffer with no string built,
/// copied under a short lock, and a background thread writes the shared buffer out at most every 50 ms (one
/// write(2) for many lines instead of one per line: at 20k messages/s a syscall per line would cost more than
/// the message).
/// </summary>
public sealed class ServerLog : IDisposable
{
    private const int FlushThreshold = 64 * 1024;
    private const int MaxPending = 8 * 1024 * 1024;

    /// <summary>Longest line: far above any line the server writes (a value is cut at 256 octets, 768 once
    /// escaped, and the longest line has three such values); a longer one is cut here and still ends in LF.</summary>
    public const int MaxLineLength = 4096;

    [ThreadStatic]
    private static byte[]? _threadLine;

    private readonly Stream _out;
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new();
    private readonly Lock _flushLock = new();
    private readonly Thread _writer;
    private readonly AutoResetEvent _wake = new(false);
    private byte[] _pending = new byte[FlushThreshold * 2];
    private byte[] _spare = new byte[FlushThreshold * 2];
    private int _length;
    private long _dropped;
    private volatile bool _disposed;
    private volatile bool _held;

    /// <param name="clock">The time each line starts with (TimeProvider.System when null).</param>
    /// <param name="held">Keep every line until <see cref="Open"/>: the host's `listening on` lines must be the first
    /// output (docs/PROTOCOL.md), yet a session can start and log the moment its socket listens, before the host
    /// has printed them (a load balancer's health check does exactly that).</param>
    public ServerLog(Stream output, bool verbose, TimeProvider? clock = null, bool held = false)
    {
        _out = output;
        _held = held;
        _clock = clock ?? TimeProvider.System;
        Verbose = verbose;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "edgemta-log" };
        _writer.Start();
    }

    public bool Verbose { get; }

    /// <summary>Lines lost because the writer could not keep up (the shared buffer was full).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Starts a line; the returned writer appends key=value pairs and must be completed with
    /// <see cref="LineWriter.End"/>. Takes no lock: a line never ended is lost, nothing else.</summary>
    public LineWriter Begin(LogEvent id)
    {
        var line = new LineWriter(this, _threadLine ??= new byte[MaxLineLength]);
        line.Raw(_clock.GetUtcNow().UtcDateTime);
        line.Raw(" "u8);
        line.Number((int)id);
        line.Raw(" "u8);
        line.Raw(Name(id));
        return line;
    }

    /// <summary>Writes <paramref name="first"/>, then every line held so far, and stops holding.</summary>
    public void Open(ReadOnlySpan<byte> first)
    {
        lock (_flushLock)
        {
            Write(first);
            _held = false;
        }
        Flush();
    }

    /// <summary>Writes everything pending now (used at shutdown and before exit); nothing while held.</summary>
    public void Flush()
    {
        // One flusher at a time (the writer thread, Stop, Dispose): a second one swapping the buffers while the
        // first still writes from one would hand that buffer back to the loggers mid-write.
        lock (_flushLock)
        {
            if (_held) return;
            byte[] buffer;
            int length;
            lock (_lock)
            {
                (buffer, length) = (_pending, _length);
                (_pending, _spare, _length) = (_spare, _pending, 0);
            }
            Write(buffer.AsSpan(0, length));
        }
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        try
        {
            _out.Write(bytes);
            _out.Flush();
        }
        catch (IOException)
        {
            // stdout gone (closed pipe): the server keeps serving mail; logging is not worth dying for.
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _held = false;   // a start that failed before Open: its lines still go out
        _wake.Set();
        // A writer stuck in write(2) (stdout a full pipe nobody reads) holds the flush: then the last lines are
        // lost rather than the exit hung until the service manager's SIGKILL.
        if (_writer.Join(TimeSpan.FromSeconds(2))) Flush();
    }

    // A finished line (LF included) into the shared buffer. The lock statement releases on any exception,
    // an allocation failure in the resize included.
    private void Append(ReadOnlySpan<byte> line)
    {
        bool wake;
        lock (_lock)
        {
            if (_length + line.Length > _pending.Length)
            {
                if (_pending.Length >= MaxPending)
                {
                    _dropped++; // the writer cannot keep up: lose log text, never stall a session
                    return;
                }
                Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _length + line.Length));
            }
            line.CopyTo(_pending.AsSpan(_length));
            _length += line.Length;
            wake = _length >= FlushThreshold;
        }
        if (wake) _wake.Set();
    }

    private void WriteLoop()
    {
        while (!_disposed)
        {
            _wake.WaitOne(50);
            Flush();
        }
    }

    private static ReadOnlySpan<byte> Name(LogEvent id) => id switch
    {
        LogEvent.Listening => "listening"u8,
        LogEvent.SessionOpened => "session-open"u8,
        LogEvent.SessionClosed => "session-close"u8,
        LogEvent.MessageAccepted => "message-accepted"u8,
        LogEvent.MessageRefused => "message-refused"u8,
        LogEvent.Command => "command"u8,
        LogEvent.Reply => "reply"u8,
        LogEvent.SpoolRecovered => "spool-recovered"u8,
        LogEvent.SpoolTrouble => "spool-trouble"u8,
        LogEvent.TransportTrouble => "transport-trouble"u8,
        LogEvent.Stopping => "stopping"u8,
        LogEvent.Reloaded => "reloaded"u8,
        LogEvent.ReloadFailed => "reload-failed"u8,
        LogEvent.SignalIgnored => "signal-ignored"u8,
        LogEvent.Delivered => "delivered"u8,
        LogEvent.Deferred => "deferred"u8,
        LogEvent.Failed => "failed"u8,
        LogEvent.Bounce => "bounce"u8,
        LogEvent.PossibleDuplicate => "possible-duplicate"u8,
        LogEvent.RelayDead => "relay-dead"u8,
        LogEvent.RelayAlive => "relay-alive"u8,
        LogEvent.DeliveryTrouble => "delivery-trouble"u8,
        LogEvent.DeliveryOff => "delivery-off"u8,
        LogEvent.DeliveryStarted => "delivery-start"u8,
        LogEvent.Pregreet => "pregreet"u8,
        LogEvent.NonSmtp => "non-smtp"u8,
        LogEvent.RateLimited => "rate-limited"u8,
        LogEvent.DnsblListed => "dnsbl-listed"u8,
        LogEvent.DnsblTrouble => "dnsbl-trouble"u8,
        LogEvent.DnsblRefused => "dnsbl-refused"u8,
        LogEvent.ProxyRejected => "proxy-rejected"u8,
        LogEvent.JournalDeleted => "journal-deleted"u8,
        LogEvent.SegmentCompacted => "segment-compacted"u8,
        LogEvent.StressOn => "stress-on"u8,
        LogEvent.StressOff => "stress-off"u8,
        LogEvent.RequestTimeout => "request-timeout"u8,
        LogEvent.Rspamd => "rspamd"u8,
        LogEvent.RspamdFailed => "rspamd-failed"u8,
        _ => "event"u8,
    };

    /// <summary>One line being formatted in the calling thread's buffer: use it on that thread, in one
    /// expression or a few statements, and finish it with <see cref="End"/>; never keep it.</summary>
    public struct LineWriter
    {
        private readonly ServerLog _log;
        private readonly byte[] _buffer;
        private int _length;

        internal LineWriter(ServerLog log, byte[] buffer)
        {
            _log = log;
            _buffer = buffer;
        }

        public LineWriter Field(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            Raw(" "u8);
            Raw(key);
            Raw("="u8);
            Sanitized(value);
            return this;
        }

        public LineWriter Field(ReadOnlySpan<byte> key, string? value)
        {
            Span<byte> utf8 = stackalloc byte[256];
            value ??= "";
            int n = Encoding.UTF8.GetBytes(value.AsSpan(0, Math.Min(value.Length, 80)), utf8);
            return Field(key, utf8[..n]);
        }

        /// <summary>key="value" for text with spaces (a next hop's reply, docs/DELIVERY.md "Log lines"): spaces stay,
        /// the quote, '%', controls and non-ASCII are %XX, so the line still cannot be forged or split.</summary>
        public LineWriter Quoted(ReadOnlySpan<byte> key, string? value)
        {
            Span<byte> utf8 = stackalloc byte[768];
            value ??= "";
            int n = Encoding.UTF8.GetBytes(value.AsSpan(0, Math.Min(value.Length, 256)), utf8);
            Raw(" "u8);
            Raw(key);
            Raw("=\""u8);
            Sanitized(utf8[..n], keepSpaces: true);
            Raw("\""u8);
            return this;
        }

        public LineWriter Field(ReadOnlySpan<byte> key, long value)
        {
            Raw(" "u8);
            Raw(key);
            Raw("="u8);
            Number(value);
            return this;
        }

        /// <summary>Ends the line and hands it to the log (the only step that takes a lock).</summary>
        public void End()
        {
            _buffer[_length] = (byte)'\n'; // Raw keeps the last octet for it
            _log.Append(_buffer.AsSpan(0, _length + 1));
        }

        /// <summary>Appends what fits: the buffer keeps its last octet for the LF, so a long line is cut, never grown.</summary>
        internal void Raw(ReadOnlySpan<byte> bytes)
        {
            int room = _buffer.Length - 1 - _length;
            if (bytes.Length > room) bytes = bytes[..room];
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
        }

        internal void Number(long value)
        {
            Span<byte> digits = stackalloc byte[20];
            Utf8Formatter.TryFormat(value, digits, out int n);
            Raw(digits[..n]);
        }

        internal void Raw(DateTime time)
        {
            Span<byte> text = stackalloc byte[32];
            time.TryFormat(text, out int n, "yyyy-MM-ddTHH:mm:ss.fffZ");
            Raw(text[..n]);
        }

        // Client-supplied text (HELO names, addresses) must not forge log lines: controls, spaces and
        // non-ASCII are written as %XX, and a value is cut at 256 octets.
        private void Sanitized(ReadOnlySpan<byte> value, bool keepSpaces = false)
        {
            if (value.Length > 256) value = value[..256];
            int start = 0;
            for (int i = 0; i < value.Length; i++)
            {
                byte b = value[i];
                if (b > 0x20 && b < 0x7F && b != (byte)'%' && b != (byte)'"') continue;
                if (b == 0x20 && keepSpaces) continue;
                Raw(value[start..i]);
                Span<byte> escaped = [(byte)'%', Hex(b >> 4), Hex(b & 0xF)];
                Raw(escaped);
                start = i + 1;
            }
            Raw(value[start..]);
        }

        private static byte Hex(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'A' + nibble - 10);
    }
}
