// The reader of rspamd's reply (src/EdgeMta.Server/Rspamd/RspamdReplyReader.cs, RspamdResult.cs): HTTP framing split
// anywhere, chunked bodies, the size caps, and the JSON members the server uses; and the SMTP text made of them
// (RspamdReplies.cs). Each case is one a naive reader gets wrong: a split inside "\r\n\r\n", a chunk size in hex,
// an escaped smtp_message with a CRLF in it, a reply with no action.
using System.Text;
using EdgeMta.Server.Rspamd;

namespace EdgeMta.Server.Tests;

public sealed class RspamdReplyTests
{
    private const string Json = """{"is_skipped":false,"score":7.5,"required_score":15.0,"action":"add header","symbols":{"A":{"name":"A","score":1.0,"options":["x","y"]}},"messages":{"smtp_message":"Go away"},"message-id":"m@x"}""";

    private static string WithLength(string body) => $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";

    private static string Chunked(string body, int size)
    {
        var s = new StringBuilder("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < body.Length; i += size)
        {
            string part = body.Substring(i, Math.Min(size, body.Length - i));
            s.Append($"{part.Length:x};ext=1\r\n{part}\r\n");
        }
        return s.Append("0\r\nX-Trailer: t\r\n\r\n").ToString();
    }

    /// <summary>Feeds <paramref name="reply"/> in pieces cut at <paramref name="cuts"/>; the status after the last piece (and the close).</summary>
    private static (ReplyStatus Status, RspamdReplyReader Reader) Feed(string reply, bool close = false, params int[] cuts)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(reply);
        var reader = new RspamdReplyReader();
        ReplyStatus status = ReplyStatus.NeedMore;
        int at = 0;
        foreach (int cut in cuts.Append(bytes.Length))
        {
            status = reader.Read(bytes.AsSpan(at, cut - at));
            at = cut;
            if (status != ReplyStatus.NeedMore) break;
        }
        if (close && status == ReplyStatus.NeedMore) status = reader.ReadEnd();
        return (status, reader);
    }

    private static RspamdResult Parse(RspamdReplyReader reader)
    {
        var result = new RspamdResult();
        Assert.True(result.TryParse(reader.Body, out string reason), reason);
        return result;
    }

    [Fact]
    public void AReplySplitAtEveryOctetGivesTheSameResult()
    {
        string reply = WithLength(Json);
        for (int cut = 1; cut < reply.Length; cut++)
        {
            var (status, reader) = Feed(reply, false, cut);
            Assert.Equal(ReplyStatus.Complete, status);
            RspamdResult r = Parse(reader);
            Assert.Equal(RspamdAction.AddHeader, r.Action);
            Assert.Equal(7.5, r.Score);
            Assert.Equal(15.0, r.RequiredScore);
            Assert.Equal("Go away", Encoding.ASCII.GetString(r.SmtpMessage, 0, r.SmtpMessageLength));
        }
    }

    [Fact]
    public void AChunkedReplyInSmallChunksSplitAnywhereIsReadWhole()
    {
        string reply = Chunked(Json, 7);
        for (int cut = 1; cut < reply.Length; cut += 3)
        {
            var (status, reader) = Feed(reply, false, cut, Math.Min(reply.Length, cut + 5));
            Assert.Equal(ReplyStatus.Complete, status);
            Assert.Equal(Json, Encoding.UTF8.GetString(reader.Body));
        }
    }

    [Fact]
    public void ABodyFramedByTheCloseEndsAtTheClose()
    {
        var (status, reader) = Feed("HTTP/1.0 200 OK\r\n\r\n" + Json, close: true);
        Assert.Equal(ReplyStatus.Complete, status);
        Assert.Equal(RspamdAction.AddHeader, Parse(reader).Action);
    }

    [Fact]
    public void AConnectionClosedBeforeTheContentLengthIsTruncated()
    {
        string reply = WithLength(Json);
        var (status, reader) = Feed(reply[..^5], close: true);
        Assert.Equal(ReplyStatus.Error, status);
        Assert.Equal("truncated", reader.Reason);
    }

    [Theory]
    [InlineData("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}", "status")]
    [InlineData("HTTP/2 200 OK\r\n\r\n", "status-line")]
    [InlineData("HTTP/1.1 2x0 OK\r\n\r\n", "status-line")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "framing")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "content-length")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "content-length")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "transfer-encoding")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\n\r\n", "header")]
    [InlineData("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "header")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk-size")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", "chunk-end")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab", "chunk-line")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", "too-large")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFF\r\n", "too-large")]
    public void AMalformedReplyIsAnErrorWithItsReason(string reply, string reason)
    {
        var (status, reader) = Feed(reply);
        Assert.Equal(ReplyStatus.Error, status);
        Assert.Equal(reason, reader.Reason);
    }

    [Fact]
    public void AHeadLargerThanItsCapIsAnErrorNotABiggerBuffer()
    {
        string reply = "HTTP/1.1 200 OK\r\nX-Long: " + new string('a', RspamdReplyReader.MaxHeadBytes) + "\r\n\r\n";
        var (status, reader) = Feed(reply, false, 100, 5000);
        Assert.Equal(ReplyStatus.Error, status);
        Assert.Equal("head-too-large", reader.Reason);
    }

    [Fact]
    public void ABodyFramedByTheCloseStopsAtTheCap()
    {
        var reader = new RspamdReplyReader();
        Assert.Equal(ReplyStatus.NeedMore, reader.Read("HTTP/1.1 200 OK\r\n\r\n"u8));
        var block = new byte[64 * 1024];
        ReplyStatus status = ReplyStatus.NeedMore;
        for (int i = 0; i < 100 && status == ReplyStatus.NeedMore; i++) status = reader.Read(block);
        Assert.Equal(ReplyStatus.Error, status);
        Assert.Equal("too-large", reader.Reason);
    }

    [Theory]
    [InlineData("""{"score":1,"required_score":15}""", "no-action")]
    [InlineData("""{"action":"reject","score":1""", "invalid-json")]
    [InlineData("""["action","reject"]""", "not-an-object")]
    [InlineData("""{"action":5}""", "action-type")]
    [InlineData("""{"action":"reject","score":"high"}""", "score-type")]
    [InlineData("""{"action":"reject"} {"action":"no action"}""", "invalid-json")]
    [InlineData("", "invalid-json")]
    public void AnUnusableJsonBodyIsRefusedWithItsReason(string json, string reason)
    {
        var result = new RspamdResult();
        Assert.False(result.TryParse(Encoding.UTF8.GetBytes(json), out string why));
        Assert.Equal(reason, why);
    }

    [Theory]
    [InlineData("no action", RspamdAction.NoAction)]
    [InlineData("greylist", RspamdAction.Greylist)]
    [InlineData("add header", RspamdAction.AddHeader)]
    [InlineData("rewrite subject", RspamdAction.RewriteSubject)]
    [InlineData("soft reject", RspamdAction.SoftReject)]
    [InlineData("reject", RspamdAction.Reject)]
    [InlineData("quarantine", RspamdAction.Other)]
    public void EachActionNameMapsToItsAction(string name, RspamdAction action)
    {
        var result = new RspamdResult();
        Assert.True(result.TryParse(Encoding.UTF8.GetBytes($$$"""{"symbols":{"R":{"options":[{"a":[1,2]}]}},"action":"{{{name}}}","score":-2.25}"""), out _));
        Assert.Equal(action, result.Action);
        Assert.Equal(-2.25, result.Score);
    }

    [Fact]
    public void AnEscapedSmtpMessageIsUnescapedThenSanitisedIntoOneReplyLine()
    {
        var result = new RspamdResult();
        Assert.True(result.TryParse("""{"action":"reject","messages":{"smtp_message":"Spam\r\n250 OK\u00e9 \t detected"}}"""u8, out _));
        Span<byte> reply = stackalloc byte[RspamdReplies.MaxReplyLength];
        int n = RspamdReplies.WriteRefusal(reply, permanent: true, result.SmtpMessage.AsSpan(0, result.SmtpMessageLength));
        Assert.Equal("550 5.7.1 Spam 250 OK detected\r\n", Encoding.ASCII.GetString(reply[..n]));
    }

    [Fact]
    public void AnEmptyOrOverlongSmtpMessageFallsBackOrIsCut()
    {
        Span<byte> reply = stackalloc byte[RspamdReplies.MaxReplyLength];
        int n = RspamdReplies.WriteRefusal(reply, permanent: false, "\r\n\t "u8);
        Assert.Equal("451 4.7.1 Try again later\r\n", Encoding.ASCII.GetString(reply[..n]));
        n = RspamdReplies.WriteRefusal(reply, permanent: true, Encoding.ASCII.GetBytes(new string('x', 1000)));
        Assert.Equal(10 + RspamdReplies.MaxTextLength + 2, n);
        Assert.EndsWith("x\r\n", Encoding.ASCII.GetString(reply[..n]));

        var result = new RspamdResult();
        Assert.True(result.TryParse(Encoding.ASCII.GetBytes($$$"""{"action":"reject","messages":{"smtp_message":"{{{new string('y', 4000)}}}"}}"""), out _));
        Assert.Equal(0, result.SmtpMessageLength); // too long to keep: the default text then
    }

    [Fact]
    public void TheScoreFieldsHaveTwoDecimalsAndXSpamOnlyForTheHeaderActions()
    {
        Span<byte> fields = stackalloc byte[RspamdReplies.MaxHeadersLength];
        int n = RspamdReplies.WriteHeaders(fields, RspamdAction.AddHeader, 7.456, 15);
        Assert.Equal("X-Spam: Yes\r\nX-Spam-Score: 7.46 / 15.00\r\n", Encoding.ASCII.GetString(fields[..n]));
        n = RspamdReplies.WriteHeaders(fields, RspamdAction.NoAction, -1e300, 1e300);
        Assert.Equal("X-Spam-Score: -999999.99 / 999999.99\r\n", Encoding.ASCII.GetString(fields[..n]));
    }

    [Theory]
    [InlineData("http://127.0.0.1:11333", true)]
    [InlineData("http://[::1]:11333/", true)]
    [InlineData("http://rspamd.internal:11333", true)]
    [InlineData("https://127.0.0.1:11333", false)]
    [InlineData("http://127.0.0.1", false)]
    [InlineData("http://127.0.0.1:0", false)]
    [InlineData("http://127.0.0.1:70000", false)]
    [InlineData("http://127.0.0.1:11333/checkv2", false)]
    [InlineData("http://user@127.0.0.1:11333", false)]
    [InlineData("127.0.0.1:11333", false)]
    public void TheUrlIsHttpHostAndPortOnly(string url, bool valid)
    {
        Assert.Equal(valid, RspamdOptions.TryParseUrl(url, out _, out _, out string error));
        Assert.Equal(valid, error.Length == 0);
    }
}
