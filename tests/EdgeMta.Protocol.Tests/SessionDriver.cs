// A host in miniature: feeds bytes to a session the way the server will (keeping unconsumed bytes),
// commits messages through the in-memory store, and collects every reply. Fixed clock, fixed host name.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public sealed class FixedClock : TimeProvider
{
    public static readonly DateTimeOffset Instant = new(2026, 11, 22, 7, 30, 15, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow() => Instant;
}

public sealed class SessionDriver
{
    private readonly ArrayBufferWriter<byte> _output = new();
    private readonly List<byte> _pending = [];
    private int _taken;

    public SessionDriver(SmtpSessionOptions? options = null, RecipientDirectory? directory = null, string client = "192.0.2.1",
        ISessionObserver? observer = null)
    {
        Options = options ?? new SmtpSessionOptions { HostName = "foo.com" };
        Store = new InMemoryMessageStore();
        Session = new SmtpSession(Options, directory ?? TestDirectories.Seed, new FixedClock(), observer);
        Client = client;
    }

    /// <summary>The directory of docs/seeds/003's sessions: Jones, Brown, Admin.MRC "Mark Crispin" at foo.com; Green unknown.</summary>
    public SmtpSessionOptions Options { get; }
    public SmtpSession Session { get; }
    public InMemoryMessageStore Store { get; }
    public string Client { get; }
    public SessionStatus LastStatus { get; private set; }
    public bool Closed => LastStatus == SessionStatus.Close;
    public bool TlsRequested => LastStatus == SessionStatus.StartTls;
    /// <summary>Bytes given but not consumed yet (what the host would keep).</summary>
    public int Pending => _pending.Count;

    public string Start()
    {
        LastStatus = Session.Start(new ClientInfo(Encoding.ASCII.GetBytes(Client)), Store, _output);
        return TakeOutput();
    }

    /// <summary>Starts with a screening (SessionScreening.cs); the replies written, if any.</summary>
    public string Start(ISessionScreening screening)
    {
        LastStatus = Session.Start(new ClientInfo(Encoding.ASCII.GetBytes(Client)), Store, _output, TestDirectories.Seed, screening);
        return TakeOutput();
    }

    /// <summary>The verdict is known: offers the kept input again, as the host does after AwaitingVerdict.</summary>
    public string Reoffer()
    {
        Pump();
        return TakeOutput();
    }

    /// <summary>Gives the bytes to the session as one receive; returns the replies written.</summary>
    public string Send(string text) => Send(Encoding.Latin1.GetBytes(text));

    public string Send(ReadOnlySpan<byte> bytes)
    {
        if (LastStatus == SessionStatus.Close)
        {
            throw new InvalidOperationException("sending to a closed session");
        }
        _pending.AddRange(bytes.ToArray());
        Pump();
        return TakeOutput();
    }

    /// <summary>Feeds the bytes in pieces as a client would send them: "lines" (one write a line), "bytes" (one byte a write), "whole".</summary>
    public string Feed(byte[] input, string mode)
    {
        var all = new StringBuilder();
        int i = 0;
        while (i < input.Length && !Closed && !TlsRequested)
        {
            int n = mode switch
            {
                "bytes" => 1,
                "whole" => input.Length - i,
                _ => Array.IndexOf(input, (byte)'\n', i) is int lf && lf >= 0 ? lf + 1 - i : input.Length - i,
            };
            all.Append(Send(input.AsSpan(i, n)));
            i += n;
        }
        return all.ToString();
    }

    private void Pump()
    {
        while (true)
        {
            byte[] buffer = [.. _pending];
            LastStatus = Session.Process(buffer, _output, out int consumed);
            Assert.InRange(consumed, 0, buffer.Length);
            _pending.RemoveRange(0, consumed);
            if (LastStatus == SessionStatus.AwaitingCommit)
            {
                LastStatus = Session.CompleteMessage(Store.Commit(), _output);
                if (LastStatus == SessionStatus.Continue)
                {
                    continue;
                }
            }
            if (LastStatus == SessionStatus.AwaitingVerdict)
            {
                return; // the host keeps the input (the line that waits included) and reads no more
            }
            if (LastStatus != SessionStatus.Continue)
            {
                _pending.Clear();
                return;
            }
            if (consumed == 0 || _pending.Count == 0)
            {
                return;
            }
            // A pass answers a bounded number of commands; the host (the transport) offers the rest again.
        }
    }

    public string TakeOutput()
    {
        string s = Encoding.Latin1.GetString(_output.WrittenSpan[_taken..]);
        _taken = _output.WrittenCount;
        return s;
    }

    public string AllOutput => Encoding.Latin1.GetString(_output.WrittenSpan);
}

public static class TestDirectories
{
    public const string SeedText = """
        # The mailboxes of docs/seeds/003's example sessions (RFC 5321 Appendix D); Green has none.
        Jones@foo.com
        Brown@foo.com
        Admin.MRC@foo.com   Mark Crispin
        Jones@XYZ.COM
        staff@foo.com       list: Jones@foo.com, Admin.MRC@foo.com
        old@foo.com         moved: new@elsewhere.org
        fwd@foo.com         forward: x@elsewhere.org
        @bar.org
        """;

    public static RecipientDirectory Seed { get; } = RecipientDirectory.Parse(SeedText);
}
