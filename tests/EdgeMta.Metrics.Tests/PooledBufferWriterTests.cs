// The scrape body's buffer: keeps what was written across growth, stops at its cap.
using System.Buffers;
using EdgeMta.Metrics;

namespace EdgeMta.Metrics.Tests;

public class PooledBufferWriterTests
{
    [Fact]
    public void GrowingKeepsTheReservedFrontAndEverythingWritten()
    {
        using var w = new PooledBufferWriter(16, 64 << 20, start: 8);
        byte[] line = new byte[1000];
        for (int i = 0; i < 40_000; i++)
        {
            line[0] = (byte)i;
            w.Write(line);
        }
        Assert.Equal(8 + 40_000 * 1000, w.Written);
        for (int i = 0; i < 40_000; i += 997) Assert.Equal((byte)i, w.Array[8 + i * 1000]);
    }

    [Fact]
    public void PastTheCapItThrowsInsteadOfGrowing()
    {
        using var w = new PooledBufferWriter(16, 4096);
        w.Write(new byte[4000]);
        Assert.Throws<InvalidOperationException>(() => w.GetSpan(200));
        Assert.Equal(4000, w.Written);
    }
}
