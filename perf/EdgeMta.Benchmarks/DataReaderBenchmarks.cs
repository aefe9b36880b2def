// DATA scan rate: realistic message bodies (a header section with Received: lines, then text lines of
// about 70 octets with a dot-stuffed line now and then) fed to the reader in 16 KiB reads, as a socket
// would deliver them, into a sink that discards. Three ways:
//   ByteLoop   the same DataReader with its vector scan off: its byte-at-a-time state machine (baseline);
//   TightByteLoop a minimal byte loop that only finds the terminator and unstuffs, state in locals (what
//              a plain implementation does, with none of the bare-newline, size or header work): a second,
//              harder baseline, so the speedup is not just over a slow state machine;
//   Vector     the DataReader as the server runs it;
//   IndexOfOnly span.IndexOf("\r\n.\r\n"u8) over the same reads: the ceiling of a plain terminator
//              search, with no unstuffing, no bare-newline check and no counting (for scale only).
// The GB/s column is body octets / mean time; on a loaded machine read Min as well (noise only adds time).
// Run: dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*DataReaderBenchmarks*'
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Benchmarks;

[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
[Config(typeof(DataThroughputConfig))]
public class DataReaderBenchmarks
{
    private const int ReadSize = 16 * 1024;

    private readonly DiscardingSink _sink = new();
    private byte[] _message = [];
    private DataReader _vector = null!;
    private DataReader _byteLoop = null!;

    /// <summary>Octets of message text before the terminator.</summary>
    [Params(4 * 1024, 64 * 1024, 1024 * 1024)]
    public int BodySize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _message = DataBodies.Realistic(BodySize);
        _vector = new DataReader(long.MaxValue, BareNewlinePolicy.Reject);
        _byteLoop = new DataReader(long.MaxValue, BareNewlinePolicy.Reject) { UseVectorScan = false };
    }

    [Benchmark(Baseline = true)]
    public long ByteLoop() => Drain(_byteLoop);

    [Benchmark]
    public long Vector() => Drain(_vector);

    [Benchmark]
    public long TightByteLoop()
    {
        ReadOnlySpan<byte> message = _message;
        int state = 0; // 0 mid-line, 1 after CR, 2 line start, 3 line-start dot, 4 line-start dot + CR
        state = 2;
        long size = 0;
        for (int pos = 0; pos < message.Length; pos += ReadSize)
        {
            ReadOnlySpan<byte> read = message.Slice(pos, Math.Min(ReadSize, message.Length - pos));
            int runStart = 0;
            for (int i = 0; i < read.Length; i++)
            {
                byte b = read[i];
                switch (state)
                {
                    case 2 when b == (byte)'.':
                        _sink.Write(read[runStart..i]);
                        size += i - runStart;
                        runStart = i + 1;
                        state = 3;
                        continue;
                    case 3 when b == (byte)'\r':
                        state = 4;
                        continue;
                    case 4 when b == (byte)'\n':
                        return size;
                }

                state = b == (byte)'\r' ? 1 : (state == 1 && b == (byte)'\n' ? 2 : 0);
            }

            _sink.Write(read[runStart..]);
            size += read.Length - runStart;
        }

        return size;
    }

    [Benchmark]
    public int IndexOfOnly()
    {
        ReadOnlySpan<byte> message = _message;
        int found = 0;
        for (int pos = 0; pos < message.Length; pos += ReadSize)
        {
            found += message.Slice(pos, Math.Min(ReadSize, message.Length - pos)).IndexOf("\r\n.\r\n"u8);
        }

        return found;
    }

    private long Drain(DataReader reader)
    {
        reader.Reset();
        ReadOnlySpan<byte> message = _message;
        int pos = 0;
        while (reader.Read(message.Slice(pos, Math.Min(ReadSize, message.Length - pos)), _sink, out int consumed) == DataStatus.NeedMore)
        {
            pos += consumed;
        }

        return reader.Size;
    }

    private sealed class DiscardingSink : IMessageBodySink
    {
        public void Write(ReadOnlySpan<byte> octets)
        {
        }
    }
}

/// <summary>Message bodies shaped like mail: the generator is deterministic so runs compare.</summary>
internal static class DataBodies
{
    /// <summary>About <paramref name="size"/> octets of message text, then the terminator.</summary>
    public static byte[] Realistic(int size)
    {
        var rng = new Random(5321);
        var sb = new StringBuilder(size + 128);
        sb.Append("Received: from mail.example.org (mail.example.org [192.0.2.10])\r\n\tby mx.example.net with ESMTP id 4F2A1\r\n");
        sb.Append("Received: from [10.0.0.5] by mail.example.org with ESMTPSA\r\n");
        sb.Append("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: Quarterly figures\r\n");
        sb.Append("Date: Sun, 22 Nov 2026 08:00:00 +0000\r\nMessage-ID: <20261122080000.1@example.org>\r\n");
        sb.Append("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        int line = 0;
        while (sb.Length < size - 2)
        {
            if (++line % 97 == 0)
            {
                sb.Append(".."); // a dot-stuffed line
            }

            int length = Math.Min(rng.Next(60, 78), size - 2 - sb.Length);
            for (int k = 0; k < length; k++)
            {
                sb.Append(rng.Next(6) == 0 ? ' ' : (char)('a' + rng.Next(26)));
            }

            sb.Append("\r\n");
        }

        sb.Append(".\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }
}

/// <summary>Adds a GB/s column: body octets (the BodySize parameter) divided by the mean time.</summary>
internal sealed class DataThroughputConfig : ManualConfig
{
    public DataThroughputConfig() => AddColumn(new ThroughputColumn());

    private sealed class ThroughputColumn : IColumn
    {
        public string Id => nameof(ThroughputColumn);
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Body octets per nanosecond of mean time (10^9 octets/s)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            object? size = benchmarkCase.Parameters["BodySize"];
            if (report?.ResultStatistics is null || size is not int octets)
            {
                return "-";
            }

            return (octets / report.ResultStatistics.Mean).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
        }

        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    }
}
