// No allocation per command or per message on the steady path (measured in bytes, not time), with the
// command counters of the metrics in place.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.TestKit;

namespace EdgeMta.Protocol.Tests;

public class AllocationTests
{
    private static long AllocatedBy(Action run) => Allocations.SteadyStateBytes(run);

    [Fact]
    public void ARepeatedSessionOfCommandsAllocatesNothingOnceWarm()
    {
        var session = new SmtpSession(new SmtpSessionOptions { HostName = "foo.com", Vrfy = VrfyMode.Enabled, Commands = new CommandCounters() }, TestDirectories.Seed, new FixedClock());
        var store = new InMemoryMessageStore(keepMessages: false);
        var output = new ArrayBufferWriter<byte>(1 << 16);
        byte[] address = "192.0.2.1"u8.ToArray();
        byte[] input = Encoding.ASCII.GetBytes(
            "MAIL FROM:<Smith@bar.com> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<Jones@foo.com> NOTIFY=NEVER\r\nRCPT TO:<Green@foo.com>\r\n"
            + "RCPT TO:<@foo.com:Brown@foo.com>\r\nRCPT TO:<fwd@foo.com>\r\nRSET\r\nHELP\r\nFOO\r\nQUIT\r\n");
        SessionStatus last = default;
        long allocated = AllocatedBy(() =>
        {
            output.ResetWrittenCount();
            session.Reset();
            session.Start(new ClientInfo(address), store, output);
            session.Process("EHLO bar.com\r\n"u8, output, out _);
            session.Process("VRFY Crispin\r\n"u8, output, out _);
            last = session.Process(input, output, out _); // (xunit's Assert allocates: check after measuring)
        });
        Assert.Equal(SessionStatus.Close, last);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void ARepeatedSessionWithAMessageAllocatesNothingOnceWarm()
    {
        var observer = new CountingObserver();
        var session = new SmtpSession(new SmtpSessionOptions { HostName = "foo.com", Commands = new CommandCounters() }, TestDirectories.Seed, new FixedClock(), observer);
        var store = new InMemoryMessageStore(keepMessages: false);
        var output = new ArrayBufferWriter<byte>(1 << 16);
        byte[] address = "192.0.2.1"u8.ToArray();
        var text = new StringBuilder("MAIL FROM:<Smith@bar.com>\r\nRCPT TO:<Jones@foo.com>\r\nDATA\r\n");
        byte[] commands = Encoding.ASCII.GetBytes(text.ToString());
        text.Clear().Append("Subject: x\r\n\r\n");
        for (int i = 0; i < 60; i++)
        {
            text.Append("..a line of text that is dot-stuffed, sixty-odd octets long.\r\n");
        }
        byte[] message = Encoding.ASCII.GetBytes(text.Append(".\r\nQUIT\r\n").ToString());
        SessionStatus last = default, awaiting = default;
        long allocated = AllocatedBy(() =>
        {
            output.ResetWrittenCount();
            session.Reset();
            session.Start(new ClientInfo(address), store, output);
            session.Process("EHLO bar.com\r\n"u8, output, out _);
            session.Process(commands, output, out _);
            awaiting = session.Process(message, output, out int consumed);
            session.CompleteMessage(store.Commit(), output);
            last = session.Process(message.AsSpan(consumed), output, out _);
        });
        Assert.Equal(SessionStatus.AwaitingCommit, awaiting);
        Assert.Equal(SessionStatus.Close, last);
        Assert.Equal(0, allocated);
        // EHLO MAIL RCPT DATA QUIT, reported in every run: 12 runs, or 10 more for each round a warm-up
        // straggler of the JIT charged to the thread (Allocations.SteadyStateBytes).
        Assert.Contains(observer.Commands, new[] { 12 * 5, 22 * 5, 32 * 5 });
    }

    /// <summary>An observer as the server's would be: it looks at every command line and keeps nothing.</summary>
    private sealed class CountingObserver : ISessionObserver
    {
        public int Commands;
        public long Octets;

        public void OnCommand(SmtpVerb verb, ReadOnlySpan<byte> line)
        {
            Commands++;
            Octets += line.Length + (int)verb;
        }
    }
}
