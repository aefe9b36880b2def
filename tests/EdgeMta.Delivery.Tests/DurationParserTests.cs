// DURATION as docs/DELIVERY.md states it: an integer of seconds, or an integer with s, m, h or d.
using EdgeMta.Delivery;

namespace EdgeMta.Delivery.Tests;

public class DurationParserTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("300", 300)]
    [InlineData("300s", 300)]
    [InlineData("4000s", 4000)]
    [InlineData("5m", 5 * 60)]
    [InlineData("2h", 2 * 3600)]
    [InlineData("5d", 5 * 86400)]
    [InlineData("2d", 2 * 86400)]
    [InlineData("0d", 0)]
    [InlineData("007s", 7)]
    public void ReadsSecondsAndEachUnit(string text, long seconds)
    {
        Assert.True(DurationParser.TryParse(text, out var duration, out string error), error);
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
        Assert.Equal(string.Empty, error);
    }

    [Fact]
    public void ReadsTheLargestDurationATimeSpanHoldsAndNotOneSecondMore()
    {
        long max = long.MaxValue / TimeSpan.TicksPerSecond;
        Assert.True(DurationParser.TryParse(max.ToString(), out var duration, out _));
        Assert.Equal(max, (long)duration.TotalSeconds);
        Assert.False(DurationParser.TryParse((max + 1).ToString(), out _, out string error));
        Assert.Contains("too long", error);

        long maxDays = max / 86400;
        Assert.True(DurationParser.TryParse(maxDays + "d", out duration, out _));
        Assert.Equal(TimeSpan.FromDays(maxDays), duration);
        Assert.False(DurationParser.TryParse(maxDays + 1 + "d", out _, out _));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("-5", "must start with a number")]
    [InlineData("+5", "must start with a number")]
    [InlineData("-5s", "must start with a number")]
    [InlineData("s", "must start with a number")]
    [InlineData("m5", "must start with a number")]
    [InlineData(" 5", "must start with a number")]
    [InlineData("5 ", "unknown unit")]
    [InlineData("5 s", "at most one unit")]
    [InlineData("1.5h", "at most one unit")]
    [InlineData("1,5h", "at most one unit")]
    [InlineData("5w", "unknown unit")]
    [InlineData("5ms", "at most one unit")]
    [InlineData("5S", "unknown unit")]
    [InlineData("5D", "unknown unit")]
    [InlineData("1h30m", "at most one unit")]
    [InlineData("5ss", "at most one unit")]
    [InlineData("0x10", "at most one unit")]
    [InlineData("1e3", "at most one unit")]
    [InlineData("\u0665", "must start with a number")]
    [InlineData("99999999999999999999", "too long")]
    [InlineData("9223372036854775807", "too long")]
    [InlineData("99999999999999999999999999999999999999d", "too long")]
    [InlineData("106751991167301d", "too long")]
    public void RefusesEverythingElseWithAReason(string text, string reason)
    {
        Assert.False(DurationParser.TryParse(text, out var duration, out string error));
        Assert.Contains(reason, error);
        Assert.Equal(TimeSpan.Zero, duration);
    }

    [Fact]
    public void NamesTheValueInTheError()
    {
        Assert.False(DurationParser.TryParse("10x", out _, out string error));
        Assert.Contains("'10x'", error);
    }
}
