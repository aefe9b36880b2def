// `edgemta queue VERB --spool DIR ...` through the host's own command tree (HostCommands, QueueCommand): the exit
// codes of docs/DELIVERY.md "Queue commands" (0 done, 1 an id not found, 2 bad usage or no spool), the server
// asked when its socket answers, the spool itself when not.
using System.CommandLine;
using EdgeMta.Delivery;
using EdgeMta.Spool;

namespace EdgeMta.Host.Tests;

public sealed class QueueCommandTests : IDisposable
{
    // Short: control.sock's path must fit sockaddr_un.
    private readonly string _dir = Path.Combine("/tmp", "emh-" + Guid.NewGuid().ToString("N")[..10]);

    public QueueCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private sealed class Answer : IQueueControl
    {
        public ValueTask<QueueResult> RunAsync(QueueRequest request, CancellationToken cancel)
            => ValueTask.FromResult(new QueueResult(1, $"live {QueueRequestLine.Name(request.Verb)} {string.Join(' ', request.Ids)}\n"));
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        ParseResult parse = HostCommands.Build().Parse(args);
        if (parse.Errors.Count > 0) return (HostCommands.UsageError, "", parse.Errors[0].Message);   // as Program.cs does
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("queue", "purge")]
    [InlineData("queue", "list")]                                 // no --spool
    [InlineData("queue", "list", "--spool", "/nonexistent-spool")]
    [InlineData("queue", "list", "--spool", "{dir}", "--frobnicate")]
    public async Task ABadCommandLineIsExitTwo(params string[] args)
    {
        var (code, _, err) = await Run(args.Select(a => a.Replace("{dir}", _dir, StringComparison.Ordinal)).ToArray());
        Assert.Equal(2, code);
        Assert.NotEmpty(err);
    }

    [Theory]
    [InlineData("delete", "queue delete needs ids or --all")]
    [InlineData("show", "queue show needs one or more ids")]
    [InlineData("hold", "queue hold needs ids or --all")]
    public async Task AVerbWithoutWhatItNeedsIsExitTwoAndOneStderrLine(string verb, string message)
    {
        var (code, output, err) = await Run("queue", verb, "--spool", _dir);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith($"edgemta: {message}", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task OfflineAnEmptySpoolListsNothingAndAnUnknownIdIsExitOne()
    {
        Assert.Equal((0, "", ""), await Run("queue", "list", "--spool", _dir));
        var (code, output, _) = await Run("queue", "hold", "--spool", _dir, "NOSUCHID");
        Assert.Equal(1, code);
        Assert.Equal("NOSUCHID: not in the queue\n", output);
    }

    [Fact]
    public async Task ASpoolAServerHoldsWithoutItsSocketIsExitTwoOnStderr()
    {
        await using var spool = MessageSpool.Open(new SpoolOptions { Directory = _dir, SegmentSize = 1 << 20, MinimumFreeBytes = 0 }, out _);
        var (code, output, err) = await Run("queue", "list", "--spool", _dir);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains("in use by another process", err);
    }

    [Fact]
    public async Task WithAServerListeningTheServerAnswersAndItsCodeIsTheExitCode()
    {
        await using var server = new ControlServer(_dir, new Answer());
        server.Start();
        Assert.Equal((1, "live show Q1 Q2\n", ""), await Run("queue", "show", "--spool", _dir, "Q1", "Q2"));
    }
}
