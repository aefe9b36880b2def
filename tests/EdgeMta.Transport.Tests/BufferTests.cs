using System.Net.Sockets;

namespace EdgeMta.Transport.Tests;

public sealed class BufferTests
{
    [Fact]
    public void RentRoundsUpToAPowerOfTwoAndCountsWhatIsOutstanding()
    {
        var pool = new PinnedBufferPool(4096, 65536, maxRetainedPerSize: 4);
        byte[] small = pool.Rent(1)!;
        byte[] middle = pool.Rent(5000)!;
        Assert.Equal(4096, small.Length);
        Assert.Equal(8192, middle.Length);
        Assert.Equal(2, pool.Outstanding);
        pool.Return(small);
        pool.Return(middle);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void ReturnedBufferIsReusedAndIsPinned()
    {
        var pool = new PinnedBufferPool(4096, 65536, maxRetainedPerSize: 4);
        byte[] first = pool.Rent(4096)!;
        pool.Return(first);
        Assert.Same(first, pool.Rent(4096));
        Assert.Equal(1, pool.Allocated);
        Assert.Equal(2, GC.GetGeneration(first)); // the Pinned Object Heap reports as generation 2
    }

    [Fact]
    public void PoolKeepsNoMoreThanItsCapOfEachSize()
    {
        var pool = new PinnedBufferPool(4096, 65536, maxRetainedPerSize: 2);
        byte[][] rented = [pool.Rent(4096)!, pool.Rent(4096)!, pool.Rent(4096)!];
        foreach (byte[] buffer in rented)
        {
            pool.Return(buffer);
        }
        pool.Rent(4096);
        pool.Rent(4096);
        long allocated = pool.Allocated;
        pool.Rent(4096); // the third was dropped for the GC, so this one is new
        Assert.Equal(allocated + 1, pool.Allocated);
    }

    [Fact]
    public void RentAboveTheMaximumAnswersNull()
    {
        var pool = new PinnedBufferPool(4096, 65536, maxRetainedPerSize: 2);
        Assert.Null(pool.Rent(65537));
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void OutputGrowsKeepingWhatWasWrittenAndDetachesIt()
    {
        var pool = new PinnedBufferPool(4096, 65536, maxRetainedPerSize: 2);
        var output = new OutputBuffer(pool, 65536);
        Assert.Equal(0, pool.Outstanding); // nothing held until something is written
        output.GetSpan(3).Fill((byte)'a');
        output.Advance(3);
        Span<byte> more = output.GetSpan(10000);
        Assert.True(more.Length >= 10000);
        more[..10000].Fill((byte)'b');
        output.Advance(10000);
        byte[] buffer = output.Detach(out int count)!;
        Assert.Equal(10003, count);
        Assert.Equal("aaab"u8.ToArray(), buffer[..4]);
        Assert.Equal((byte)'b', buffer[10002]);
        Assert.Equal(0, output.Written);
        Assert.Equal(1, pool.Outstanding); // the smaller one went back when it grew
        pool.Return(buffer);
    }

    [Fact]
    public void OutputPastItsCapThrowsAndAdvancePastTheSpanThrows()
    {
        var pool = new PinnedBufferPool(4096, 65536, maxRetainedPerSize: 2);
        var output = new OutputBuffer(pool, 8192);
        Assert.Throws<InvalidOperationException>(() => output.GetSpan(8193));
        int length = output.GetSpan(1).Length;
        Assert.Throws<ArgumentOutOfRangeException>(() => output.Advance(length + 1));
        output.Reset();
        Assert.Equal(0, pool.Outstanding);
    }

    [Theory]
    [InlineData(SocketError.OperationAborted, "Fatal")]
    [InlineData(SocketError.NotSocket, "Fatal")]
    [InlineData(SocketError.TooManyOpenSockets, "ResourcePressure")] // EMFILE, ENFILE
    [InlineData(SocketError.NoBufferSpaceAvailable, "ResourcePressure")] // ENOBUFS
    [InlineData(SocketError.SocketError, "ResourcePressure")] // ENOMEM and any other unmapped errno
    [InlineData(SocketError.ConnectionAborted, "Transient")] // ECONNABORTED
    [InlineData(SocketError.ConnectionReset, "Transient")]
    [InlineData(SocketError.Interrupted, "Transient")]
    public void AcceptErrorsAreSortedIntoFatalPressureAndTransient(SocketError error, string kind) =>
        Assert.Equal(kind, Listener.Classify(error).ToString());
}
