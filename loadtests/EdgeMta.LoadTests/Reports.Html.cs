using System.Globalization;
using System.Net;
using System.Text;

namespace EdgeMta.LoadTests;

/// <summary>The picture: one HTML page, no scripts, no external files; two inline SVG line charts
/// (delivered msg/s per interval; p50 and p99 message latency per interval) above the tables.</summary>
public static partial class Reports
{
    public static string Html(RunResult r)
    {
        Timeline t = r.Metrics.Timeline;
        int n = t.Length;
        var seconds = new double[n];
        var rate = new double[n];
        var p50 = new double[n];
        var p99 = new double[n];
        var failed = new double[n];
        for (int i = 0; i < n; i++)
        {
            TimelineBucket? b = t.Get(i);
            seconds[i] = (i + 1) * t.IntervalSeconds;
            rate[i] = (b?.DeliveredCount ?? 0) / BucketSeconds(r, i);
            failed[i] = (b?.FailedCount ?? 0) / BucketSeconds(r, i);
            p50[i] = Micros(b?.Latency.ValueAtPercentile(50) ?? 0) / 1000;
            p99[i] = Micros(b?.Latency.ValueAtPercentile(99) ?? 0) / 1000;
        }
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>edgemta-load ")
          .Append(WebUtility.HtmlEncode(r.Options.Scenario))
          .Append("</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}")
          .Append("table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}")
          .Append("th:first-child,td:first-child{text-align:left}svg{background:#fafafa;border:1px solid #ddd}</style></head><body>");
        sb.Append("<h1>edgemta-load: ").Append(WebUtility.HtmlEncode(r.Options.Scenario)).Append("</h1><pre>")
          .Append(WebUtility.HtmlEncode(Headline(r))).Append("</pre>");
        sb.Append("<h2>Throughput (delivered msg/s; failures in red)</h2>");
        Chart(sb, seconds, [("delivered/s", rate, "#1f77b4"), ("failed/s", failed, "#d62728")], "msg/s");
        sb.Append("<h2>Message latency (MAIL → 250 after the dot), ms</h2>");
        Chart(sb, seconds, [("p50", p50, "#2ca02c"), ("p99", p99, "#ff7f0e")], "ms");
        sb.Append("<h2>Latency by step</h2><table><tr><th>step</th><th>count</th><th>mean ms</th><th>p50</th><th>p75</th><th>p95</th><th>p99</th><th>max</th></tr>");
        foreach (SmtpStep step in ReportedSteps)
        {
            LatencyHistogram h = r.Metrics.Step(step);
            if (h.Count == 0) continue;
            sb.Append("<tr><td>").Append(StepName(step)).Append("</td><td>").Append(h.Count.ToString(Inv))
              .Append("</td><td>").Append((h.Mean * 1e3 / System.Diagnostics.Stopwatch.Frequency).ToString("0.000", Inv)).Append("</td>");
            foreach (double p in Percentiles) sb.Append("<td>").Append(Ms(h.ValueAtPercentile(p))).Append("</td>");
            sb.Append("<td>").Append(Ms(h.Max)).Append("</td></tr>");
        }
        sb.Append("</table><h2>Failed messages by step and reply code</h2><table><tr><th>step</th><th>code</th><th>messages</th></tr>");
        foreach ((SmtpStep step, int code, long count) in r.Metrics.FailureCells())
            sb.Append("<tr><td>").Append(StepName(step)).Append("</td><td>").Append(FailureCode.Name(code))
              .Append("</td><td>").Append(count.ToString(Inv)).Append("</td></tr>");
        sb.Append("</table></body></html>\n");
        return sb.ToString();
    }

    static void Chart(StringBuilder sb, double[] x, (string Name, double[] Y, string Color)[] series, string unit)
    {
        const int W = 900, H = 260, L = 70, R = 20, T = 20, B = 40;
        double xMax = x.Length > 0 ? x[^1] : 1;
        double yMax = 0;
        foreach (var s in series) foreach (double v in s.Y) yMax = Math.Max(yMax, v);
        yMax = NiceCeiling(yMax);
        double Px(double v) => L + v / xMax * (W - L - R);
        double Py(double v) => H - B - v / yMax * (H - T - B);
        sb.Append(string.Create(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-size=\"11\">"));
        for (int i = 0; i <= 4; i++)
        {
            double v = yMax * i / 4;
            sb.Append(string.Create(Inv, $"<line x1=\"{L}\" x2=\"{W - R}\" y1=\"{Py(v):0.#}\" y2=\"{Py(v):0.#}\" stroke=\"#ddd\"/>"))
              .Append(string.Create(Inv, $"<text x=\"{L - 6}\" y=\"{Py(v) + 4:0.#}\" text-anchor=\"end\">{FormatAxis(v)}</text>"));
        }
        for (int i = 0; i <= 5; i++)
        {
            double v = xMax * i / 5;
            sb.Append(string.Create(Inv, $"<text x=\"{Px(v):0.#}\" y=\"{H - B + 16}\" text-anchor=\"middle\">{v:0.#} s</text>"));
        }
        sb.Append(string.Create(Inv, $"<text x=\"12\" y=\"{T + 4}\">{unit}</text>"));
        int legend = L + 10;
        foreach (var s in series)
        {
            if (s.Y.Length > 0)
            {
                sb.Append("<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"").Append(s.Color).Append("\" points=\"");
                for (int i = 0; i < s.Y.Length; i++) sb.Append(string.Create(Inv, $"{Px(x[i]):0.#},{Py(s.Y[i]):0.#} "));
                sb.Append("\"/>");
            }
            sb.Append(string.Create(Inv, $"<text x=\"{legend}\" y=\"{H - 8}\" fill=\"{s.Color}\">■ {s.Name}</text>"));
            legend += 110;
        }
        sb.Append("</svg>");
    }

    static double NiceCeiling(double v)
    {
        if (v <= 0) return 1;
        double pow = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (double m in (double[])[1, 2, 2.5, 5, 10])
            if (m * pow >= v) return m * pow;
        return 10 * pow;
    }

    static string FormatAxis(double v) => v >= 100 ? v.ToString("0", Inv) : v.ToString("0.###", Inv);
}
