// Shared helpers: temporary spool directories and deterministic message contents.
using System.Text;

namespace EdgeMta.Spool.Tests;

internal sealed class TempDir : IDisposable
{
    public string Path { get; }
    public TempDir(string? parent = null)
    {
        Path = System.IO.Path.Combine(parent ?? System.IO.Path.GetTempPath(), "edgemta-spool-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }
    /// <summary>/dev/shm when there is one: for tests that only check logic and run recovery thousands of times.</summary>
    public static string? FastParent => Directory.Exists("/dev/shm") ? "/dev/shm" : null;

    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static class TestSpools
{
    /// <summary>The gate's answer once the supply thread has read statvfs again (it reads it off the caller's
    /// thread): polls until <paramref name="want"/> or 5 s, and returns the last answer.</summary>
    public static async Task<SpoolReadiness> Settled(MessageSpool spool, SpoolReadiness want)
    {
        SpoolReadiness now = spool.Readiness;
        for (int i = 0; i < 500 && now != want; i++)
        {
            await Task.Delay(10);
            now = spool.Readiness;
        }
        return now;
    }

    public static SpoolOptions Options(string dir, long segment = 1 << 20, SpoolSync sync = SpoolSync.Always, int first = 4096)
        => new() { Directory = dir, SegmentSize = segment, Sync = sync, FirstBufferSize = first, MaxMessageSize = 4 << 20, MinimumFreeBytes = 0 };

    public static MessageSpool Open(string dir, long segment = 1 << 20, SpoolSync sync = SpoolSync.Always, int first = 4096)
        => MessageSpool.Open(Options(dir, segment, sync, first), out _);

    /// <summary>Deterministic content: a seed and a size give the same octets every time.</summary>
    public static byte[] Content(int seed, int size)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Writes a message in chunks of <paramref name="chunk"/> octets and commits it.</summary>
    public static async Task<(CommitResult Result, string Id)> Write(MessageSpool spool, int seed, int size, int chunk = 1000, string sender = "a@example.org", params string[] rcpts)
    {
        var m = spool.Begin("192.0.2.1"u8, "client.example"u8, Encoding.UTF8.GetBytes(sender), "SIZE=1"u8);
        foreach (var r in rcpts.Length == 0 ? ["b@example.net"] : rcpts) m.AddRecipient(Encoding.UTF8.GetBytes(r), ""u8);
        var data = Content(seed, size);
        for (int i = 0; i < size; i += chunk) m.Append(data.AsSpan(i, Math.Min(chunk, size - i)));
        string id = Encoding.ASCII.GetString(m.QueueId);
        var result = await m.CommitAsync();
        return (result, id);
    }

    public sealed class ReadBack
    {
        public required string Id;
        public required byte[] Data;
        public required string Sender;
        public required List<string> Recipients;
        public required string Helo;
    }

    public static Dictionary<string, ReadBack> ReadAll(string dir, out RecoveryReport report)
    {
        var all = new Dictionary<string, ReadBack>();
        report = SpoolReader.Read(dir, (in SpoolRecord r) =>
        {
            var e = r.Envelope;
            var rcpts = new List<string>();
            foreach (var x in e.GetRecipients()) rcpts.Add(Encoding.UTF8.GetString(x.ForwardPath));
            all.Add(r.QueueIdString, new ReadBack { Id = r.QueueIdString, Data = r.Data.ToArray(), Sender = Encoding.UTF8.GetString(e.ReversePath), Recipients = rcpts, Helo = Encoding.UTF8.GetString(e.HeloName) });
        });
        return all;
    }

    public static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, System.IO.Path.Combine(to, System.IO.Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyDirectory(d, System.IO.Path.Combine(to, System.IO.Path.GetFileName(d)));
    }
}
