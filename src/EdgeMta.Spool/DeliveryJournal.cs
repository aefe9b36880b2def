// The delivery journal's writer (FORMAT.md, "Delivery journal"): appends 64-byte records to the current
// journal file and makes each call's records durable in one direct write of the blocks holding them, with
// RWF_DSYNC. Calls take turns (one lock, the write inside it), so a block is never in two writes at once.
// Not yet shared: FORMAT.md's design has journal records join the spool writers' batches, one durable write
// for the commits and the records of a batch; until the delivery agent appends, the simple turn-taking is
// what is tested here.
// Blocking: Append waits for the disk. Never call it from a socket thread. Records go out of an aligned
// in-memory image of the file (4 MiB by default), written block-whole.
// Files: DIR/journal/<seq:016x>.jnl, made like spool segments (Segment.TryCreate: fallocate, zeros written
// through, header, fdatasync, directory fsync); a full file, or one a failed write retired, is followed by a
// new one. A file no record went into is deleted when let go; otherwise its unused end is punched.
// How it fails: Append returns 0 or the errno of the write that carried its records; records of a failed
// write are not durable (the caller retries what needed them, a duplicate at worst).
using System.Runtime.InteropServices;

namespace EdgeMta.Spool;

public sealed unsafe partial class DeliveryJournal : IDisposable
{
    private readonly string _directory;
    private readonly long _fileSize;
    private readonly SpoolIo _io;
    private readonly Lock _gate = new();
    private Segment? _file;
    private byte* _image;
    private long _tail;         // next free slot offset in the current file
    private long _nextSequence;

    private DeliveryJournal(string directory, long fileSize, SpoolIo io, long nextSequence)
    {
        _directory = directory; _fileSize = fileSize; _io = io; _nextSequence = nextSequence;
    }

    /// <summary>Opens the journal of a spool directory for appending (a new file; old ones stay for the reader).</summary>
    public static DeliveryJournal Open(string spoolDirectory, long fileSize = 4 << 20) => Open(spoolDirectory, fileSize, SpoolIo.System);

    internal static DeliveryJournal Open(string spoolDirectory, long fileSize, SpoolIo io)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fileSize, 4096);
        string dir = Path.Combine(Path.GetFullPath(spoolDirectory), JournalReader.DirectoryName);
        System.IO.Directory.CreateDirectory(dir);
        long next = 1;
        foreach (string f in System.IO.Directory.GetFiles(dir, "*.jnl")) next = Math.Max(next, SpoolRecovery.SequenceOf(f) + 1);
        var journal = new DeliveryJournal(dir, (fileSize + 4095) & ~4095L, io, next);
        int err;
        lock (journal._gate) err = journal.RollLocked();
        if (err != 0) throw new IOException($"cannot create a journal file in {dir}: errno {err}");
        return journal;
    }

    /// <summary>Appends <paramref name="records"/> and returns once they are durable: 0, or the errno of the write
    /// (then none of them is durable for sure; the caller acts as if none were written).</summary>
    public int Append(ReadOnlySpan<JournalRecord> records)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_image == null, this);
            int i = 0;
            while (i < records.Length)
            {
                if (_file is null || _file.Retired || _tail + JournalRecord.Size > _fileSize)
                {
                    int e = RollLocked();
                    if (e != 0) return e;
                }
                long from = _tail;
                while (i < records.Length && _tail + JournalRecord.Size <= _fileSize)
                {
                    NoteSegmentsLocked(records[i]);   // before the write: a failed one may still reach the disk
                    records[i++].Write(new Span<byte>(_image + _tail, JournalRecord.Size), _file!.Salt, _tail);
                    _tail += JournalRecord.Size;
                }
                int err = WriteLocked(from, _tail);
                if (err != 0) return err;
            }
            return 0;
        }
    }

    // The blocks holding [from, to), whole, from the image, durably. A failure retires the file.
    private int WriteLocked(long from, long to)
    {
        long start = from & ~(long)(Segment.Block - 1);
        long end = (to + Segment.Block - 1) & ~(long)(Segment.Block - 1);
        Interlocked.Increment(ref _file!.Committed);
        int err = _file.Write(_image + start, (int)(end - start), start, durable: true);
        if (err != 0) _file.Retired = true;   // nothing more goes here; the next Append rolls to a new file
        return err;
    }

    // Under _gate: a new file and a clean image.
    private int RollLocked()
    {
        int err = Segment.TryCreate(_io, Path.Combine(_directory, $"{_nextSequence:x16}.jnl"), _directory, _nextSequence, _fileSize,
            writeZeros: true, JournalReader.Magic, out var fresh);
        if (err != 0) return err;
        _nextSequence++;
        LetGoLocked();
        _file = fresh;
        if (_image == null) _image = (byte*)NativeMemory.AlignedAlloc((nuint)_fileSize, Segment.BufferAlign);
        NativeMemory.Clear(_image, (nuint)_fileSize);
        // Records start at the second block: a direct write of the first could not include the header.
        _tail = Segment.Block;
        return 0;
    }

    // The file's tail is the journal's: its last release punches only what lies past the records.
    private void LetGoLocked()
    {
        if (_file is null) return;
        ClosedLocked(_file.Sequence, _tail > Segment.Block);
        _file.Tail = _tail;
        _file.Release();
        _file = null;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_image == null) return;
            LetGoLocked();
            NativeMemory.AlignedFree(_image);
            _image = null;
        }
    }
}
