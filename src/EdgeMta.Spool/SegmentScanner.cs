// Walks the regions of one segment and says what each is. Shared by recovery, the reader and the tools,
// so that what `verify` calls damage is exactly what recovery would quarantine.
// Rules (FORMAT.md, "Reading a segment"):
//  - a valid slot 0 gives the region length; slot 1 then says Uncommitted (zero commit word), Committed
//    (and the payload checksum must match), Consumed or Quarantined; a non-zero commit word that does not
//    check, or a payload that does not, is Damaged;
//  - a zero extent word is a hole, not the end: writes of neighbouring regions are in flight together, so
//    a later record can be durable while an earlier region's write never reached the disk (and the first
//    region starts at 512). The scanner looks for the next valid slot 0, skipping zeros fast; a hole of
//    zeros is nothing (never acknowledged), a hole with bytes in it is Damaged, and with no valid slot 0
//    after it the segment ends there;
//  - any other slot 0 is damage: the scanner resynchronises on the next valid slot 0 (64-byte steps; the
//    salt in the checksum keeps message bytes from passing for one) and reports the gap as Damaged;
//  - damage with no valid slot 0 anywhere after it is the last write, torn when the host stopped: the
//    non-zero rest of the file is a TornTail (recovery cuts it; it was never acknowledged).
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

internal enum RegionKind : byte { Record, Uncommitted, Consumed, Quarantined, Damaged, TornTail }

internal readonly struct ScannedRegion
{
    public readonly long Offset;
    public readonly long Length;
    public readonly RegionKind Kind;
    public readonly bool HasSlot0;
    public readonly string? Reason;

    public ScannedRegion(long offset, long length, RegionKind kind, bool hasSlot0, string? reason = null)
    {
        Offset = offset; Length = length; Kind = kind; HasSlot0 = hasSlot0; Reason = reason;
    }

    public long PayloadOffset => Offset + SpoolFormat.RecordHeaderSize;
}

internal ref struct SegmentScanner
{
    private readonly ReadOnlySpan<byte> _file;
    private readonly ulong _salt;
    private long _pos;

    public SegmentScanner(ReadOnlySpan<byte> file, ulong salt)
    {
        _file = file; _salt = salt; _pos = SpoolFormat.SegmentHeaderSize;
    }

    public bool Next(out ScannedRegion region)
    {
        region = default;
        if (_pos + SpoolFormat.SlotSize > _file.Length) return false;
        var slot0 = _file.Slice((int)_pos, SpoolFormat.SlotSize);
        uint length = SpoolFormat.ReadSlot0(slot0, _salt, _pos);
        if (length != 0 && _pos + length <= _file.Length)
        {
            region = Classify(_pos, length);
            if (region.Kind == RegionKind.Damaged && !HasValidRegionFrom(_pos + length))
            {
                // The last region of the segment, half written when the host stopped: a torn tail, cut.
                region = new ScannedRegion(_pos, TailLength(_pos, _pos + length), RegionKind.TornTail, true, "torn tail");
                _pos = _file.Length;
                return true;
            }
            _pos += length;
            return true;
        }
        long start = _pos;
        if (SpoolFormat.IsSlot0Empty(slot0))
        {
            long next = NextValidSlot0(start);
            if (next < 0) { _pos = _file.Length; return false; }
            _pos = next;
            if (_file[(int)start..(int)next].IndexOfAnyExcept((byte)0) < 0) return Next(out region);   // a hole: nothing
            region = new ScannedRegion(start, next - start, RegionKind.Damaged, false, "unfinished write before a later record");
            return true;
        }
        for (long q = start + SpoolFormat.Align; q + SpoolFormat.SlotSize <= _file.Length; q += SpoolFormat.Align)
        {
            uint l = SpoolFormat.ReadSlot0(_file.Slice((int)q, SpoolFormat.SlotSize), _salt, q);
            if (l != 0 && q + l <= _file.Length)
            {
                _pos = q;
                region = new ScannedRegion(start, q - start, RegionKind.Damaged, false, "region header does not check");
                return true;
            }
        }
        _pos = _file.Length;
        region = new ScannedRegion(start, TailLength(start, start + SpoolFormat.Align), RegionKind.TornTail, false, "torn tail");
        return true;
    }

    /// <summary>The offset of the next valid slot 0 at or after <paramref name="from"/> (64-byte aligned), or -1.
    /// Zeros are skipped with a vectorised search, so a segment's empty remainder costs a memory scan.</summary>
    private readonly long NextValidSlot0(long from)
    {
        long q = from;
        while (q + SpoolFormat.SlotSize <= _file.Length)
        {
            int nonZero = _file[(int)q..].IndexOfAnyExcept((byte)0);
            if (nonZero < 0) return -1;
            q = (q + nonZero) & ~(long)(SpoolFormat.Align - 1);
            if (q + SpoolFormat.SlotSize > _file.Length) return -1;
            uint l = SpoolFormat.ReadSlot0(_file.Slice((int)q, SpoolFormat.SlotSize), _salt, q);
            if (l != 0 && q + l <= _file.Length) return q;
            q += SpoolFormat.Align;
        }
        return -1;
    }

    private readonly bool HasValidRegionFrom(long from)
    {
        for (long q = from; q + SpoolFormat.SlotSize <= _file.Length; q += SpoolFormat.Align)
        {
            uint l = SpoolFormat.ReadSlot0(_file.Slice((int)q, SpoolFormat.SlotSize), _salt, q);
            if (l != 0 && q + l <= _file.Length) return true;
        }
        return false;
    }

    /// <summary>From start to the end of the last non-zero byte (at least to minEnd), 64-byte aligned.</summary>
    private readonly long TailLength(long start, long minEnd)
    {
        int lastNonZero = _file[(int)start..].LastIndexOfAnyExcept((byte)0);
        long end = Math.Max(minEnd, SpoolFormat.AlignUp(start + lastNonZero + 1));
        return Math.Min(end, _file.Length) - start;
    }

    private readonly ScannedRegion Classify(long offset, uint length)
    {
        var slot1 = _file.Slice((int)offset + SpoolFormat.SlotSize, SpoolFormat.SlotSize);
        if (!SpoolFormat.TryReadState(slot1, _salt, offset, out var state))
            return new ScannedRegion(offset, length, RegionKind.Damaged, true, "commit header does not check");
        switch (state)
        {
            case RecordState.Uncommitted: return new ScannedRegion(offset, length, RegionKind.Uncommitted, true);
            case RecordState.Consumed: return new ScannedRegion(offset, length, RegionKind.Consumed, true);
            case RecordState.Quarantined: return new ScannedRegion(offset, length, RegionKind.Quarantined, true);
        }
        uint payload = SpoolFormat.PayloadLength(slot1);
        if (payload > length - SpoolFormat.RecordHeaderSize || SpoolFormat.EnvelopeLength(slot1) > payload)
            return new ScannedRegion(offset, length, RegionKind.Damaged, true, "lengths out of range");
        var bytes = _file.Slice((int)offset + SpoolFormat.RecordHeaderSize, (int)payload);
        if (Crc32C.Compute(bytes) != SpoolFormat.PayloadCrc(slot1))
            return new ScannedRegion(offset, length, RegionKind.Damaged, true, "payload checksum mismatch");
        if (!SpoolEnvelope.TryParse(bytes[..(int)SpoolFormat.EnvelopeLength(slot1)], out _))
            return new ScannedRegion(offset, length, RegionKind.Damaged, true, "envelope does not parse");
        return new ScannedRegion(offset, length, RegionKind.Record, true);
    }
}

/// <summary>A segment file mapped read-only (shared, so it sees what a writer or a repair stores).</summary>
internal sealed unsafe class MappedFile : IDisposable
{
    public readonly string Path;
    public readonly long Length;
    private readonly byte* _base;

    public MappedFile(string path)
    {
        Path = path;
        Length = new FileInfo(path).Length;
        if (Length > int.MaxValue) throw new IOException($"{path}: {Length} bytes is larger than any segment");
        if (Length == 0) return;
        int fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"cannot open {path}: errno {LibC.LastError}");
        nint p = LibC.Mmap(0, (nuint)Length, LibC.PROT_READ, LibC.MAP_SHARED, fd, 0);
        int err = LibC.LastError;
        LibC.Close(fd);
        if (p == LibC.MapFailed) throw new IOException($"cannot map {path}: errno {err}");
        _base = (byte*)p;
    }

    public ReadOnlySpan<byte> Span => _base == null ? default : new ReadOnlySpan<byte>(_base, (int)Length);

    public void Dispose()
    {
        if (_base != null) LibC.Munmap((nint)_base, (nuint)Length);
    }
}
