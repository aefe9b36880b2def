// The spool: every accepted message lives here until the next hop takes it (RFC 5321 §6.1: after 250 the
// server MUST NOT lose it, even if the host crashes).
// What it does: appends messages to pre-allocated segment files with direct, block-aligned writes, made
// durable by the write itself (RWF_DSYNC), several in flight on writer threads, each carrying every small
// commit queued when it started (MessageSpool.Writers.cs); prepares segments ahead on a thread of its own
// (MessageSpool.Supply.cs); answers 451 to any commit still waiting at its deadline (MessageSpool.Deadlines.cs);
// and checks or repairs every segment before it serves (SpoolRecovery.cs).
// What it does not do: it knows nothing of SMTP or sockets. The envelope is fields of bytes; size limits,
// reply codes and retries are the session's. Reading for delivery is SpoolReader's, offline.
// How it fails: never with a 5xx meaning. Commits return Full (ENOSPC/EDQUOT: 452 4.3.1) or Failed
// (any other I/O error, or the deadline: 451 4.3.0). A failed write fails its commits and retires the
// segment; new regions go to the next prepared segment.
// Threads: Begin/Append/Commit from any number of sessions, which only copy bytes and queue work; no file
// is touched on their threads. Writer threads reserve regions under a lock (memory only) and write.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool : IAsyncDisposable, IDisposable
{
    private readonly string _directory;
    private readonly SpoolOptions _options;
    private readonly object _gate = new();   // Monitor: the segment tail, the current and the spare segment
    private readonly int _lockFd;
    private Segment? _current;
    private long _nextSequence;
    private bool _disposed;

    internal readonly long MaxPayload;
    internal readonly long SegmentUsable;
    internal readonly bool SyncAlways;

    private readonly SpoolMessage?[] _pool;
    private int _pooled;
    private readonly Lock _poolGate = new();
    private long _idCounter = Random.Shared.Next(1 << 20);
    internal readonly SpoolBuffers Buffers;
    internal ISpoolObserver? Observer => _options.Observer;
    /// <summary>Unwritten region bytes at which a message starts streaming to its segment: four chunks (128 KiB by
    /// default), at most half a segment. Below it a message is written whole at its commit.</summary>
    internal readonly long StreamThreshold;
    internal readonly SpoolIo Io;

    public string Directory => _directory;

    /// <summary>Flush counts and latency since start (the host publishes them).</summary>
    public SpoolCounters Counters { get; } = new();

    private MessageSpool(SpoolOptions options, int lockFd, long nextSequence)
    {
        _options = options;
        _directory = Path.GetFullPath(options.Directory);
        _lockFd = lockFd;
        _nextSequence = nextSequence;
        FirstNewSegment = nextSequence;
        MaxPayload = (long)options.MaxMessageSize + options.MaxEnvelopeSize;
        SegmentUsable = options.SegmentSize - SpoolFormat.SegmentHeaderSize;
        SyncAlways = options.Sync == SpoolSync.Always;
        _floor = options.MinimumFreeBytes >= 0 ? options.MinimumFreeBytes : options.SegmentSize + options.MaxMessageSize;
        _clock = options.Clock;
        _roomCheckTicks = options.FreeSpaceCheckIntervalMs * _clock.TimestampFrequency / 1000;
        _failingTicks = options.FailingWindowMs * _clock.TimestampFrequency / 1000;
        _pool = new SpoolMessage?[Math.Max(1, options.MaxPooledMessages)];
        Buffers = new SpoolBuffers(options.FirstBufferSize, 2 * _pool.Length);
        Io = options.Io ?? SpoolIo.System;
        long chunk = Buffers.ChunkSize;
        StreamThreshold = Math.Max(chunk, Math.Min(4 * chunk, SegmentUsable / 2 / chunk * chunk));
        _timeoutTicks = (long)(options.CommitTimeout.TotalSeconds * _clock.TimestampFrequency);
        StartSupply();
        StartWriters();
        StartDeadlines();
    }

    /// <summary>Largest message the spool takes: 1 GiB. Its region (envelope and headers included) stays far below
    /// the 2 GiB a segment may span; above about 1.07 GB a message once grew a segment recovery refused.</summary>
    public const int MaxMessageSizeLimit = 1 << 30;

    /// <summary>Takes the spool directory for this process, recovers it (every record checked; torn tails cut;
    /// damaged records quarantined) and opens it for appending. Call before the server listens.</summary>
    /// <exception cref="IOException">The directory is in use by another process, or cannot be read.</exception>
    public static MessageSpool Open(SpoolOptions options, out RecoveryReport report) => Open(options, null, out report);

    /// <summary>The same, and <paramref name="recovered"/> sees every committed record recovery keeps, in segment
    /// order, before the spool takes new mail: how the delivery agent learns what a restart found.</summary>
    public static MessageSpool Open(SpoolOptions options, SpoolRecordVisitor? recovered, out RecoveryReport report)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SegmentSize, 64L << 10);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.SegmentSize, 1L << 30);
        // The biggest region a message may need must fit a segment that recovery can still read (an int span).
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)options.MaxMessageSize, MaxMessageSizeLimit);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.HeartbeatPeriodMs, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(options.FailingWindowMs);   // 0: MAIL never hears Failing
        string dir = Path.GetFullPath(options.Directory);
        System.IO.Directory.CreateDirectory(dir);
        int fd = TakeDirectoryLock(dir);
        try
        {
            report = SpoolRecovery.Run(dir, repair: true, recovered);
            return new MessageSpool(options, fd, report.LastSequence + 1);
        }
        catch
        {
            LibC.Close(fd);
            throw;
        }
    }

    /// <summary>One writer or drainer per spool: flock on the spool directory itself, held for the life of the
    /// process. Not on a file in it: a lock file removed by hand (or by a tmp cleaner) let a second process in,
    /// whose recovery deleted the first one's newest segment before its first commit (audit finding).</summary>
    internal static int TakeDirectoryLock(string dir)
    {
        int fd = LibC.Open(dir, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"cannot open {dir}: errno {LibC.LastError}");
        // A few tries: a child this process forks holds a copy of the lock's file description until it
        // execs (O_CLOEXEC), so a lock just released can look taken for a moment.
        int tries = 0;
        while (LibC.Flock(fd, LibC.LOCK_EX | LibC.LOCK_NB) != 0)
        {
            int err = LibC.LastError;
            if (err == LibC.EWOULDBLOCK && ++tries < 20) { Thread.Sleep(10); continue; }
            LibC.Close(fd);
            throw new IOException(err == LibC.EWOULDBLOCK ? $"spool {dir} is in use by another process" : $"cannot lock {dir}: errno {err}");
        }
        return fd;
    }

    /// <summary>Segment files now in the spool directory, their bytes, and the bytes still free for an
    /// unprivileged writer at the last statvfs (-1 when it failed). Reads the directory: for a scrape, not per message.</summary>
    public SpoolUsage MeasureUsage()
    {
        long segments = 0, bytes = 0;
        foreach (FileInfo file in new DirectoryInfo(_directory).EnumerateFiles("*.seg"))
        {
            try
            {
                bytes += file.Length;
                segments++;
            }
            catch (FileNotFoundException)
            {
                // deleted since the listing (an emptied segment): not in the spool any more
            }
        }
        return new SpoolUsage(segments, bytes, Volatile.Read(ref _freeBytes));
    }

    /// <summary>Starts a message. The envelope fields are copied at once; add recipients with
    /// <see cref="SpoolMessage.AddRecipient"/>, then stream the data with Append.</summary>
    public SpoolMessage Begin(ReadOnlySpan<byte> clientAddress, ReadOnlySpan<byte> heloName, ReadOnlySpan<byte> reversePath, ReadOnlySpan<byte> mailParameters)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SpoolMessage m = Rent();
        m.Start(NextQueueId(m), clientAddress, heloName, reversePath, mailParameters);
        return m;
    }

    private SpoolMessage Rent()
    {
        lock (_poolGate)
        {
            if (_pooled > 0)
            {
                var m = _pool[--_pooled]!;
                _pool[_pooled] = null;
                return m;
            }
        }
        return new SpoolMessage(this);
    }

    internal void Return(SpoolMessage m)
    {
        lock (_poolGate)
        {
            if (_pooled < _pool.Length && !_disposed)
            {
                _pool[_pooled++] = m;
                return;
            }
        }
        m.FreeBuffers();
    }

    // Queue id: 10 base32 digits of the Begin time in ms, 6 of a per-process counter that starts at random.
    // Unique across restarts unless the clock runs back and the counter lands on the same value.
    private static ReadOnlySpan<byte> Base32 => "0123456789ABCDEFGHJKMNPQRSTVWXYZ"u8;

    private long NextQueueId(SpoolMessage m)
    {
        long ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long counter = Interlocked.Increment(ref _idCounter);
        Span<byte> id = m.IdBuffer;
        ulong t = (ulong)ms;
        for (int i = 9; i >= 0; i--) { id[i] = Base32[(int)(t & 31)]; t >>= 5; }
        ulong c = (ulong)counter;
        for (int i = 15; i >= 10; i--) { id[i] = Base32[(int)(c & 31)]; c >>= 5; }
        return ms;
    }

    public async ValueTask DisposeAsync()
    {
        await Task.Run(Dispose).ConfigureAwait(false);
    }

    /// <summary>Stops taking messages, lets the writers finish every commit already queued, gives back the unused
    /// end of the current segment, deletes the spare one, and unlocks.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            Monitor.PulseAll(_gate);
        }
        StopWriters();
        StopSupply();
        StopDeadlines();
        lock (_gate)
        {
            _current?.Release();
            _current = null;
            _spare?.Release();
            _spare = null;
        }
        lock (_poolGate)
        {
            while (_pooled > 0)
            {
                _pool[--_pooled]!.FreeBuffers();
                _pool[_pooled] = null;
            }
        }
        Buffers.Dispose();
        CloseReadFds();
        LibC.Close(_lockFd);
    }
}
