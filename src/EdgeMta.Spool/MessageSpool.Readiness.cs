// The gate a session reads at MAIL: can a new message be stored now? Ready, Full (452 4.3.1) or Failing
// (451 4.3.0), answered before the client sends a byte of data (docs/PROTOCOL.md, "spool write fails").
// Failing: any real storage error (a write, a segment creation, a flush; its errno and the clock's timestamp)
// keeps the gate shut for SpoolOptions.FailingWindowMs (5 s). A read-only filesystem otherwise let every
// MAIL, RCPT and DATA through and refused at the final dot: 35,373 whole messages sent for nothing in 15 s.
// Postfix answers the same 451 4.3.0 at MAIL when it cannot create a queue file.
// Full: statvfs, at most once per FreeSpaceCheckIntervalMs: free bytes (f_bavail) under the byte floor, or
// free inodes (f_favail) under InodeFloor, where a segment could not even be created. statvfs runs on the
// spool's supply thread (MessageSpool.Supply.cs), never on the session's: on a stalled filesystem it blocks
// too. The gate answers from the last reading; a reading due asks the supply for a new one.
// What it does not do: it never probes the disk to find out whether a failure is over. The window simply
// lapses and the next messages try for real; if the fault persists, the first to reach the disk fails and
// the window starts again (a few refusals at the dot per window, not one per message).
// ENOSPC and EDQUOT are not failures here: they ask statvfs again at once (RecheckRoomSoon), so freed
// space reopens the gate without waiting.
// Cost: a clock read per call; once per interval a lock to wake the supply; no allocation.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

/// <summary>What <see cref="MessageSpool.Readiness"/> answers at MAIL.</summary>
public enum SpoolReadiness : byte
{
    /// <summary>A new message may start.</summary>
    Ready,
    /// <summary>Free bytes or inodes under the floor: 452 4.3.1 (RFC 3463 §3.4, RFC 5321 §4.2.5).</summary>
    Full,
    /// <summary>A storage error within SpoolOptions.FailingWindowMs: 451 4.3.0 (RFC 3463 §3.4).</summary>
    Failing,
}

public sealed partial class MessageSpool
{
    /// <summary>Free inodes below which the spool says Full. A message may need a new segment file (one inode),
    /// and recovery sets damage aside in copies: a few to spare, so the 452 comes before the ENOSPC.</summary>
    public const long InodeFloor = 16;

    private readonly TimeProvider _clock;
    private readonly long _floor;
    private readonly long _roomCheckTicks;
    private readonly long _failingTicks;
    private long _nextRoomCheck;
    private volatile bool _room = true;
    private volatile int _lastError;
    private long _lastErrorAt;

    /// <summary>Cheap gate for MAIL: Failing for a while after a storage error, Full below the free-space or
    /// inode floor, else Ready. statvfs runs at most once per FreeSpaceCheckIntervalMs.</summary>
    public SpoolReadiness Readiness
    {
        get
        {
            long now = _clock.GetTimestamp();
            if (_lastError != 0 && now - Volatile.Read(ref _lastErrorAt) < _failingTicks) return SpoolReadiness.Failing;
            if (now >= Volatile.Read(ref _nextRoomCheck))
            {
                Volatile.Write(ref _nextRoomCheck, now + _roomCheckTicks);
                lock (_gate)
                {
                    _roomCheckWanted = true;
                    Monitor.PulseAll(_gate);
                }
            }
            return _room ? SpoolReadiness.Ready : SpoolReadiness.Full;
        }
    }

    /// <summary>The errno of the last storage error (0: none since start), for the log: `errno=EROFS` says why
    /// a message was refused where `spool=error` does not. It outlives the Failing window.</summary>
    public int LastStorageError => _lastError;

    /// <summary>The decision on one statvfs: room when free bytes reach the floor and free inodes reach
    /// <see cref="InodeFloor"/>. A filesystem that reports no inode count at all (f_files 0: btrfs, many
    /// FUSE and network filesystems) has no inode limit to run into.</summary>
    internal static bool HasRoom(long availableBytes, long byteFloor, long availableInodes, long totalInodes)
        => availableBytes >= byteFloor && (totalInodes == 0 || availableInodes >= InodeFloor);

    /// <summary>Remembers a failed write, segment creation or flush. Only real errors: the EIO made up for a
    /// segment already retired, or for a spool closing, would hide the errno that caused it.</summary>
    internal void NoteStorageError(int errno)
    {
        if (errno == 0) return;
        if (errno is LibC.ENOSPC or LibC.EDQUOT)
        {
            RecheckRoomSoon();
            return;
        }
        long now = _clock.GetTimestamp();
        bool onset = _lastError == 0 || now - Volatile.Read(ref _lastErrorAt) >= _failingTicks;
        Volatile.Write(ref _lastErrorAt, now);
        _lastError = errno;
        if (onset) _options.StorageFailing?.Invoke(errno);
    }

    internal void RecheckRoomSoon() => Volatile.Write(ref _nextRoomCheck, long.MinValue);

    private long _freeBytes = -1;

    /// <summary>On the supply thread: one statvfs for the gate and the free-space gauge.</summary>
    private void CheckRoom()
    {
        if (LibC.FreeSpace(_directory, out long bytes, out long inodes, out long totalInodes) != 0)
        {
            Volatile.Write(ref _freeBytes, -1);
            _room = true;   // cannot tell: the writes will say
            return;
        }
        Volatile.Write(ref _freeBytes, bytes);
        _room = HasRoom(bytes, _floor, inodes, totalInodes);
        if (_room)
        {
            lock (_gate)
            {
                // Space came back: a creation that failed for want of it is tried now, not after its backoff, and
                // commits wait for that try instead of failing on the old ENOSPC.
                if (_supplyError is LibC.ENOSPC or LibC.EDQUOT)
                {
                    _supplyError = 0;
                    _retryAt = 0;
                    _backoffMs = FirstBackoffMs;
                }
            }
        }
    }
}
