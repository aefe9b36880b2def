using System.Text;
using EdgeMta.LoadTests;

namespace EdgeMta.LoadTests.Tests;

public class ShapeAndContentTests
{
    [Fact]
    public void ASteadyRateSpacesMessagesEvenly()
    {
        var s = new LoadShape.Steady(200);
        Assert.Equal(0, s.DueSeconds(0));
        Assert.Equal(0.5, s.DueSeconds(100), 9);
        Assert.Equal(5.0, s.DueSeconds(1000), 9);
    }

    [Fact]
    public void ARampInvertsItsCumulativeCountAndThenHoldsTheTopRate()
    {
        var r = new LoadShape.Ramp(100, 1100, 10);   // N(t) = 100 t + 50 t²; N(10) = 6000
        Assert.Equal(0, r.DueSeconds(0), 9);
        Assert.Equal(2.0, r.DueSeconds(400), 6);      // N(2) = 200 + 200
        Assert.Equal(10.0, r.DueSeconds(6000), 6);
        Assert.Equal(11.0, r.DueSeconds(7100), 6);    // then 1100 msg/s
        double previous = -1;
        for (long i = 0; i < 8000; i += 7)
        {
            double t = r.DueSeconds(i);
            Assert.True(t > previous);
            previous = t;
        }
    }

    [Fact]
    public void ARampDownwardsIsAlsoMonotonic()
    {
        var r = new LoadShape.Ramp(1000, 100, 10);    // N(10) = 10000 - 4500 = 5500
        Assert.Equal(10.0, r.DueSeconds(5500), 6);
        Assert.True(r.DueSeconds(1000) < r.DueSeconds(1001));
    }

    [Fact]
    public void ABurstMakesAWholeGroupDueAtOnce()
    {
        var b = new LoadShape.Burst(500, 2);
        Assert.Equal(0, b.DueSeconds(499));
        Assert.Equal(2, b.DueSeconds(500));
        Assert.Equal(4, b.DueSeconds(1499));
        Assert.Equal(6, b.DueSeconds(1500));
    }

    [Theory]
    [InlineData("100:5000", true)]
    [InlineData("100-5000", true)]
    [InlineData("5000", false)]
    [InlineData("a:b", false)]
    public void RampTextParses(string text, bool ok) =>
        Assert.Equal(ok, LoadShape.TryParseRamp(text, 30, out _, out _));

    [Fact]
    public void ARampNeedsADuration() => Assert.False(LoadShape.TryParseRamp("1:10", 0, out _, out _));

    [Theory]
    [InlineData("500/1s", 500, 1.0)]
    [InlineData("20@250ms", 20, 0.25)]
    public void BurstTextParses(string text, int size, double every)
    {
        Assert.True(LoadShape.TryParseBurst(text, out LoadShape? shape, out _));
        Assert.Equal(new LoadShape.Burst(size, every), shape);
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("2m", 120)]
    [InlineData("500ms", 0.5)]
    [InlineData("1h", 3600)]
    [InlineData("12", 12)]
    public void DurationsParse(string text, double seconds)
    {
        Assert.True(Durations.TryParse(text, out TimeSpan t));
        Assert.Equal(seconds, t.TotalSeconds, 9);
    }

    [Fact]
    public void ASizeMixHoldsItsWeightsExactlyOverEachCycle()
    {
        Assert.True(SizeMix.TryParse("1024:80,64k:20", out SizeMix? mix, out _));
        Assert.Equal([1024, 65536], mix!.Sizes);
        int large = 0;
        for (int i = 0; i < 100; i++) if (mix.EntryFor(i) == 1) large++;
        Assert.Equal(20, large);
        // Spread out, not 80 small then 20 large: never more than 4 small in a row.
        int run = 0, longest = 0;
        for (int i = 0; i < 200; i++) { run = mix.EntryFor(i) == 0 ? run + 1 : 0; longest = Math.Max(longest, run); }
        Assert.Equal(4, longest);
    }

    [Theory]
    [InlineData("1024:0")]
    [InlineData("12:1")]
    [InlineData("x")]
    [InlineData("1024:1:2")]
    public void BadSizeMixesAreRefused(string text) => Assert.False(SizeMix.TryParse(text, out _, out _));

    [Theory]
    [InlineData(128)]
    [InlineData(1024)]
    [InlineData(1025)]
    [InlineData(1105)]
    [InlineData(65536)]
    [InlineData(100_001)]
    public void AMessageIsExactlyItsSizeOfValidLinesThenTheDot(int size)
    {
        byte[] m = MessageBody.Build("a@b.c", "d@e.f", size);
        Assert.Equal(size + 3, m.Length);
        Assert.True(m.AsSpan(size - 2).SequenceEqual("\r\n.\r\n"u8));
        string text = Encoding.ASCII.GetString(m, 0, size);
        Assert.EndsWith("\r\n", text);
        string[] lines = text[..^2].Split("\r\n");
        foreach (string line in lines)
        {
            Assert.True(line.Length <= 998, "RFC 5322 §2.1.1 line limit");
            Assert.DoesNotContain('\r', line);
            Assert.DoesNotContain('\n', line);
            Assert.False(line.StartsWith('.'), "no dot-stuffing needed");
        }
        Assert.Contains("", lines);    // the blank line between headers and body
    }

    [Fact]
    public void ThePipelinedEnvelopeIsMailRcptDataInOrder()
    {
        var b = new MessageBody("h", "a@b.c", "d@e.f", [1024]);
        Assert.Equal("MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n", Encoding.ASCII.GetString(b.Envelope));
        Assert.Equal(1024, b.SizeOf(0));
    }
}
