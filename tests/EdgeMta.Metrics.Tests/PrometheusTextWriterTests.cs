// The exposition text, byte for byte: escaping rules, histogram shape (cumulative buckets, +Inf, _sum, _count).
using System.Buffers;
using System.Text;
using EdgeMta.Metrics;

namespace EdgeMta.Metrics.Tests;

public class PrometheusTextWriterTests
{
    private static string Write(Action<PrometheusTextWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(new PrometheusTextWriter(buffer));
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public void AFamilyIsAHelpAndATypeLineThenItsSamples()
    {
        string text = Write(w =>
        {
            w.Family("edgemta_x_total"u8, "counter"u8, "Things."u8);
            w.Sample("edgemta_x_total"u8, "kind"u8, "a"u8, 3);
            w.Sample("edgemta_x_total"u8, "kind"u8, "b"u8, 0);
        });
        Assert.Equal("# HELP edgemta_x_total Things.\n# TYPE edgemta_x_total counter\nedgemta_x_total{kind=\"a\"} 3\nedgemta_x_total{kind=\"b\"} 0\n", text);
    }

    [Fact]
    public void LabelValuesEscapeBackslashQuoteAndLineFeed()
    {
        string text = Write(w => w.Sample("m"u8, "v"u8, "a\\b\"c\nd"u8, -7));
        Assert.Equal("m{v=\"a\\\\b\\\"c\\nd\"} -7\n", text);
    }

    [Fact]
    public void HelpTextEscapesBackslashAndLineFeedButLeavesQuotes()
    {
        string text = Write(w => w.Family("m"u8, "gauge"u8, "say \"hi\" \\ then\nmore"u8));
        Assert.Equal("# HELP m say \"hi\" \\\\ then\\nmore\n# TYPE m gauge\n", text);
    }

    [Fact]
    public void LargeAndNegativeIntegersAreWrittenInFull()
    {
        Assert.Equal("m 9223372036854775807\nm -1\n", Write(w => { w.Sample("m"u8, long.MaxValue); w.Sample("m"u8, -1); }));
    }

    [Fact]
    public void FloatsRoundTripAndSpecialValuesUseTheFormatsSpelling()
    {
        string text = Write(w =>
        {
            w.Sample("a"u8, 0.0001);
            w.Sample("b"u8, 1e9);
            w.Sample("c"u8, double.NaN);
            w.Sample("d"u8, double.PositiveInfinity);
            w.Sample("e"u8, double.NegativeInfinity);
            w.Sample("f"u8, 0.1 + 0.2);
        });
        Assert.Equal("a 0.0001\nb 1000000000\nc NaN\nd +Inf\ne -Inf\nf 0.30000000000000004\n", text);
    }

    [Fact]
    public void AHistogramHasCumulativeBucketsAnInfBucketASumAndACount()
    {
        string text = Write(w => w.Histogram("h"u8, "Sizes."u8, [1000, 10000, 0.5e5], [2, 0, 3, 4], 123456.5));
        Assert.Equal(
            "# HELP h Sizes.\n# TYPE h histogram\n" +
            "h_bucket{le=\"1000\"} 2\n" +
            "h_bucket{le=\"10000\"} 2\n" +
            "h_bucket{le=\"50000\"} 5\n" +
            "h_bucket{le=\"+Inf\"} 9\n" +
            "h_sum 123456.5\n" +
            "h_count 9\n", text);
    }

    [Fact]
    public void AnEmptyHistogramStillHasItsInfBucketSumAndCount()
    {
        string text = Write(w => w.Histogram("h"u8, "x"u8, [0.001], [0, 0], 0));
        Assert.Equal("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"0.001\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n", text);
    }

    [Fact]
    public void AHistogramRefusesCountsThatDoNotMatchItsBounds()
    {
        Assert.Throws<ArgumentException>(() => Write(w => w.Histogram("h"u8, "x"u8, [1, 2], [1, 2], 0)));
    }
}
