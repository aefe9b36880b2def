// The power-loss simulator: from the recorder's events (PowerLossRecorder.cs) and a cut point T (a sequence
// number: the power went after every event numbered below it had started), builds in a fresh directory
// the files a host that lost power at T could have left. One random image per call, from a seeded Random.
// Rules (harsher than a real disk, never kinder):
//  - a write is durable if it ended before T and was synchronous itself (RWF_DSYNC), or ended before the
//    start of a sync of the same file that ended before T: an fdatasync, or (unless StrictDsync) a
//    synchronous write. The same file only, though a real device flush covers every file;
//  - with StrictDsync a synchronous write makes only its own bytes durable, as POSIX promises for O_DSYNC
//    and as Linux does for a direct overwrite on a disk with FUA (fs/iomap/direct-io.c: the write goes out
//    REQ_FUA and no cache flush is sent, so earlier writes still in the disk's cache are not covered);
//  - every other write that started before T is dropped, applied whole, or torn (a random subset of its
//    512-byte sectors applied), each independently, in the order the writes started;
//  - a file exists if its directory was synced after its creation ended and before T; otherwise it
//    exists or not at random, and if it does, with only its durable content. A file deleted before T may
//    or may not still exist. Its content starts as zeros, to its allocated length (an allocation counts
//    once a sync of the file covers it; an allocation not yet covered gives the full length or none).
// What it does not do: model metadata beyond that (the spool's segments are allocated and synced before
// any record goes in), or reorder writes that overlap in time (the spool never has two writes to the same
// bytes in flight at once).
// How it fails: an event on a file it never saw created throws (the recorder missed a call).
namespace EdgeMta.Spool.Tests;

internal static class PowerLossImage
{
    public const int Sector = 512;

    /// <summary>What one image was made of, for the tally.</summary>
    public readonly record struct Outcome(int Files, int InFlightWrites, int TornWrites);

    public static Outcome Build(IoEvent[] events, long cut, Random rnd, string directory, bool strictDsync)
    {
        var created = new Dictionary<string, IoEvent>();
        var perFile = new Dictionary<string, List<IoEvent>>();
        var directorySyncs = new List<IoEvent>();
        foreach (var e in events)
        {
            if (e.Start >= cut) break;   // sorted by start: nothing after this had begun
            switch (e.Kind)
            {
                case IoKind.Ack:
                    break;
                case IoKind.SyncDirectory:
                    if (e.Result == 0) directorySyncs.Add(e);
                    break;
                case IoKind.Create:
                    if (e.Result == 0 && created.TryAdd(e.Path, e)) perFile[e.Path] = new List<IoEvent>();
                    break;
                default:
                    if (!perFile.TryGetValue(e.Path, out var list)) throw new InvalidOperationException($"{e}: file never created");
                    list.Add(e);
                    break;
            }
        }
        int files = 0, inFlight = 0, torn = 0;
        foreach (var (path, create) in created)
        {
            var history = perFile[path];
            bool deleted = history.Exists(e => e.Kind == IoKind.Delete);
            bool named = create.End < cut && directorySyncs.Exists(d => d.Start > create.End && d.End < cut);
            if (deleted || !named)
            {
                if (rnd.Next(2) == 0) continue;   // the name never reached the disk, or its removal did
            }
            bool onlyDurable = !named;
            // The latest start of a sync of this file that ended before the cut: a write that ended before it is durable.
            long syncStart = long.MinValue;
            foreach (var e in history)
            {
                bool isSync = e.Kind == IoKind.SyncData || (e.Kind == IoKind.Write && e.Sync && !strictDsync);
                if (isSync && e.Result == 0 && e.End < cut) syncStart = Math.Max(syncStart, e.Start);
            }
            bool Durable(IoEvent e) => e.Result == 0 && e.End < cut && ((e.Kind == IoKind.Write && e.Sync) || e.End < syncStart);

            long length = 0;
            foreach (var e in history)
            {
                if (e.Kind != IoKind.Allocate) continue;
                bool applied = Durable(e) || (!onlyDurable && rnd.Next(2) == 0);
                if (applied) length = Math.Max(length, e.Offset + e.Length);
            }
            var image = new byte[length];
            foreach (var w in history)
            {
                if (w.Kind != IoKind.Write) continue;
                if (Durable(w))
                {
                    Apply(ref image, w, 0, w.Length);
                    continue;
                }
                if (onlyDurable) continue;
                inFlight++;
                switch (rnd.Next(3))
                {
                    case 0:
                        break;   // dropped
                    case 1:
                        Apply(ref image, w, 0, w.Length);
                        break;
                    default:
                        torn++;
                        for (long at = 0; at < w.Length;)
                        {
                            // Sectors are the device's: boundaries at multiples of 512 in the file.
                            long next = Math.Min(w.Length, (w.Offset + at) / Sector * Sector + Sector - w.Offset);
                            if (rnd.Next(2) == 0) Apply(ref image, w, at, next - at);
                            at = next;
                        }
                        break;
                }
            }
            File.WriteAllBytes(Path.Combine(directory, Path.GetFileName(path)), image);
            files++;
        }
        return new Outcome(files, inFlight, torn);
    }

    // Bytes [from, from + count) of write w, at their place in the file (grown if the write runs past its end).
    private static void Apply(ref byte[] image, IoEvent w, long from, long count)
    {
        long end = w.Offset + from + count;
        if (end > image.Length) Array.Resize(ref image, (int)end);
        var target = image.AsSpan((int)(w.Offset + from), (int)count);
        if (w.Bytes is null) target.Clear();
        else w.Bytes.AsSpan((int)from, (int)count).CopyTo(target);
    }
}
