// The content check end to end inside the server (docs/SCREENING.md "Content check by rspamd"): a session on the
// in-memory transport, the rspamd client on a real outbound transport, and a scripted rspamd on loopback (FakeRspamd).
// Each action's reply and what reaches the spool; rspamd down, silent (the deadline on the fake clock) or answering
// garbage under both --rspamd-fail modes; and what was sent: the headers and exactly the octets the spool would hold.
using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using EdgeMta.Server.Rspamd;
using EdgeMta.Spool;
using EdgeMta.Transport;

namespace EdgeMta.Server.Tests;

public sealed class RspamdCheckTests : IAsyncDisposable
{
    private const string Message = "From: a@example.org\r\nSubject: hello\r\nX-Spam-Score: 0 / 99\r\n\r\nbody line\r\n..stuffed\r\n";
    private readonly ServerHarness _server = new(verbose: false);
    private readonly FakeRspamd _rspamd = new();
    private readonly TransportServer _outbound = new(new TransportOptions { TimerPeriod = TimeSpan.FromMilliseconds(100) }, new NoInbound());

    public RspamdCheckTests()
    {
        _outbound.Start();
    }

    private void UseRspamd(RspamdFailMode fail = RspamdFailMode.Accept, int? port = null)
    {
        int p = port ?? _rspamd.Port;
        _server.Context.Rspamd = new RspamdClient(new RspamdOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, p),
            Authority = $"127.0.0.1:{p}",
            Fail = fail,
        }, _outbound.Connect, _server.Clock);
    }

    /// <summary>Sends one message and returns the reply to its final dot.</summary>
    private string SendMessage(Action? whileWaiting = null)
    {
        InMemoryConnection c = _server.OpenTransaction();
        c.Send("DATA\r\n");
        Assert.StartsWith("354 ", c.TakeReplies());
        int before = c.Replies.Length;
        c.Send(Message + ".\r\n");
        whileWaiting?.Invoke();
        Assert.True(c.WaitFor(x => x.Replies.Length > before && x.Replies.EndsWith("\r\n", StringComparison.Ordinal), ServerHarness.Bound),
            "a reply to the final dot");
        return c.TakeReplies();
    }

    private List<string> Stored()
    {
        var data = new List<string>();
        SpoolReader.Read(_server.Spool.Directory, (in SpoolRecord r) => data.Add(Encoding.Latin1.GetString(r.Data)));
        return data;
    }

    private static string WithoutReceived(string stored)
    {
        Assert.StartsWith("Received: from client.example ([192.0.2.1])\r\n\tby mx.example with ESMTP id ", stored);
        int end = stored.IndexOf("\r\n", stored.IndexOf("; ", StringComparison.Ordinal), StringComparison.Ordinal) + 2;
        return stored[end..];
    }

    [Fact]
    public void RejectIs550WithRspamdsTextAndNothingIsStored()
    {
        UseRspamd();
        _rspamd.Reply = FakeRspamd.Verdict("reject", 20, 15, "Spam\\r\\ngo away");
        Assert.Equal("550 5.7.1 Spam go away\r\n", SendMessage());
        Assert.Empty(Stored());
        Assert.Equal(1, _server.Context.Rspamd!.Counters.Actions((int)RspamdAction.Reject));
        Assert.Contains(" rspamd id=", _server.LogText());
    }

    [Theory]
    [InlineData("soft reject")]
    [InlineData("greylist")]
    public void SoftRejectAndGreylistAre451AndNothingIsStored(string action)
    {
        UseRspamd();
        _rspamd.Reply = FakeRspamd.Verdict(action);
        Assert.Equal("451 4.7.1 Try again later\r\n", SendMessage());
        Assert.Empty(Stored());
    }

    [Fact]
    public void AddHeaderIsAcceptedWithXSpamRightAfterOurReceivedLine()
    {
        UseRspamd();
        _rspamd.Reply = FakeRspamd.Verdict("add header", 7.456, 6);
        Assert.StartsWith("250 2.0.0 OK queued as ", SendMessage());
        string stored = Assert.Single(Stored());
        Assert.Equal("X-Spam: Yes\r\nX-Spam-Score: 7.46 / 6.00\r\n" + Message.Replace("\n..", "\n.", StringComparison.Ordinal), WithoutReceived(stored));

        // What rspamd got: exactly the octets stored, less the fields its verdict added; and the envelope in headers.
        var (head, body) = Assert.Single(_rspamd.Requests);
        Assert.Equal(stored.Replace("X-Spam: Yes\r\nX-Spam-Score: 7.46 / 6.00\r\n", "", StringComparison.Ordinal), Encoding.Latin1.GetString(body));
        string queueId = stored.Split(" id ")[1].Split(';')[0].Split("\r\n")[0];
        Assert.StartsWith("POST /checkv2 HTTP/1.1\r\n", head);
        foreach (string field in (string[])[$"Host: 127.0.0.1:{_rspamd.Port}", "Connection: close", $"Content-Length: {body.Length}", "Pass: all",
                     "IP: 192.0.2.1", "Helo: client.example", "From: sender@example.org", "Rcpt: rcpt@example.com", $"Queue-Id: {queueId}"])
        {
            Assert.Contains("\r\n" + field + "\r\n", head + "\r\n");
        }
    }

    [Fact]
    public void UnderTlsTheRequestSaysWhichVersionAndCipherAndInPlaintextNeither()
    {
        UseRspamd();
        _rspamd.Reply = FakeRspamd.Verdict("no action", 0, 15);
        Assert.StartsWith("250 2.0.0 OK queued as ", SendMessage());

        // The same message on a session whose handshake negotiated TLS 1.3 (the in-memory transport states it).
        InMemoryConnection c = _server.OpenTransaction();
        c.SetNegotiatedTls(SslProtocols.Tls13, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256);
        c.Send("DATA\r\n");
        Assert.StartsWith("354 ", c.TakeReplies());
        int before = c.Replies.Length;
        c.Send(Message + ".\r\n");
        Assert.True(c.WaitFor(x => x.Replies.Length > before && x.Replies.EndsWith("\r\n", StringComparison.Ordinal), ServerHarness.Bound),
            "a reply to the final dot");
        Assert.StartsWith("250 2.0.0 OK queued as ", c.TakeReplies());

        Assert.Equal(2, _rspamd.Requests.Count);
        string plain = _rspamd.Requests[0].Head, tls = _rspamd.Requests[1].Head;
        Assert.DoesNotContain("TLS-", plain, StringComparison.Ordinal);
        Assert.Contains("\r\nTLS-Version: TLSv1.3\r\nTLS-Cipher: TLS_CHACHA20_POLY1305_SHA256\r\n", tls + "\r\n", StringComparison.Ordinal);
    }

    [Fact]
    public void NoActionAddsOnlyTheScore()
    {
        UseRspamd();
        _rspamd.Reply = FakeRspamd.Verdict("no action", -0.1, 15);
        Assert.StartsWith("250 2.0.0 OK queued as ", SendMessage());
        Assert.StartsWith("X-Spam-Score: -0.10 / 15.00\r\nFrom: a@example.org\r\n", WithoutReceived(Assert.Single(Stored())));
        Assert.Contains(" rspamd id=", _server.LogText());
    }

    [Fact]
    public void RspamdDownAcceptsTheMessageUnscannedAndSaysSo()
    {
        using var closed = new FakeRspamd();
        int port = closed.Port;
        closed.Dispose(); // nothing listens there now: connection refused
        UseRspamd(RspamdFailMode.Accept, port);
        Assert.StartsWith("250 2.0.0 OK queued as ", SendMessage());
        Assert.StartsWith("From: a@example.org\r\n", WithoutReceived(Assert.Single(Stored()))); // no X-Spam field: not scanned
        Assert.Equal(1, _server.Context.Rspamd!.Counters.Failures("connect"u8));
        Assert.Matches(@"rspamd-failed id=\S+ client=192\.0\.2\.1 reason=connect detail=ConnectionRefused fail=accept", _server.LogText());
    }

    [Fact]
    public void RspamdDownWithTempfailIs451AndNothingIsStored()
    {
        using var closed = new FakeRspamd();
        int port = closed.Port;
        closed.Dispose();
        UseRspamd(RspamdFailMode.Tempfail, port);
        Assert.Equal("451 4.7.1 Service unavailable - try again later\r\n", SendMessage());
        Assert.Empty(Stored());
    }

    [Theory]
    [InlineData(RspamdFailMode.Accept)]
    [InlineData(RspamdFailMode.Tempfail)]
    public void ASilentRspamdTimesOutOnTheClockThenTheFailModeDecides(RspamdFailMode mode)
    {
        UseRspamd(mode);
        _rspamd.Reply = null; // reads the request, never answers
        string reply = SendMessage(whileWaiting: () =>
        {
            Assert.True(SpinWait.SpinUntil(() => _rspamd.Requests.Count == 1, ServerHarness.Bound), "rspamd got the request");
            _server.Clock.Advance(RspamdOptions.DefaultTimeout - TimeSpan.FromSeconds(1));
            Assert.Equal(0, _server.Context.Rspamd!.Counters.Failures("timeout"u8)); // not before its deadline
            _server.Clock.Advance(TimeSpan.FromSeconds(1));
        });
        Assert.Equal(1, _server.Context.Rspamd!.Counters.Failures("timeout"u8));
        if (mode == RspamdFailMode.Accept) Assert.StartsWith("250 2.0.0 OK queued as ", reply);
        else Assert.Equal("451 4.7.1 Service unavailable - try again later\r\n", reply);
        Assert.Equal(mode == RspamdFailMode.Accept ? 1 : 0, Stored().Count);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"action\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"score\":99.0}")]
    [InlineData("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}")]
    [InlineData("garbage\r\n\r\n")]
    public void AMalformedReplyIsAFailureNotAVerdict(string reply)
    {
        UseRspamd(RspamdFailMode.Tempfail);
        _rspamd.Reply = reply;
        Assert.Equal("451 4.7.1 Service unavailable - try again later\r\n", SendMessage());
        Assert.Empty(Stored());
        Assert.Equal(1, _server.Context.Rspamd!.Counters.Failures("protocol"u8));
        Assert.Contains("rspamd-failed", _server.LogText());
    }

    [Fact]
    public void AConnectionClosedWhileRspamdThinksIsPooledOnceTheVerdictComesAndNothingIsStored()
    {
        UseRspamd();
        _rspamd.Reply = null;
        InMemoryConnection c = _server.OpenTransaction();
        c.Send("DATA\r\n");
        c.TakeReplies();
        c.Send(Message + ".\r\n");
        Assert.True(SpinWait.SpinUntil(() => _rspamd.Requests.Count == 1, ServerHarness.Bound));
        c.Disconnect();
        Assert.Equal(0, _server.Context.HandlersPooled); // the check still holds the handler
        _server.Clock.Advance(RspamdOptions.DefaultTimeout);
        Assert.True(SpinWait.SpinUntil(() => _server.Context.HandlersPooled == 1, ServerHarness.Bound), "pooled once the verdict came");
        Assert.Empty(Stored());
    }

    public async ValueTask DisposeAsync()
    {
        await _outbound.StopAsync(TimeSpan.Zero).WaitAsync(ServerHarness.Bound);
        _rspamd.Dispose();
        _server.Dispose();
    }

    private sealed class NoInbound : IConnectionHandlerFactory
    {
        public IConnectionHandler Create() => throw new InvalidOperationException("No inbound here.");

        public void Return(IConnectionHandler handler)
        {
        }

        public void WriteRejection(ConnectionInfo info, ConnectionRejection reason, IBufferWriter<byte> output)
        {
        }
    }
}
