// Crash-test writer: `dotnet EdgeMta.Spool.CrashWriter.dll SPOOL WRITERS SEEDBASE SEGMENTSIZE`.
// Opens (and so recovers) the spool, prints "ready", then runs WRITERS concurrent sessions until killed.
// Message n of writer w has seed SEEDBASE + w * 1_000_000 + n; its reverse path is "s<seed>@crash.test"
// and its data is a pure function of the seed (CrashContent), so the test can check any record it reads
// back. One message in seven is aborted half way; its HELO name is "abort", so none may ever be read back.
// After CommitAsync answers Committed the writer prints "C <id> <seed>"; only then does it count as accepted.
using System.Text;
using EdgeMta.Spool;

string dir = args[0];
int writers = int.Parse(args[1]);
long seedBase = long.Parse(args[2]);
long segmentSize = long.Parse(args[3]);
var spool = Spool.Open(new SpoolOptions { Directory = dir, SegmentSize = segmentSize, FirstBufferSize = 8192, MaxMessageSize = 4 << 20, MinimumFreeBytes = 0 }, out var report);
var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
var gate = new Lock();
lock (gate) stdout.WriteLine($"ready {report.Messages}");

var tasks = new Task[writers];
for (int w = 0; w < writers; w++)
{
    int writer = w;
    tasks[w] = Task.Run(async () =>
    {
        var chunkRandom = new Random(writer);
        for (long n = 0; ; n++)
        {
            long seed = seedBase + writer * 1_000_000L + n;
            bool abort = seed % 7 == 3;
            byte[] data = CrashContent.Data(seed);
            var m = spool.Begin("192.0.2.7"u8, abort ? "abort"u8 : "keep"u8, Encoding.ASCII.GetBytes($"s{seed}@crash.test"), "BODY=8BITMIME"u8);
            m.AddRecipient("r@crash.test"u8, ""u8);
            int end = abort ? data.Length / 2 : data.Length;
            for (int i = 0; i < end;)
            {
                int c = Math.Min(end - i, 1 + chunkRandom.Next(20_000));
                m.Append(data.AsSpan(i, c));
                i += c;
            }
            if (abort) { m.Abort(); continue; }
            string id = Encoding.ASCII.GetString(m.QueueId);
            var result = await m.CommitAsync();
            lock (gate) stdout.WriteLine(result == CommitResult.Committed ? $"C {id} {seed}" : $"F {id} {seed} {result}");
        }
    });
}
await Task.WhenAll(tasks);

/// <summary>The content of message <c>seed</c>; the tests link this file to regenerate it.</summary>
internal static partial class CrashContent { }
