// The request head judge: what is served, refused, or still incomplete.
using System.Text;
using EdgeMta.Metrics;

namespace EdgeMta.Metrics.Tests;

public class HttpRequestHeadTests
{
    private static (HeadStatus Status, HttpAnswer Answer) Judge(string head)
    {
        HeadStatus status = HttpRequestHead.TryRead(Encoding.Latin1.GetBytes(head), out HttpAnswer answer);
        return (status, answer);
    }

    [Theory]
    [InlineData("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n", "Metrics")]
    [InlineData("GET /metrics?name[]=x HTTP/1.0\r\n\r\n", "Metrics")]
    [InlineData("GET /metrics HTTP/1.1\nHost: x\n\n", "Metrics")]           // bare LF (RFC 9112 §2.2)
    [InlineData("\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", "Metrics")]        // empty lines before it
    [InlineData("GET / HTTP/1.1\r\n\r\n", "NotFound")]
    [InlineData("GET /metricsx HTTP/1.1\r\n\r\n", "NotFound")]
    [InlineData("GET /%6Detrics HTTP/1.1\r\n\r\n", "NotFound")]
    [InlineData("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n", "MethodNotAllowed")]
    [InlineData("HEAD /metrics HTTP/1.1\r\n\r\n", "MethodNotAllowed")]
    [InlineData("get /metrics HTTP/1.1\r\n\r\n", "MethodNotAllowed")]     // methods are case-sensitive
    public void AWholeHeadIsJudgedByItsRequestLine(string head, string expected)
    {
        Assert.Equal((HeadStatus.Complete, Enum.Parse<HttpAnswer>(expected)), Judge(head));
    }

    [Theory]
    [InlineData("GET /metrics\r\n")]
    [InlineData("GET /metrics HTTP/2.0\r\n")]
    [InlineData("GET  /metrics HTTP/1.1\r\n")]
    [InlineData("EHLO example.com\r\n")]
    [InlineData("\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003\n")] // a TLS ClientHello
    public void ABadRequestLineIsAnswered400AsSoonAsItEnds(string head)
    {
        Assert.Equal((HeadStatus.Complete, HttpAnswer.BadRequest), Judge(head));
    }

    [Fact]
    public void EveryProperPrefixOfAHeadIsIncomplete()
    {
        const string head = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: Prometheus/2.42.0\r\n\r\n";
        for (int n = 0; n < head.Length; n++)
        {
            Assert.Equal(HeadStatus.Incomplete, Judge(head[..n]).Status);
        }
        Assert.Equal((HeadStatus.Complete, HttpAnswer.Metrics), Judge(head));
    }
}
