// One server's shared parts, as EdgeMtaServer builds them, over an in-memory transport and a fake clock:
// the handler pool (SmtpServerContext), a real spool in a temporary directory (flushed by its own flusher
// thread, as in production), and the log into memory. The spool's flush can be held in flight with
// HoldFlushes, so a test decides when a commit completes instead of sleeping.
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Server;
using EdgeMta.Server.Logging;
using EdgeMta.Spool;

namespace EdgeMta.Server.Tests;

internal sealed class ServerHarness : IDisposable
{
    /// <summary>Long enough for any step on a loaded 2-core machine; only a hang ever waits this long.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly string _directory;
    private readonly MemoryStream _logStream = new();
    private ManualResetEventSlim? _flushGate;
    private readonly ManualResetEventSlim _flushEntered = new(false);

    /// <param name="stress">Built with <see cref="Log"/> as its log (null: the context's default, which never stresses);
    /// its shortening is wired to the in-memory transport, as EdgeMtaServer wires it to the real one.</param>
    public ServerHarness(bool verbose = true, SmtpSessionOptions? options = null, TimeSpan? spoolTimeout = null,
        Func<EdgeMta.Server.Screening.IVerdictListener, EdgeMta.Server.Screening.IConnectionScreening>? screening = null,
        Func<ServerLog, ConnectionStress>? stress = null)
    {
        _directory = Path.Combine(Path.GetTempPath(), "edgemta-server-tests-" + Guid.NewGuid().ToString("N"));
        Clock = new FakeClock();
        Spool = MessageSpool.Open(new SpoolOptions
        {
            Directory = _directory,
            Sync = SpoolSync.Always,
            SegmentSize = 1 << 20,
            MaxMessageSize = 1 << 16,
            MinimumFreeBytes = 0,
            Clock = Clock,   // the failing window and the commit deadline move with the test's clock
            CommitTimeout = spoolTimeout ?? new SpoolOptions { Directory = "." }.CommitTimeout,
        }, out _);
        Log = new ServerLog(_logStream, verbose, Clock);
        Context = new SmtpServerContext(options ?? new SmtpSessionOptions { HostName = "mx.example", MaxMessageSize = 32 * 1024 }, RecipientDirectory.Sink, Spool, Log,
            maxRetainedHandlers: 16, Clock)
        {
            Screening = screening,
            Stress = stress?.Invoke(Log) ?? new ConnectionStress(0, new SlowClientOptions(), null),
        };
        Transport = new InMemoryTransport(Context, Clock, TimeSpan.FromMinutes(5));
        Context.Stress.Shorten ??= Transport.ShortenRequestDeadlines;
    }

    public FakeClock Clock { get; }
    public MessageSpool Spool { get; }
    public ServerLog Log { get; }
    public SmtpServerContext Context { get; }
    public InMemoryTransport Transport { get; }

    /// <summary>Every flush waits at its start until <see cref="ReleaseFlushes"/>: commits stay in flight.</summary>
    public void HoldFlushes()
    {
        var gate = new ManualResetEventSlim(false);
        _flushGate = gate;
        Spool.InjectFlushError = () =>
        {
            _flushEntered.Set();
            gate.Wait(Bound); // bounded: a test that forgets to release fails, it never hangs
            return 0;
        };
    }

    /// <summary>True once the flusher thread is inside a held flush.</summary>
    public bool WaitForHeldFlush() => _flushEntered.Wait(Bound);

    public void ReleaseFlushes() => _flushGate?.Set();

    /// <summary>A connection past EHLO, with a sender and a recipient: the next command is DATA or BDAT.</summary>
    public InMemoryConnection OpenTransaction()
    {
        InMemoryConnection c = Transport.Connect();
        Assert.StartsWith("220 ", c.TakeReplies());
        c.Send("EHLO client.example\r\n");
        Assert.StartsWith("250-", c.TakeReplies());
        c.Send("MAIL FROM:<sender@example.org>\r\nRCPT TO:<rcpt@example.com>\r\n");
        Assert.Equal("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", c.TakeReplies());
        return c;
    }

    /// <summary>Stops the log's writer and returns everything it wrote.</summary>
    public string LogText()
    {
        Log.Dispose();
        return Encoding.UTF8.GetString(_logStream.ToArray());
    }

    public void Dispose()
    {
        ReleaseFlushes();
        Transport.Dispose();
        Spool.Dispose();
        Log.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a leftover temporary directory is not worth failing a test over
        }
    }
}
