using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace EdgeMta.LoadTests;

/// <summary>
/// Turns a RunResult into the reports: text (the console), markdown (for a README or an issue), CSV
/// (summary, steps, failures, timeline: for scripts such as perf/race.sh) and one self-contained HTML
/// page with inline SVG charts of throughput and latency over time. Latencies print in milliseconds
/// with microsecond resolution (text, markdown) and in microseconds (CSV).
/// </summary>
public static partial class Reports
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    static readonly double[] Percentiles = [50, 75, 95, 99];

    public static readonly SmtpStep[] ReportedSteps =
    [
        SmtpStep.Connect, SmtpStep.Greeting, SmtpStep.Ehlo, SmtpStep.Mail, SmtpStep.Rcpt, SmtpStep.Data,
        SmtpStep.EndOfData, SmtpStep.Rset, SmtpStep.Quit, SmtpStep.Message,
    ];

    public static string StepName(SmtpStep step) => step switch
    {
        SmtpStep.Connect => "connect",
        SmtpStep.Greeting => "greeting",
        SmtpStep.Ehlo => "EHLO",
        SmtpStep.Mail => "MAIL",
        SmtpStep.Rcpt => "RCPT",
        SmtpStep.Data => "DATA",
        SmtpStep.EndOfData => "end of data",
        SmtpStep.Rset => "RSET",
        SmtpStep.Quit => "QUIT",
        _ => "message",
    };

    static double Micros(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
    static string Ms(long ticks) => (Micros(ticks) / 1000).ToString("0.000", Inv);
    static string Us(double micros) => micros.ToString("0.0", Inv);

    /// <summary>Writes every report into <paramref name="dir"/>: report.txt, report.md, report.html,
    /// summary.csv, steps.csv, failures.csv, timeline.csv.</summary>
    public static void WriteAll(RunResult r, string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "report.txt"), Text(r));
        File.WriteAllText(Path.Combine(dir, "report.md"), Markdown(r));
        File.WriteAllText(Path.Combine(dir, "report.html"), Html(r));
        File.WriteAllText(Path.Combine(dir, "summary.csv"), SummaryCsv(r));
        File.WriteAllText(Path.Combine(dir, "steps.csv"), StepsCsv(r));
        File.WriteAllText(Path.Combine(dir, "failures.csv"), FailuresCsv(r));
        File.WriteAllText(Path.Combine(dir, "timeline.csv"), TimelineCsv(r));
    }

    /// <summary>Every SMTP reply read per second (greeting, EHLO, MAIL, RCPT, DATA, dot, RSET, QUIT).</summary>
    static double RepliesPerSecond(RunResult r)
    {
        long replies = 0;
        for (SmtpStep s = SmtpStep.Greeting; s <= SmtpStep.Quit; s++) replies += r.Metrics.Step(s).Count;
        return r.ElapsedSeconds > 0 ? replies / r.ElapsedSeconds : 0;
    }

    static string Headline(RunResult r)
    {
        LoadOptions o = r.Options;
        return string.Create(Inv, $"""
            scenario {o.Scenario} → {o.Target}
            {o.Sessions} sessions, {o.DescribeConnections()}; sizes {o.Sizes.Describe()}; {o.Shape.Describe()}
            attempted {r.Attempted}, delivered {r.Metrics.Delivered} (250 after the dot), failed {r.Metrics.Failed}, in {r.ElapsedSeconds:0.00} s over {r.Metrics.Connections} connections
            throughput {r.DeliveredPerSecond:0} msg/s delivered, {r.MegabytesPerSecond:0.0} MB/s, {RepliesPerSecond(r):0} replies/s
            """);
    }

    public static string Text(RunResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Headline(r)).AppendLine();
        sb.AppendLine(string.Create(Inv, $"{"step (ms)",-12} {"count",9} {"mean",9} {"p50",9} {"p75",9} {"p95",9} {"p99",9} {"max",9}"));
        foreach (SmtpStep step in ReportedSteps)
        {
            LatencyHistogram h = r.Metrics.Step(step);
            if (h.Count == 0) continue;
            sb.Append(string.Create(Inv, $"{StepName(step),-12} {h.Count,9} {(h.Mean * 1e3 / Stopwatch.Frequency).ToString("0.000", Inv),9}"));
            foreach (double p in Percentiles) sb.Append(' ').Append(Ms(h.ValueAtPercentile(p)).PadLeft(9));
            sb.Append(' ').AppendLine(Ms(h.Max).PadLeft(9));
        }
        sb.AppendLine();
        bool any = false;
        foreach ((SmtpStep step, int code, long count) in r.Metrics.FailureCells())
        {
            if (!any) { sb.AppendLine("failed messages by step and reply code:"); any = true; }
            sb.AppendLine(string.Create(Inv, $"  {StepName(step),-12} {FailureCode.Name(code),-14} {count,9}"));
        }
        if (!any) sb.AppendLine("no failures");
        return sb.ToString();
    }

    public static string Markdown(RunResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# edgemta-load report").AppendLine();
        foreach (string line in Headline(r).Split('\n')) sb.Append("- ").AppendLine(line.TrimEnd());
        sb.AppendLine().AppendLine("| step | count | mean ms | p50 ms | p75 ms | p95 ms | p99 ms | max ms |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (SmtpStep step in ReportedSteps)
        {
            LatencyHistogram h = r.Metrics.Step(step);
            if (h.Count == 0) continue;
            sb.Append(string.Create(Inv, $"| {StepName(step)} | {h.Count} | {(h.Mean * 1e3 / Stopwatch.Frequency).ToString("0.000", Inv)} |"));
            foreach (double p in Percentiles) sb.Append(' ').Append(Ms(h.ValueAtPercentile(p))).Append(" |");
            sb.Append(' ').Append(Ms(h.Max)).AppendLine(" |");
        }
        sb.AppendLine().AppendLine("| failed at step | reply code | messages |").AppendLine("|---|---|---:|");
        bool any = false;
        foreach ((SmtpStep step, int code, long count) in r.Metrics.FailureCells())
        {
            any = true;
            sb.AppendLine(string.Create(Inv, $"| {StepName(step)} | {FailureCode.Name(code)} | {count} |"));
        }
        if (!any) sb.AppendLine("| (none) | | 0 |");
        return sb.ToString();
    }

    public static string SummaryCsv(RunResult r)
    {
        LoadOptions o = r.Options;
        LatencyHistogram m = r.Metrics.Step(SmtpStep.Message);
        var sb = new StringBuilder();
        sb.AppendLine("scenario,target,sessions,per_message_connections,pipelining,sizes,shape,attempted,delivered,failed,elapsed_s,msg_per_s,mb_per_s,connections,message_p50_us,message_p99_us,message_max_us");
        sb.AppendLine(string.Create(Inv,
            $"{Csv(o.Scenario)},{o.Target},{o.Sessions},{(o.PerMessageConnections ? 1 : 0)},{(o.Pipelining ? 1 : 0)},{Csv(o.Sizes.Describe())},{Csv(o.Shape.Describe())},{r.Attempted},{r.Metrics.Delivered},{r.Metrics.Failed},{r.ElapsedSeconds:0.000},{r.DeliveredPerSecond:0.0},{r.MegabytesPerSecond:0.00},{r.Metrics.Connections},{Us(Micros(m.ValueAtPercentile(50)))},{Us(Micros(m.ValueAtPercentile(99)))},{Us(Micros(m.Max))}"));
        return sb.ToString();
    }

    public static string StepsCsv(RunResult r)
    {
        var sb = new StringBuilder("step,count,mean_us,p50_us,p75_us,p95_us,p99_us,max_us\n");
        foreach (SmtpStep step in ReportedSteps)
        {
            LatencyHistogram h = r.Metrics.Step(step);
            if (h.Count == 0) continue;
            sb.Append(string.Create(Inv, $"{Csv(StepName(step))},{h.Count},{Us(h.Mean * 1e6 / Stopwatch.Frequency)}"));
            foreach (double p in Percentiles) sb.Append(',').Append(Us(Micros(h.ValueAtPercentile(p))));
            sb.Append(',').Append(Us(Micros(h.Max))).Append('\n');
        }
        return sb.ToString();
    }

    public static string FailuresCsv(RunResult r)
    {
        var sb = new StringBuilder("step,code,messages\n");
        foreach ((SmtpStep step, int code, long count) in r.Metrics.FailureCells())
            sb.Append(string.Create(Inv, $"{Csv(StepName(step))},{FailureCode.Name(code)},{count}\n"));
        return sb.ToString();
    }

    public static string TimelineCsv(RunResult r)
    {
        Timeline t = r.Metrics.Timeline;
        var sb = new StringBuilder("t_s,delivered,failed,msg_per_s,p50_us,p99_us,max_us\n");
        for (int i = 0; i < t.Length; i++)
        {
            TimelineBucket? b = t.Get(i);
            long delivered = b?.DeliveredCount ?? 0;
            LatencyHistogram? h = b?.Latency;
            sb.Append(string.Create(Inv,
                $"{(i + 1) * t.IntervalSeconds:0.###},{delivered},{b?.FailedCount ?? 0},{delivered / BucketSeconds(r, i):0.0},{Us(Micros(h?.ValueAtPercentile(50) ?? 0))},{Us(Micros(h?.ValueAtPercentile(99) ?? 0))},{Us(Micros(h?.Max ?? 0))}\n"));
        }
        return sb.ToString();
    }

    /// <summary>The width of timeline bucket i: the interval, except the last, which the run's end cuts short.</summary>
    static double BucketSeconds(RunResult r, int i)
    {
        double width = r.Metrics.Timeline.IntervalSeconds;
        double left = r.ElapsedSeconds - i * width;
        return left > 0 && left < width ? Math.Max(left, width / 100) : width;
    }

    static string Csv(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
