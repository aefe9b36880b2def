// The delivery journal (src/EdgeMta.Spool/FORMAT.md "Delivery journal"), measured at both ends:
// - JournalAppendBenchmarks: records made durable through EdgeMta.Delivery.JournalWriter (the agent's group
//   commit: one pwrite + fdatasync per batch), Batch records per AppendAsync, one poster. Reported per call
//   (BenchmarkDotNet's OperationsPerInvoke cannot follow a [Params]): divide by Batch for a record's cost;
//   batch 1 is the device round trip, batch 256 what sharing it buys.
// - JournalFoldBenchmarks: a restart's journal work for 100,000 records (docs/DELIVERY.md "Guarantees": delivery
//   resumes where it stopped): folding records already decoded (JournalFold.Apply), and reading them from the
//   journal files on disk with their checks (JournalReader.Read, the path recovery takes).
// Run: dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*Journal*'
// What it does not measure: the journal sharing the spool writers' batches (not built: DeliveryJournal.cs), or
// several posters at once (the writer's batching under concurrency is the relay race's, perf/race-relay.sh).
// The directories live under the benchmark's output folder (the /work disk, never tmpfs, where fdatasync would
// cost nothing) and are deleted by GlobalCleanup; a failed append throws (a benchmark must not time errors).
using BenchmarkDotNet.Attributes;
using EdgeMta.Delivery;
using EdgeMta.Spool;

namespace EdgeMta.Benchmarks;

[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class JournalAppendBenchmarks
{
    [Params(1, 16, 256)] public int Batch;

    private string _root = "";
    private JournalWriter? _writer;
    private JournalRecord[] _records = [];

    [GlobalSetup]
    public void GlobalSetup()
    {
        _root = Path.Combine(AppContext.BaseDirectory, "journal-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        _writer = new JournalWriter(DeliveryJournal.Open(_root));
        _records = JournalData.Deferred(Batch, firstMessage: 0);
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _writer?.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Benchmark]
    public async Task AppendDurable()
    {
        int err = await _writer!.AppendAsync(_records).ConfigureAwait(false);
        if (err != 0) throw new IOException($"journal append failed: errno {err}");
    }
}

[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class JournalFoldBenchmarks
{
    private const int Records = 100_000;

    /// <summary>deferred: 100,000 messages with one Deferred record each (a dead next hop's queue);
    /// history: 25,000 messages with three Deferred records and a Delivered one each.</summary>
    [Params("deferred", "history")] public string Shape = "deferred";

    private JournalRecord[] _records = [];
    private string _root = "";

    [GlobalSetup]
    public void GlobalSetup()
    {
        _records = Shape == "deferred" ? JournalData.Deferred(Records, firstMessage: 0) : JournalData.History(Records / 4);
        _root = Path.Combine(AppContext.BaseDirectory, "journal-fold-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        using var journal = DeliveryJournal.Open(_root);
        for (int i = 0; i < _records.Length; i += 4096)
        {
            int err = journal.Append(_records.AsSpan(i, Math.Min(4096, _records.Length - i)));
            if (err != 0) throw new IOException($"journal append failed: errno {err}");
        }
    }

    [GlobalCleanup]
    public void GlobalCleanup() => Directory.Delete(_root, recursive: true);

    [Benchmark(Baseline = true)]
    public int FoldDecoded()
    {
        var fold = new JournalFold();
        foreach (ref readonly JournalRecord r in _records.AsSpan()) fold.Apply(r);
        return fold.Count;
    }

    [Benchmark]
    public int ReadAndFoldFromDisk()
    {
        var fold = new JournalFold();
        JournalReadReport report = JournalReader.Read(_root, fold);
        if (report.Records != _records.Length) throw new InvalidDataException($"read {report.Records} of {_records.Length} records");
        return fold.Count;
    }
}

/// <summary>Journal records shaped like the agent's (one recipient each, a 4xx reply, a next attempt time).</summary>
internal static class JournalData
{
    private const long Now = 1_790_000_000_000;

    private static string Id(int message) => "B" + message.ToString("x11", System.Globalization.CultureInfo.InvariantCulture);

    private static JournalRecord Record(JournalRecordType type, int message, ushort attempt, ushort code) =>
        new(type, Segment: 1 + message / 4096, Offset: 4096L * (message % 4096), Id(message), Recipient: 0, attempt, code,
            StatusClass: (byte)(code / 100), StatusSubject: 0, StatusDetail: 0, PossiblyDelivered: false,
            EventUnixMs: Now + message, NextOrReference: type == JournalRecordType.Deferred ? Now + 300_000 * attempt : 0);

    public static JournalRecord[] Deferred(int count, int firstMessage)
    {
        var records = new JournalRecord[count];
        for (int i = 0; i < count; i++) records[i] = Record(JournalRecordType.Deferred, firstMessage + i, 1, 421);
        return records;
    }

    /// <summary>Each message deferred three times, then delivered; messages interleaved as a busy queue writes them.</summary>
    public static JournalRecord[] History(int messages)
    {
        var records = new JournalRecord[messages * 4];
        int n = 0;
        for (ushort attempt = 1; attempt <= 4; attempt++)
        {
            for (int m = 0; m < messages; m++)
                records[n++] = attempt < 4 ? Record(JournalRecordType.Deferred, m, attempt, 451) : Record(JournalRecordType.Delivered, m, attempt, 250);
        }
        return records;
    }
}
