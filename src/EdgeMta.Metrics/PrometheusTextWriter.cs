// Contract: the Prometheus text exposition format, version 0.0.4, written by hand into a caller's buffer.
//
// What it writes: `# HELP name text` and `# TYPE name counter|gauge|histogram` once per family, then samples
// `name{label="value"} value`, each line ended by `\n` (the format has no CR). Label values escape `\`, `"`
// and line feed as `\\`, `\"`, `\n`; HELP text escapes `\` and line feed only (the format's two rules).
// A histogram is written from per-bucket counts (not cumulative) and comes out as the format wants it:
// cumulative `_bucket{le="..."}` lines in increasing order, the `le="+Inf"` bucket (required), `_sum`
// and `_count`, where `_count` equals the `+Inf` bucket by construction (both are the sum of the counts
// read), so a scrape racing the writers is still self-consistent.
// What it does not do: check names (the callers pass u8 constants, checked once by a test with promtool),
// timestamps (Prometheus stamps the scrape), OpenMetrics (`# EOF`, `_created`): 0.0.4 is what Prometheus,
// VictoriaMetrics and Grafana Agent read.
// How it fails: it does not; the buffer writer grows (or throws, if the caller's writer caps its size).
using System.Buffers;
using System.Buffers.Text;

namespace EdgeMta.Metrics;

/// <summary>Writes metric families in the Prometheus text format into an <see cref="IBufferWriter{T}"/>.</summary>
public readonly struct PrometheusTextWriter(IBufferWriter<byte> output)
{
    /// <summary>The Content-Type of what this writer produces.</summary>
    public static ReadOnlySpan<byte> ContentType => "text/plain; version=0.0.4; charset=utf-8"u8;

    /// <summary>`# HELP` and `# TYPE` lines; <paramref name="type"/> is "counter", "gauge" or "histogram".</summary>
    public void Family(ReadOnlySpan<byte> name, ReadOnlySpan<byte> type, ReadOnlySpan<byte> help)
    {
        Raw("# HELP "u8);
        Raw(name);
        Raw(" "u8);
        Escaped(help, quotes: false);
        Raw("\n# TYPE "u8);
        Raw(name);
        Raw(" "u8);
        Raw(type);
        Raw("\n"u8);
    }

    /// <summary>A sample without labels.</summary>
    public void Sample(ReadOnlySpan<byte> name, long value)
    {
        Raw(name);
        Raw(" "u8);
        Number(value);
        Raw("\n"u8);
    }

    /// <summary>A sample with one label.</summary>
    public void Sample(ReadOnlySpan<byte> name, ReadOnlySpan<byte> label, ReadOnlySpan<byte> labelValue, long value)
    {
        Raw(name);
        Label((byte)'{', label, labelValue);
        Raw("} "u8);
        Number(value);
        Raw("\n"u8);
    }

    /// <summary>A sample without labels, a floating-point value (NaN and infinities as the format spells them).</summary>
    public void Sample(ReadOnlySpan<byte> name, double value)
    {
        Raw(name);
        Raw(" "u8);
        Number(value);
        Raw("\n"u8);
    }

    /// <summary>
    /// A whole histogram family. <paramref name="counts"/> holds one count per bucket, not cumulative:
    /// counts[i] observations at most bounds[i] (and above bounds[i-1]), and a last entry for those above
    /// every bound, so counts.Length == bounds.Length + 1. Bounds increase strictly.
    /// </summary>
    public void Histogram(ReadOnlySpan<byte> name, ReadOnlySpan<byte> help, ReadOnlySpan<double> bounds, ReadOnlySpan<long> counts, double sum)
    {
        if (counts.Length != bounds.Length + 1)
        {
            throw new ArgumentException("one count per bound, and one above them all", nameof(counts));
        }
        Family(name, "histogram"u8, help);
        long cumulative = 0;
        for (int i = 0; i < bounds.Length; i++)
        {
            cumulative += counts[i];
            Bucket(name, bounds[i], cumulative);
        }
        cumulative += counts[^1];
        Bucket(name, double.PositiveInfinity, cumulative);
        Raw(name);
        Raw("_sum "u8);
        Number(sum);
        Raw("\n"u8);
        Raw(name);
        Raw("_count "u8);
        Number(cumulative);
        Raw("\n"u8);
    }

    private void Bucket(ReadOnlySpan<byte> name, double bound, long cumulative)
    {
        Raw(name);
        Raw("_bucket{le=\""u8);
        Number(bound);
        Raw("\"} "u8);
        Number(cumulative);
        Raw("\n"u8);
    }

    private void Label(byte opening, ReadOnlySpan<byte> label, ReadOnlySpan<byte> value)
    {
        Span<byte> open = [opening];
        Raw(open);
        Raw(label);
        Raw("=\""u8);
        Escaped(value, quotes: true);
        Raw("\""u8);
    }

    private void Escaped(ReadOnlySpan<byte> text, bool quotes)
    {
        ReadOnlySpan<byte> special = quotes ? "\\\"\n"u8 : "\\\n"u8;
        while (true)
        {
            int i = text.IndexOfAny(special);
            if (i < 0)
            {
                Raw(text);
                return;
            }
            Raw(text[..i]);
            Raw(text[i] switch { (byte)'\\' => "\\\\"u8, (byte)'"' => "\\\""u8, _ => "\\n"u8 });
            text = text[(i + 1)..];
        }
    }

    private void Number(long value)
    {
        Span<byte> span = output.GetSpan(20);
        Utf8Formatter.TryFormat(value, span, out int written);
        output.Advance(written);
    }

    private void Number(double value)
    {
        if (double.IsNaN(value)) { Raw("NaN"u8); return; }
        if (double.IsPositiveInfinity(value)) { Raw("+Inf"u8); return; }
        if (double.IsNegativeInfinity(value)) { Raw("-Inf"u8); return; }
        // "R" round-trips; Go's ParseFloat (Prometheus, promtool) reads its "1E-05" and "1000000000" forms.
        Span<byte> span = output.GetSpan(32);
        value.TryFormat(span, out int written, "R", System.Globalization.CultureInfo.InvariantCulture);
        output.Advance(written);
    }

    private void Raw(ReadOnlySpan<byte> bytes) => output.Write(bytes);
}
