// RateTable (RateTable.cs): anvil's 60 s window per client on a fake clock, the three kinds apart, bounded
// memory under a million distinct IPv6 /84s with no allocation per event, a busy client kept through that
// flood, an evicted one counted from zero (fail open), and exact counts from many threads.
using System.Net;
using EdgeMta.Policy;
using EdgeMta.TestKit;

namespace EdgeMta.Policy.Tests;

public sealed class RateTableTests
{
    private static ClientKey V4(string address) => ClientKey.From(IPAddress.Parse(address), 84);

    /// <summary>Distinct IPv6 /84s under 2001:db8::/32 (the documentation block), one per <paramref name="i"/>.</summary>
    private static ClientKey Slash84(int i)
    {
        Span<byte> bytes = stackalloc byte[16];
        bytes[0] = 0x20; bytes[1] = 0x01; bytes[2] = 0x0d; bytes[3] = 0xb8;
        // bits 32..83 vary: spread i over bytes 4..9 (all inside the /84)
        bytes[6] = (byte)(i >> 16); bytes[7] = (byte)(i >> 8); bytes[8] = (byte)i;
        return ClientKey.From(new IPAddress(bytes), 84);
    }

    [Fact]
    public void EachKindIsCountedApartAndEachClientApart()
    {
        var table = new RateTable(1000, new FakeClock());
        ClientKey a = V4("192.0.2.1"), b = V4("192.0.2.2");
        Assert.Equal(1, table.Add(a, RateKind.Connection));
        Assert.Equal(2, table.Add(a, RateKind.Connection));
        Assert.Equal(1, table.Add(a, RateKind.Mail));
        Assert.Equal(1, table.Add(a, RateKind.Recipient));
        Assert.Equal(2, table.Add(a, RateKind.Recipient));
        Assert.Equal(1, table.Add(b, RateKind.Connection));
        Assert.Equal(2, table.Peek(a, RateKind.Connection));
        Assert.Equal(0, table.Peek(V4("192.0.2.3"), RateKind.Mail));
    }

    [Fact]
    public void AddressesInOneSlash84ShareACount()
    {
        var table = new RateTable(1000, new FakeClock());
        table.Add(ClientKey.From(IPAddress.Parse("2001:db8:1:2:3000::1"), 84), RateKind.Connection);
        Assert.Equal(2, table.Add(ClientKey.From(IPAddress.Parse("2001:db8:1:2:3000:fff::9"), 84), RateKind.Connection));
        Assert.Equal(1, table.Add(ClientKey.From(IPAddress.Parse("2001:db8:1:2:3000:1000::1"), 84), RateKind.Connection));
    }

    [Fact]
    public void TheWindowOpensAtTheFirstEventAndEndsSixtySecondsLaterForAllKindsAtOnce()
    {
        var clock = new FakeClock();
        var table = new RateTable(1000, clock);
        ClientKey a = V4("192.0.2.1");
        table.Add(a, RateKind.Connection);
        clock.Advance(TimeSpan.FromSeconds(30));
        table.Add(a, RateKind.Mail);
        clock.Advance(TimeSpan.FromSeconds(29.999));
        Assert.Equal(2, table.Add(a, RateKind.Connection)); // 59.999 s: the same window
        Assert.Equal(2, table.Add(a, RateKind.Mail));
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, table.Peek(a, RateKind.Mail));       // 60 s after it opened: over, for every kind
        Assert.Equal(1, table.Add(a, RateKind.Mail));
        Assert.Equal(1, table.Add(a, RateKind.Connection));
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(2, table.Add(a, RateKind.Connection)); // the new window opened at 60 s, not at the old one's end
    }

    [Fact]
    public void AMillionDistinctSlash84sStayWithinCapacityAndAllocateNothing()
    {
        const int capacity = 100_000, flood = 1_000_000;
        var clock = new FakeClock();
        var table = new RateTable(capacity, clock);
        ClientKey[] keys = new ClientKey[flood];
        for (int i = 0; i < flood; i++) keys[i] = Slash84(i);
        Assert.Equal(flood, keys.Distinct().Count()); // the flood really is a million clients

        ClientKey busy = V4("192.0.2.77");
        for (int i = 0; i < 50; i++) table.Add(busy, RateKind.Recipient);

        table.Add(keys[0], RateKind.Connection); // warm: the JIT, the locks
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < flood; i++)
        {
            table.Add(keys[i], RateKind.Connection);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.InRange(table.CountEntries(), 1, table.Capacity);
        Assert.InRange(table.Capacity, capacity, capacity + RateTable.Ways);
        Assert.True(table.Evictions >= flood - capacity, $"{table.Evictions} evictions");
        // The client a limit is for kept its count through the flood of one-event clients.
        Assert.Equal(51, table.Add(busy, RateKind.Recipient));
    }

    [Fact]
    public void AnEvictedClientIsCountedFromZeroAgain()
    {
        var clock = new FakeClock();
        var table = new RateTable(RateTable.Ways, clock); // one set: every key competes for the same 8 slots
        for (int i = 0; i < RateTable.Ways; i++)
        {
            ClientKey k = V4($"192.0.2.{i + 1}");
            for (int n = 0; n <= i; n++) table.Add(k, RateKind.Mail); // client i has i+1 events
        }
        Assert.Equal(0, table.Evictions);
        ClientKey newcomer = V4("198.51.100.1");
        Assert.Equal(1, table.Add(newcomer, RateKind.Mail)); // evicts the client with the fewest: 192.0.2.1
        Assert.Equal(1, table.Evictions);
        Assert.Equal(0, table.Peek(V4("192.0.2.1"), RateKind.Mail));
        Assert.Equal(8, table.Peek(V4("192.0.2.8"), RateKind.Mail));
        Assert.Equal(RateTable.Ways, table.CountEntries());
    }

    [Fact]
    public void AnExpiredClientGivesWayBeforeALiveOneWithFewerEvents()
    {
        var clock = new FakeClock();
        var table = new RateTable(RateTable.Ways, clock);
        ClientKey old = V4("192.0.2.100");
        for (int n = 0; n < 20; n++) table.Add(old, RateKind.Connection);
        clock.Advance(TimeSpan.FromSeconds(61));
        for (int i = 1; i < RateTable.Ways; i++) table.Add(V4($"192.0.2.{i}"), RateKind.Connection);
        table.Add(V4("198.51.100.1"), RateKind.Connection);
        Assert.Equal(0, table.Evictions); // the expired one was reused: nobody live lost a count
        for (int i = 1; i < RateTable.Ways; i++) Assert.Equal(1, table.Peek(V4($"192.0.2.{i}"), RateKind.Connection));
    }

    [Fact]
    public void CountsFromManyThreadsAreExact()
    {
        var table = new RateTable(1000, new FakeClock());
        ClientKey shared = V4("192.0.2.1");
        const int threads = 4, each = 50_000;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                ClientKey own = V4($"198.51.100.{id + 1}");
                for (int i = 0; i < each; i++)
                {
                    table.Add(shared, RateKind.Recipient);
                    table.Add(own, RateKind.Recipient);
                }
            });
            workers[t].Start();
        }
        foreach (Thread w in workers) Assert.True(w.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal(threads * each, table.Peek(shared, RateKind.Recipient));
        for (int t = 0; t < threads; t++) Assert.Equal(each, table.Peek(V4($"198.51.100.{t + 1}"), RateKind.Recipient));
    }
}
