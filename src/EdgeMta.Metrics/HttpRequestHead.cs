// Contract: just enough of HTTP/1.x (RFC 9112) to answer a scraper: find the end of a request head and judge
// its request line, `method SP request-target SP HTTP-version` (RFC 9112 §3).
//
// GET of /metrics (a query string allowed: Prometheus may add one) is served; any other method is 405 with
// `Allow: GET` (RFC 9110 §15.5.6); any other path 404; a request line that is not three fields with an
// HTTP/1.x version is 400, answered as soon as that line is complete. Header fields are skipped unread:
// nothing in them changes the answer (the response always closes the connection, so keep-alive, chunked
// bodies and Expect do not arise). Line ends may be CRLF or a bare LF (RFC 9112 §2.2 lets a recipient
// accept LF), and empty lines before the request line are skipped (same section).
// What it does not do: read a request body (a GET has none; the responder drains and drops what came),
// percent-decode the target (`/%6Detrics` is 404), or answer HTTP/2.
// It is a pure function of the bytes so far: the caller bounds them (MaxHeadBytes, answered 431).
namespace EdgeMta.Metrics;

/// <summary>How far a request head has come.</summary>
internal enum HeadStatus : byte
{
    /// <summary>Read more.</summary>
    Incomplete,
    /// <summary>The answer is known: <see cref="HttpAnswer"/> says which.</summary>
    Complete,
}

/// <summary>What the responder sends back.</summary>
internal enum HttpAnswer : byte
{
    Metrics,
    NotFound,
    MethodNotAllowed,
    BadRequest,
    HeadTooLarge,
    ServerError,
}

internal static class HttpRequestHead
{
    private static ReadOnlySpan<byte> Path => "/metrics"u8;

    /// <summary>Judges the head in <paramref name="head"/> (everything received so far).</summary>
    public static HeadStatus TryRead(ReadOnlySpan<byte> head, out HttpAnswer answer)
    {
        answer = HttpAnswer.BadRequest;
        int start = 0;
        while (start < head.Length && (head[start] == (byte)'\r' || head[start] == (byte)'\n'))
        {
            start++;
        }
        ReadOnlySpan<byte> rest = head[start..];
        int lf = rest.IndexOf((byte)'\n');
        if (lf < 0)
        {
            return HeadStatus.Incomplete;
        }
        answer = Judge(TrimCr(rest[..lf]));
        if (answer == HttpAnswer.BadRequest)
        {
            return HeadStatus.Complete;
        }
        // The head ends at the first empty line after the request line.
        rest = rest[(lf + 1)..];
        while (true)
        {
            lf = rest.IndexOf((byte)'\n');
            if (lf < 0)
            {
                return HeadStatus.Incomplete;
            }
            if (TrimCr(rest[..lf]).IsEmpty)
            {
                return HeadStatus.Complete;
            }
            rest = rest[(lf + 1)..];
        }
    }

    /// <summary>request-line = method SP request-target SP HTTP-version (RFC 9112 §3).</summary>
    internal static HttpAnswer Judge(ReadOnlySpan<byte> line)
    {
        int sp1 = line.IndexOf((byte)' ');
        if (sp1 <= 0) return HttpAnswer.BadRequest;
        ReadOnlySpan<byte> method = line[..sp1];
        ReadOnlySpan<byte> afterMethod = line[(sp1 + 1)..];
        int sp2 = afterMethod.IndexOf((byte)' ');
        if (sp2 <= 0) return HttpAnswer.BadRequest;
        ReadOnlySpan<byte> target = afterMethod[..sp2];
        ReadOnlySpan<byte> version = afterMethod[(sp2 + 1)..];
        // HTTP-version = "HTTP/" DIGIT "." DIGIT; only 1.x is spoken here.
        if (version.Length != 8 || !version.StartsWith("HTTP/1."u8) || !char.IsAsciiDigit((char)version[7]))
        {
            return HttpAnswer.BadRequest;
        }
        // RFC 9110 §9.1: the method token is case-sensitive.
        if (!method.SequenceEqual("GET"u8))
        {
            return HttpAnswer.MethodNotAllowed;
        }
        bool metrics = target.StartsWith(Path) && (target.Length == Path.Length || target[Path.Length] == (byte)'?');
        return metrics ? HttpAnswer.Metrics : HttpAnswer.NotFound;
    }

    private static ReadOnlySpan<byte> TrimCr(ReadOnlySpan<byte> line) =>
        line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;
}
