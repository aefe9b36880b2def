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
}

/// <summary>
/// The server's log: one line per session and per accepted message on stdout, every command and reply with
/// --verbose. Cheap on the hot path: a line is formatted straight into a shared UTF-8 buffer under a short lock,
/// with no string built, and a background thread writes the buffer out at most every 50 ms (one write(2) for
/// many lines instead of one per line: at 20k messages/s a syscall per line would cost more than the message).
/// What it does not do: rotate, filter by level, or ship anywhere; stdout goes where the service manager puts it.
/// Lines are `time event-id name key=value ...`, values sanitised so one line stays one line.
/// </summary>
public sealed class ServerLog : IDisposable
{
    private const int FlushThreshold = 64 * 1024;
    private const int MaxPending = 8 * 1024 * 1024;

    private readonly Stream _out;
    private readonly Lock _lock = new();
    private readonly Thread _writer;
    private readonly AutoResetEvent _wake = new(false);
    private byte[] _pending = new byte[FlushThreshold * 2];
    private byte[] _spare = new byte[FlushThreshold * 2];
    private int _length;
    private long _dropped;
    private volatile bool _disposed;

    public ServerLog(Stream output, bool verbose)
    {
        _out = output;
        Verbose = verbose;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "edgemta-log" };
        _writer.Start();
    }

    public bool Verbose { get; }

    /// <summary>Starts a line; the returned writer appends key=value pairs and must be completed with <see cref="LineWriter.End"/>.</summary>
    public LineWriter Begin(LogEvent id)
    {
        _lock.Enter();
        var line = new LineWriter(this);
        line.Raw(DateTime.UtcNow);
        line.Raw(" "u8);
        line.Number((int)id);
        line.Raw(" "u8);
        line.Raw(Name(id));
        return line;
    }

    /// <summary>Writes everything pending now (used at shutdown and before exit).</summary>
    public void Flush()
    {
        byte[] buffer;
        int length;
        lock (_lock)
        {
            (buffer, length) = (_pending, _length);
            (_pending, _spare, _length) = (_spare, _pending, 0);
        }
        if (length > 0)
        {
            try
            {
                _out.Write(buffer, 0, length);
                _out.Flush();
            }
            catch (IOException)
            {
                // stdout gone (closed pipe): the server keeps serving mail; logging is not worth dying for.
            }
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _wake.Set();
        _writer.Join(TimeSpan.FromSeconds(2));
        Flush();
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
        _ => "event"u8,
    };

    /// <summary>Appends to the line under the log's lock; <see cref="End"/> releases it. Never held across I/O.</summary>
    public readonly struct LineWriter
    {
        private readonly ServerLog _log;

        internal LineWriter(ServerLog log) => _log = log;

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

        public LineWriter Field(ReadOnlySpan<byte> key, long value)
        {
            Raw(" "u8);
            Raw(key);
            Raw("="u8);
            Number(value);
            return this;
        }

        public void End()
        {
            Raw("\n"u8);
            ServerLog log = _log;
            bool wake = log._length >= FlushThreshold;
            log._lock.Exit();
            if (wake) log._wake.Set();
        }

        internal void Raw(ReadOnlySpan<byte> bytes)
        {
            ServerLog log = _log;
            if (log._length + bytes.Length > log._pending.Length)
            {
                if (log._pending.Length >= MaxPending)
                {
                    log._dropped++; // the writer cannot keep up: lose log text, never stall a session
                    return;
                }
                Array.Resize(ref log._pending, Math.Max(log._pending.Length * 2, log._length + bytes.Length));
            }
            bytes.CopyTo(log._pending.AsSpan(log._length));
            log._length += bytes.Length;
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
        private void Sanitized(ReadOnlySpan<byte> value)
        {
            if (value.Length > 256) value = value[..256];
            int start = 0;
            for (int i = 0; i < value.Length; i++)
            {
                byte b = value[i];
                if (b > 0x20 && b < 0x7F && b != (byte)'%') continue;
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
