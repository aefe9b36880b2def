// Spool appends per second and MB/s, sync on (every commit durable before it is reported), against the
// naive spool in the same run: one file per message, written and fdatasynced by a blocking thread.
// Run: dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*SpoolAppend*'
// The directory is under the benchmark's own output folder, so on the /work disk, never tmpfs.
// Each invocation writes Messages messages split among Writers concurrent writers (OperationsPerInvoke),
// into a fresh spool (IterationSetup), so segment creation is part of the cost, as in service.
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using EdgeMta.Spool;
using Microsoft.Win32.SafeHandles;

namespace EdgeMta.Benchmarks;

[Config(typeof(SpoolBenchmarkConfig))]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
public class SpoolAppendBenchmarks
{
    private const int Messages = 1024;

    [Params(4096, 65536)] public int Size;
    [Params(1, 8, 64)] public int Writers;

    private string _root = "";
    private byte[] _data = [];
    private MessageSpool? _spool;

    [GlobalSetup]
    public void GlobalSetup()
    {
        _data = new byte[Size];
        new Random(1).NextBytes(_data);
        ThreadPool.SetMinThreads(Math.Max(Writers, Environment.ProcessorCount) + 4, 8);
    }

    [IterationSetup]
    public void IterationSetup()
    {
        _root = Path.Combine(AppContext.BaseDirectory, "spool-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        _spool = MessageSpool.Open(new SpoolOptions { Directory = Path.Combine(_root, "spool"), Sync = SpoolSync.Always }, out _);
    }

    [IterationCleanup]
    public void IterationCleanup()
    {
        _spool?.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Messages)]
    public void FilePerMessageFdatasync()
    {
        string dir = Path.Combine(_root, "files");
        Directory.CreateDirectory(dir);
        var threads = new Thread[Writers];
        for (int w = 0; w < Writers; w++)
        {
            int writer = w;
            threads[w] = new Thread(() =>
            {
                for (int i = writer; i < Messages; i += Writers)
                {
                    using SafeFileHandle h = File.OpenHandle(Path.Combine(dir, i.ToString()), FileMode.CreateNew, FileAccess.Write);
                    for (int o = 0; o < _data.Length; o += 16384)
                        RandomAccess.Write(h, _data.AsSpan(o, Math.Min(16384, _data.Length - o)), o);
                    if (Fdatasync((int)h.DangerousGetHandle()) != 0) throw new IOException("fdatasync");
                }
            });
            threads[w].Start();
        }
        foreach (var t in threads) t.Join();
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public void SpoolGroupCommit()
    {
        var tasks = new Task[Writers];
        for (int w = 0; w < Writers; w++)
        {
            int writer = w;
            tasks[w] = Task.Run(async () =>
            {
                for (int i = writer; i < Messages; i += Writers)
                {
                    var m = _spool!.Begin("192.0.2.1"u8, "bench.example"u8, "sender@example.org"u8, "SIZE=65536"u8);
                    m.AddRecipient("rcpt@example.net"u8, ""u8);
                    for (int o = 0; o < _data.Length; o += 16384)
                        m.Append(_data.AsSpan(o, Math.Min(16384, _data.Length - o)));
                    if (await m.CommitAsync() != CommitResult.Committed) throw new IOException("commit failed");
                }
            });
        }
        Task.WaitAll(tasks);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fdatasync")]
    private static extern int Fdatasync(int fd);
}

/// <summary>Adds appends/s and MB/s (10^6 bytes of message data per second) beside the mean time per message.</summary>
public sealed class SpoolBenchmarkConfig : ManualConfig
{
    public SpoolBenchmarkConfig()
    {
        AddColumn(new ThroughputColumn("Appends/s", (size, perSecond) => perSecond));
        AddColumn(new ThroughputColumn("MB/s", (size, perSecond) => perSecond * size / 1e6));
    }

    private sealed class ThroughputColumn(string name, Func<int, double, double> value) : IColumn
    {
        public string Id => nameof(ThroughputColumn) + name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => name == "MB/s" ? "message data megabytes per second" : "messages made durable per second";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is not { } stats) return "-";
            int size = (int)benchmarkCase.Parameters["Size"];
            return value(size, 1e9 / stats.Mean).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
