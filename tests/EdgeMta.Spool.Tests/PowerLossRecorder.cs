// The power-loss simulation's recorder: a SpoolIo that forwards every call to SpoolIo.System and logs it,
// with one global sequence number taken just before the call and one just after, so that the simulator
// (PowerLossImage.cs) can tell, for any cut point, which calls had ended, which were in flight, and which
// had not started. Writes keep a copy of their bytes (all-zero writes keep only their length: the 1 MiB
// zero fills of a new segment); a hole punched at a segment's release is logged as a write of zeros.
// The workload logs each acknowledgement (the moment its CommitAsync returned Committed) as an event too.
// What it does not do: fail, delay or reorder anything; log reads or closes (they change no file).
// With RefuseDirect it opens files without O_DIRECT, as a filesystem that refuses it would (the spool's
// buffered fallback), whatever filesystem the test runs on.
// How it fails: it does not; a call's errno is logged with it and returned unchanged.
// The sequence numbers are conservative for the simulation: a call is logged as started a little before
// it did and as ended a little after, so it looks in flight for longer, never durable sooner.
using System.Collections.Concurrent;
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool.Tests;

internal enum IoKind : byte { Create, Allocate, Write, SyncData, SyncDirectory, Delete, Ack }

internal sealed class IoEvent
{
    public required IoKind Kind { get; init; }
    public required long Start { get; init; }
    public required long End { get; init; }
    /// <summary>The file (a queue id for an Ack).</summary>
    public required string Path { get; init; }
    public long Offset { get; init; }
    public long Length { get; init; }
    /// <summary>What a write wrote; null for zeros (a zero fill or a punched hole).</summary>
    public byte[]? Bytes { get; init; }
    /// <summary>A write with RWF_DSYNC.</summary>
    public bool Sync { get; init; }
    public int Result { get; init; }
    /// <summary>Create: the file was opened O_DIRECT.</summary>
    public bool Direct { get; init; }

    public override string ToString() => $"{Start}-{End} {Kind} {System.IO.Path.GetFileName(Path)} @{Offset} +{Length}{(Sync ? " dsync" : "")}{(Result != 0 ? $" errno {Result}" : "")}";
}

internal sealed unsafe class RecordingSpoolIo : SpoolIo
{
    private long _sequence;
    private readonly ConcurrentDictionary<int, string> _paths = new();
    private readonly List<IoEvent> _events = new(1 << 14);
    private readonly Lock _gate = new();

    private long Next() => Interlocked.Increment(ref _sequence);

    private void Add(IoEvent e)
    {
        lock (_gate) _events.Add(e);
    }

    private string PathOf(int fd) => _paths.TryGetValue(fd, out var p) ? p : throw new InvalidOperationException($"fd {fd} was not created through the seam");

    /// <summary>Every event so far, in order of start.</summary>
    public IoEvent[] Events()
    {
        IoEvent[] all;
        lock (_gate) all = _events.ToArray();
        Array.Sort(all, (a, b) => a.Start.CompareTo(b.Start));
        return all;
    }

    /// <summary>The workload's acknowledgement of <paramref name="queueId"/>: logged when CommitAsync returned Committed.</summary>
    public long Ack(string queueId)
    {
        long s = Next();
        Add(new IoEvent { Kind = IoKind.Ack, Start = s, End = s, Path = queueId });
        return s;
    }

    /// <summary>Opens every file through the page cache, as a filesystem that refuses O_DIRECT makes the spool do
    /// (many FUSE ones; tmpfs before Linux 6.6, which takes it now): the buffered fallback, pwrite and fdatasync.</summary>
    public bool RefuseDirect { get; init; }

    public override int Create(string path, out int fd, out bool direct)
    {
        long start = Next();
        int err;
        if (RefuseDirect)
        {
            direct = false;
            fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_CREAT | LibC.O_EXCL, 0x180 /* 0600 */);
            err = fd >= 0 ? 0 : LibC.LastError;
        }
        else
        {
            err = SpoolIo.System.Create(path, out fd, out direct);
        }
        long end = Next();
        if (err == 0) _paths[fd] = path;
        Add(new IoEvent { Kind = IoKind.Create, Start = start, End = end, Path = path, Result = err, Direct = direct });
        return err;
    }

    public override int Allocate(int fd, int mode, long offset, long length)
    {
        string path = PathOf(fd);
        long start = Next();
        int err = SpoolIo.System.Allocate(fd, mode, offset, length);
        long end = Next();
        // A punched hole reads as zeros from then on: for a crash, the same as a write of zeros.
        var kind = (mode & LibC.FALLOC_FL_PUNCH_HOLE) != 0 ? IoKind.Write : IoKind.Allocate;
        Add(new IoEvent { Kind = kind, Start = start, End = end, Path = path, Offset = offset, Length = length, Result = err });
        return err;
    }

    public override int Write(int fd, LibC.IoVec* iov, int count, long offset, bool sync)
    {
        string path = PathOf(fd);
        long total = 0;
        bool zero = true;
        for (int i = 0; i < count; i++)
        {
            total += (long)iov[i].Length;
            if (zero && new ReadOnlySpan<byte>(iov[i].Base, (int)iov[i].Length).ContainsAnyExcept((byte)0)) zero = false;
        }
        byte[]? copy = null;
        if (!zero)
        {
            // Copied before the call: the system call may advance the vectors (a short write).
            copy = new byte[total];
            long at = 0;
            for (int i = 0; i < count; i++)
            {
                new ReadOnlySpan<byte>(iov[i].Base, (int)iov[i].Length).CopyTo(copy.AsSpan((int)at));
                at += (long)iov[i].Length;
            }
        }
        long start = Next();
        int err = SpoolIo.System.Write(fd, iov, count, offset, sync);
        long end = Next();
        Add(new IoEvent { Kind = IoKind.Write, Start = start, End = end, Path = path, Offset = offset, Length = total, Bytes = copy, Sync = sync, Result = err });
        return err;
    }

    public override int Read(int fd, byte* buffer, int length, long offset) => SpoolIo.System.Read(fd, buffer, length, offset);

    public override int SyncData(int fd)
    {
        string path = PathOf(fd);
        long start = Next();
        int err = SpoolIo.System.SyncData(fd);
        long end = Next();
        Add(new IoEvent { Kind = IoKind.SyncData, Start = start, End = end, Path = path, Result = err });
        return err;
    }

    public override int SyncDirectory(string path)
    {
        long start = Next();
        int err = SpoolIo.System.SyncDirectory(path);
        long end = Next();
        Add(new IoEvent { Kind = IoKind.SyncDirectory, Start = start, End = end, Path = path, Result = err });
        return err;
    }

    public override void Close(int fd) => SpoolIo.System.Close(fd);

    public override void Delete(string path)
    {
        long start = Next();
        SpoolIo.System.Delete(path);
        long end = Next();
        Add(new IoEvent { Kind = IoKind.Delete, Start = start, End = end, Path = path });
    }
}
