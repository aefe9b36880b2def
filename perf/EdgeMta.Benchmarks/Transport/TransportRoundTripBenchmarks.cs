// The transport alone over loopback: one client socket (blocking, preallocated buffers, so the client
// allocates nothing) against a handler that answers every line with a fixed reply. Measures what one
// command round trip costs end to end, and what a pipelined batch of 100 costs per command, with and
// without DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS (docs/PERF-NOTES.md). Allocations are per operation for
// the whole process (server and client); the server's steady state should add none.
//   dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*TransportRoundTrip*'
using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using EdgeMta.Transport;

namespace EdgeMta.Benchmarks.Transport;

[MemoryDiagnoser]
[Config(typeof(InlineCompletionsConfig))]
public class TransportRoundTripBenchmarks
{
    private const int Batch = 100;
    private static readonly byte[] Line = "NOOP\r\n"u8.ToArray();
    private static readonly byte[] Reply = "250 2.0.0 OK\r\n"u8.ToArray();

    private TransportServer _server = null!;
    private Socket _client = null!;
    private readonly byte[] _batch = new byte[Line.Length * Batch];
    private readonly byte[] _receive = new byte[64 * 1024];

    [GlobalSetup]
    public void Setup()
    {
        var options = new TransportOptions();
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        _server = new TransportServer(options, new FixedReplyFactory());
        _server.Start();
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _client.Connect(_server.BoundEndPoints[0]);
        ReceiveExactly(Reply.Length); // the greeting
        for (int i = 0; i < Batch; i++)
        {
            Line.CopyTo(_batch, i * Line.Length);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _server.StopAsync(TimeSpan.FromSeconds(1)).Wait(TimeSpan.FromSeconds(10));
    }

    [Benchmark(Description = "one command, one round trip")]
    public void OneCommand()
    {
        _client.Send(Line);
        ReceiveExactly(Reply.Length);
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "100 pipelined commands, per command")]
    public void PipelinedBatch()
    {
        _client.Send(_batch);
        ReceiveExactly(Reply.Length * Batch);
    }

    private void ReceiveExactly(int count)
    {
        int received = 0;
        while (received < count)
        {
            int n = _client.Receive(_receive, received, count - received, SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException("server closed");
            }
            received += n;
        }
    }

    private sealed class InlineCompletionsConfig : ManualConfig
    {
        public InlineCompletionsConfig()
        {
            AddJob(Job.Default.WithId("thread pool"));
            AddJob(Job.Default.WithEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1").WithId("inline"));
        }
    }

    private sealed class FixedReplyFactory : IConnectionHandlerFactory
    {
        public IConnectionHandler Create() => new FixedReplyHandler();

        public void Return(IConnectionHandler handler) { }

        public void WriteRejection(ConnectionInfo info, ConnectionRejection reason, IBufferWriter<byte> output) =>
            output.Write("421 4.7.0 too many connections\r\n"u8);
    }

    /// <summary>Answers each complete line with one fixed reply: the cheapest possible protocol.</summary>
    private sealed class FixedReplyHandler : IConnectionHandler
    {
        public HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
        {
            output.Write(Reply);
            return HandlerStatus.Continue;
        }

        public HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
        {
            consumed = 0;
            int lf;
            while ((lf = input[consumed..].IndexOf((byte)'\n')) >= 0)
            {
                consumed += lf + 1;
                output.Write(Reply);
            }
            return HandlerStatus.Continue;
        }

        public HandlerStatus OnResumed(IBufferWriter<byte> output) => HandlerStatus.Continue;

        public HandlerStatus OnTimedOut(IBufferWriter<byte> output) => HandlerStatus.Close;

        public HandlerStatus OnShutdown(IBufferWriter<byte> output) => HandlerStatus.Close;

        public void OnClosed() { }
    }
}
