using EdgeMta.LoadTests;

namespace EdgeMta.LoadTests.Tests;

/// <summary>Whole runs over loopback sockets: against scripted misbehaving servers, and smtp-sink.</summary>
public class LoopbackRunTests
{
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    static Task<RunResult> Run(System.Net.IPEndPoint target, int sessions, long messages, bool perMessage = false, bool pipelining = false) =>
        new LoadRun(new LoadOptions
        {
            Target = target,
            Sessions = sessions,
            Messages = messages,
            PerMessageConnections = perMessage,
            Pipelining = pipelining,
            Timeout = TimeSpan.FromSeconds(10),
            Quiet = true,
            Scenario = "test",
        }).RunAsync().WaitAsync(Bound);

    [Fact]
    public async Task AServerThatClosesAfterTheDotDeliversNothing()
    {
        using var server = new FakeSmtpServer(FakeSmtpServer.Standard, afterDot: null);
        RunResult r = await Run(server.EndPoint, 2, 10);
        Assert.Equal(10, r.Attempted);
        Assert.Equal(0, r.Metrics.Delivered);
        Assert.Equal(10, r.Metrics.FailuresAt(SmtpStep.EndOfData, FailureCode.Closed));
        Assert.Equal(0, r.DeliveredPerSecond);
    }

    [Fact]
    public async Task AServerThatAnswersDataWith250InsteadOf354DeliversNothing()
    {
        using var server = new FakeSmtpServer(l => l.StartsWith("DATA", StringComparison.Ordinal) ? "250 sure" : FakeSmtpServer.Standard(l), "250 ok");
        RunResult r = await Run(server.EndPoint, 1, 5);
        Assert.Equal(0, r.Metrics.Delivered);
        Assert.Equal(5, r.Metrics.FailuresAt(SmtpStep.Data, 250));
    }

    [Fact]
    public async Task RefusedRecipientsAreCountedByCodeAndTheSessionCarriesOn()
    {
        int n = 0;
        using var server = new FakeSmtpServer(
            l => l.StartsWith("RCPT", StringComparison.Ordinal) && Interlocked.Increment(ref n) % 2 == 0 ? "451 4.3.0 try later" : FakeSmtpServer.Standard(l),
            "250 2.0.0 queued");
        RunResult r = await Run(server.EndPoint, 1, 10);
        Assert.Equal(5, r.Metrics.Delivered);
        Assert.Equal(5, r.Metrics.FailuresAt(SmtpStep.Rcpt, 451));
        Assert.Equal(1, r.Metrics.Connections);
        Assert.Contains("451", Reports.Text(r));
        Assert.Contains("RCPT,451,5", Reports.FailuresCsv(r));
    }

    [Fact]
    public async Task ANobodyListeningIsAConnectFailurePerMessage()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var endPoint = (System.Net.IPEndPoint)probe.LocalEndpoint;
        probe.Stop();
        RunResult r = await Run(endPoint, 2, 6);
        Assert.Equal(6, r.Metrics.FailuresAt(SmtpStep.Connect, FailureCode.ConnectError));
        Assert.Equal(0, r.Metrics.Delivered);
    }

    [SmtpSinkFact]
    public async Task FiftyMessagesOverTwoSessionsReachSmtpSinkAndTheReportCountsThem()
    {
        using var sink = SinkProcess.SmtpSink();
        RunResult r = await Run(sink.EndPoint, 2, 50);
        Assert.Equal(50, r.Attempted);
        Assert.Equal(50, r.Metrics.Delivered);
        Assert.Equal(0, r.Metrics.Failed);
        Assert.Equal(2, r.Metrics.Connections);
        Assert.Equal(50, r.Metrics.Step(SmtpStep.Mail).Count);
        Assert.Equal(50, r.Metrics.Step(SmtpStep.EndOfData).Count);
        Assert.Equal(50, r.Metrics.RepliesAt(SmtpStep.EndOfData, 250));
        Assert.Equal(50L * 1024, r.Metrics.BytesDelivered);

        string dir = Path.Combine(Path.GetTempPath(), "edgemta-load-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            Reports.WriteAll(r, dir);
            string[] summary = File.ReadAllLines(Path.Combine(dir, "summary.csv"));
            Assert.Contains(",50,50,0,", summary[1]);
            Assert.Contains("<svg", File.ReadAllText(Path.Combine(dir, "report.html")));
            Assert.Contains("| message | 50 |", File.ReadAllText(Path.Combine(dir, "report.md")));
            Assert.StartsWith("MAIL,50,", File.ReadAllLines(Path.Combine(dir, "steps.csv"))[4]);
            Assert.Single(File.ReadAllLines(Path.Combine(dir, "failures.csv")));   // the header alone
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [SmtpSinkFact]
    public async Task PipelinedMessagesOnOneConnectionEachReachSmtpSink()
    {
        using var sink = SinkProcess.SmtpSink();
        RunResult r = await Run(sink.EndPoint, 3, 30, perMessage: true, pipelining: true);
        Assert.Equal(30, r.Metrics.Delivered);
        Assert.Equal(0, r.Metrics.Failed);
        Assert.Equal(30, r.Metrics.Connections);
        Assert.Equal(30, r.Metrics.RepliesAt(SmtpStep.Quit, 221));
    }

    [AiosmtpdFact]
    public async Task MessagesReachAiosmtpdWithAndWithoutPipelining()
    {
        using var server = SinkProcess.Aiosmtpd();
        RunResult plain = await Run(server.EndPoint, 2, 20);
        Assert.Equal(20, plain.Metrics.Delivered);
        Assert.Equal(0, plain.Metrics.Failed);
        RunResult pipelined = await Run(server.EndPoint, 2, 20, perMessage: true, pipelining: true);
        Assert.Equal(20, pipelined.Metrics.Delivered);
        Assert.Equal(0, pipelined.Metrics.Failed);
        Assert.Equal(20, pipelined.Metrics.Connections);
    }
}
