using EdgeMta.Server.Dns;

namespace EdgeMta.Server.Tests.Dns;

public sealed class DnsMessageTests
{
    private static readonly byte[] Query = DnsMessage.Query(0xBEEF, "2.0.0.127.bl.test")!;

    // The query with QR set and the given RCODE and counts, then the records.
    private static byte[] Response(int rcode, int answers, int authorities, params byte[] records)
    {
        byte[] r = [.. Query, .. records];
        r[2] = 0x81;
        r[3] = (byte)(0x80 | rcode);
        r[7] = (byte)answers;
        r[9] = (byte)authorities;
        return r;
    }

    [Fact]
    public void TheQueryIsOneAQuestionWithRecursionDesired()
    {
        Assert.Equal(
            [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
             1, (byte)'2', 1, (byte)'0', 1, (byte)'0', 3, (byte)'1', (byte)'2', (byte)'7', 2, (byte)'b', (byte)'l', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0,
             0, 1, 0, 1],
            Query);
    }

    [Fact]
    public void ANameOverTheLimitsIsRefused()
    {
        Assert.Null(DnsMessage.Query(1, new string('a', 64) + ".bl.test"));
        Assert.Null(DnsMessage.Query(1, string.Join('.', Enumerable.Repeat("abcdefg", 32))));
        Assert.Null(DnsMessage.Query(1, "bl.test."));
    }

    [Fact]
    public void AnswersAreReadWithTheSmallestTtl()
    {
        byte[] r = Response(0, 2, 0,
            0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 127, 0, 0, 2,   // TTL 3600
            0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x01, 0x2C, 0, 4, 127, 0, 0, 4);  // TTL 300
        Assert.Equal(DnsMessage.Match.Ours, DnsMessage.Matches(Query, r));
        DnsAnswer a = DnsMessage.Read(r, Query.Length - DnsMessage.HeaderLength);
        Assert.Equal(DnsResult.Answered, a.Result);
        Assert.Equal([0x7F000002u, 0x7F000004u], a.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(300), a.Ttl);
    }

    [Fact]
    public void NxdomainTakesTheNegativeTtlOfTheSoa()
    {
        // SOA in the authority section: TTL 900, MINIMUM 120 (RFC 2308 §5: the lesser counts).
        byte[] soa = [0xC0, 0x16, 0, 6, 0, 1, 0, 0, 0x03, 0x84, 0, 24, 0xC0, 0x16, 0xC0, 0x16, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 120];
        DnsAnswer a = DnsMessage.Read(Response(3, 0, 1, soa), Query.Length - DnsMessage.HeaderLength);
        Assert.Equal(DnsResult.NoSuchName, a.Result);
        Assert.Equal(TimeSpan.FromSeconds(120), a.Ttl);
    }

    [Theory]
    [InlineData(2)] // SERVFAIL
    [InlineData(5)] // REFUSED
    [InlineData(4)] // NOTIMP
    public void AnErrorCodeIsAServerFailure(int rcode)
    {
        Assert.Equal(DnsResult.ServerFailure, DnsMessage.Read(Response(rcode, 0, 0), Query.Length - DnsMessage.HeaderLength).Result);
    }

    [Fact]
    public void ATruncatedAnswerIsAServerFailure()
    {
        byte[] r = Response(0, 0, 0);
        r[2] |= 0x02;
        Assert.Equal(DnsResult.ServerFailure, DnsMessage.Read(r, Query.Length - DnsMessage.HeaderLength).Result);
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 127, 0 })]           // rdata cut short
    [InlineData(new byte[] { 0xC0, 0xFF, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 127, 0, 0, 2 })]     // pointer forward
    [InlineData(new byte[] { 0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 127, 0, 0, 2, 9 })]  // an A of 5 octets
    [InlineData(new byte[] { 0x80, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 127, 0, 0, 2 })]           // reserved label type
    public void AMalformedAnswerIsReported(byte[] record)
    {
        Assert.Equal(DnsResult.Malformed, DnsMessage.Read(Response(0, 1, 0, record), Query.Length - DnsMessage.HeaderLength).Result);
    }

    [Fact]
    public void AnAnswerToAnotherQuestionOrAQueryIsNotOurs()
    {
        byte[] other = DnsMessage.Query(0xBEEF, "3.0.0.127.bl.test")!;
        other[2] = 0x81;
        Assert.Equal(DnsMessage.Match.OtherQuestion, DnsMessage.Matches(Query, other));
        Assert.Equal(DnsMessage.Match.NotAResponse, DnsMessage.Matches(Query, Query));
        byte[] upper = Response(0, 0, 0);
        upper[23] = (byte)'B'; // "BL": names compare without case (RFC 4343)
        Assert.Equal(DnsMessage.Match.Ours, DnsMessage.Matches(Query, upper));
    }
}
