// The protocol core with no I/O: ns per parsed command and per whole in-memory session, and bytes allocated.
// Run: dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*Protocol*'
// The aim (STYLE.md §12): 0 B allocated per command and per message once a session object is warm.
using System.Buffers;
using BenchmarkDotNet.Attributes;
using EdgeMta.Protocol;
using EdgeMta.TestKit;

namespace EdgeMta.Benchmarks;

[MemoryDiagnoser]
public class ProtocolParserBenchmarks
{
    private readonly byte[] _mail = "MAIL FROM:<Smith@bar.com> SIZE=4096 BODY=8BITMIME\r\n"u8.ToArray();
    private readonly byte[] _rcpt = "RCPT TO:<Jones@foo.com> NOTIFY=SUCCESS,FAILURE\r\n"u8.ToArray();
    private readonly byte[] _routed = "RCPT TO:<@foo.com,@relay.example:Jones@XYZ.COM>\r\n"u8.ToArray();

    [Benchmark(Description = "MAIL FROM with SIZE and BODY: frame, verb, path, parameters")]
    public long MailFromWithParameters()
    {
        CommandParser.TryParse(_mail, 512, out SmtpCommand c);
        ReadOnlySpan<byte> argument = _mail.AsSpan(c.ArgumentStart + 5, c.LineLength - c.ArgumentStart - 5);
        PathGrammar.TryParseReversePath(argument, out ParsedPath p, out _);
        EsmtpParameters.TryParseMail(argument[(p.End + 1)..], 26214400, out MailParameters m, out _);
        return m.DeclaredSize + p.MailboxLength;
    }

    [Benchmark(Description = "RCPT TO with NOTIFY: frame, verb, path, parameters")]
    public int RcptTo()
    {
        CommandParser.TryParse(_rcpt, 512, out SmtpCommand c);
        ReadOnlySpan<byte> argument = _rcpt.AsSpan(c.ArgumentStart + 3, c.LineLength - c.ArgumentStart - 3);
        PathGrammar.TryParseForwardPath(argument, out ParsedPath p, out _);
        EsmtpParameters.TryParseRcpt(argument[(p.End + 1)..], out ParameterError e);
        return p.MailboxLength + (int)e;
    }

    [Benchmark(Description = "RCPT TO with a source route")]
    public int RcptToWithSourceRoute()
    {
        CommandParser.TryParse(_routed, 512, out SmtpCommand c);
        PathGrammar.TryParseForwardPath(_routed.AsSpan(c.ArgumentStart + 3, c.LineLength - c.ArgumentStart - 3), out ParsedPath p, out _);
        return p.MailboxLength;
    }
}

[MemoryDiagnoser]
public class ProtocolSessionBenchmarks
{
    private static readonly byte[] ClientAddress = "192.0.2.1"u8.ToArray();
    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private readonly InMemoryMessageStore _store = new(keepMessages: false);
    private SmtpSession _session = null!;
    private byte[] _transaction = null!;
    private byte[] _greeting = null!;
    private byte[] _message = null!;
    private byte[] _quit = null!;

    [GlobalSetup]
    public void Setup()
    {
        var directory = RecipientDirectory.Parse("Jones@foo.com\nBrown@foo.com\n");
        _session = new SmtpSession(new SmtpSessionOptions { HostName = "foo.com" }, directory, TimeProvider.System);
        _greeting = "EHLO bar.com\r\n"u8.ToArray();
        _transaction = "MAIL FROM:<Smith@bar.com> SIZE=4096\r\nRCPT TO:<Jones@foo.com>\r\nRCPT TO:<Brown@foo.com>\r\nRSET\r\n"u8.ToArray();
        var text = new System.Text.StringBuilder("Subject: benchmark\r\nFrom: Smith@bar.com\r\n\r\n");
        while (text.Length < 4096 - 80)
        {
            text.Append("The quick brown fox jumps over the lazy dog, and the dot-stuffing rule too.\r\n");
        }
        _message = System.Text.Encoding.ASCII.GetBytes("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nDATA\r\n");
        _quit = System.Text.Encoding.ASCII.GetBytes(text + ".\r\nQUIT\r\n");
        WholeSession();
    }

    [Benchmark(Description = "MAIL, 2 RCPT, RSET pipelined in one buffer (4 commands)", OperationsPerInvoke = 4)]
    public int PipelinedCommands()
    {
        _output.ResetWrittenCount();
        _session.Reset();
        _session.Start(new ClientInfo(ClientAddress), _store, _output);
        _session.Process(_greeting, _output, out _);
        _session.Process(_transaction, _output, out int consumed);
        return consumed;
    }

    [Benchmark(Description = "Whole session: EHLO, MAIL, RCPT, DATA, 4 KiB message, QUIT")]
    public int WholeSession()
    {
        _output.ResetWrittenCount();
        _session.Reset();
        _session.Start(new ClientInfo(ClientAddress), _store, _output);
        _session.Process(_greeting, _output, out _);
        _session.Process(_message, _output, out _);
        ReadOnlySpan<byte> rest = _quit;
        SessionStatus s = _session.Process(rest, _output, out int consumed);
        if (s == SessionStatus.AwaitingCommit)
        {
            _session.CompleteMessage(_store.Commit(), _output);
            _session.Process(rest[consumed..], _output, out _);
        }
        return _output.WrittenCount;
    }
}
