using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeMta.Transport.Tests;

/// <summary>Lowers the process's descriptor limit, so it runs alone, after the parallel tests.</summary>
[CollectionDefinition(nameof(DescriptorLimitCollection), DisableParallelization = true)]
public sealed class DescriptorLimitCollection;

[Collection(nameof(DescriptorLimitCollection))]
public sealed partial class AcceptPressureTests
{
    private const int RlimitNofile = 7; // Linux

    [Fact]
    public async Task AcceptOutOfDescriptorsBacksOffAndRecoversWhenDescriptorsReturn()
    {
        var log = new RecordingLog();
        await using var server = new TestServer(() => new EchoLineHandler(), o => o.Log = log);
        using var client = new Socket(server.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        int clientFd = (int)client.Handle;

        // Take every free descriptor number up to the client's, so the next one would be above it.
        var fillers = new List<FileStream>();
        try
        {
            while (true)
            {
                var file = new FileStream("/dev/null", FileMode.Open, FileAccess.Read);
                if ((int)file.SafeFileHandle.DangerousGetHandle() > clientFd)
                {
                    file.Dispose();
                    break;
                }
                fillers.Add(file);
            }
            Assert.Equal(0, GetRlimit(RlimitNofile, out RLimit saved));
            RLimit lowered = saved;
            lowered.Current = (ulong)clientFd + 1;
            Assert.Equal(0, SetRlimit(RlimitNofile, ref lowered));
            try
            {
                // The handshake completes in the kernel's backlog; accept(2) then fails with EMFILE.
                // A blocking connect: the first asynchronous operation would register the socket with
                // an epoll engine the runtime may create lazily, which needs descriptors of its own.
                // Keep the window short and this thread busy: while the limit is low the runtime itself
                // cannot get descriptors (an await here crashed the test host with "Out of memory").
                client.Connect(server.EndPoint);
                for (int i = 0; i < 500 && log.Backoffs.IsEmpty; i++)
                {
                    Thread.Sleep(10);
                }
            }
            finally
            {
                Assert.Equal(0, SetRlimit(RlimitNofile, ref saved));
            }
        }
        finally
        {
            foreach (FileStream file in fillers)
            {
                file.Dispose();
            }
        }

        Assert.False(log.Backoffs.IsEmpty);
        Assert.All(log.Backoffs, e => Assert.Equal(SocketError.TooManyOpenSockets, e));
        using var connected = new TestClient(client);
        Assert.Equal("hello\r\n", await connected.ReadUntilAsync("\r\n"));
        Assert.Equal(1, server.Server.Counters.Accepted);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRlimit(int resource, ref RLimit limit);

    private sealed class RecordingLog : ITransportLog
    {
        public readonly ConcurrentQueue<SocketError> Backoffs = new();

        public void AcceptBackingOff(SocketError error, TimeSpan delay) => Backoffs.Enqueue(error);

        public void HandlerFaulted(long connectionId, Exception exception) { }

        public void InternalError(Exception exception) { }

        public void ListenerStopped(string endPoint, SocketError error) { }
    }
}
