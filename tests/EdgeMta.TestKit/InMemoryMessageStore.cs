// Contract: an IMessageStore that keeps messages in memory, for tests, transcripts and benchmarks.
//
// Not durable, not thread-safe; one per session. In Reuse mode it keeps no copies (a benchmark sink
// that allocates nothing once warm); otherwise each committed message is kept with its envelope.
// A test double: it lives in the test kit, never in the shipped binary.
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.TestKit;

/// <summary>A message the in-memory store committed.</summary>
public sealed record StoredMessage(string QueueId, string ReversePath, string[] ForwardPaths, byte[] Data);

public sealed class InMemoryMessageStore : IMessageStore
{
    private readonly bool _keep;
    private byte[] _buffer = new byte[8192];
    private int _length;
    private Envelope? _envelope;
    private int _sequence;
    private readonly byte[] _queueId = new byte[16];
    private int _queueIdLength;

    /// <param name="keepMessages">False: count messages and octets only (no allocation once warm).</param>
    public InMemoryMessageStore(bool keepMessages = true)
    {
        _keep = keepMessages;
    }

    public List<StoredMessage> Messages { get; } = [];
    public int Aborted { get; private set; }
    public int Committed { get; private set; }
    public long CommittedOctets { get; private set; }
    public bool InProgress => _envelope != null;
    /// <summary>The next Begin answers this instead of starting (then resets to Started).</summary>
    public StoreBeginStatus NextBegin { get; set; } = StoreBeginStatus.Started;

    /// <summary>What <see cref="IMessageStore.Readiness"/> answers (tests set Full for "disk full", Failing for a broken disk).</summary>
    public StoreReadiness Readiness { get; set; } = StoreReadiness.Ready;
    /// <summary>The text of the message in progress.</summary>
    public ReadOnlySpan<byte> Current => _buffer.AsSpan(0, _length);

    public StoreBeginResult Begin(Envelope envelope)
    {
        if (NextBegin != StoreBeginStatus.Started)
        {
            StoreBeginStatus s = NextBegin;
            NextBegin = StoreBeginStatus.Started;
            return new StoreBeginResult(s, default);
        }
        _envelope = envelope;
        _length = 0;
        _sequence++;
        // Queue ids "Q" + 8 hex digits: deterministic for golden transcripts.
        _queueId[0] = (byte)'Q';
        _queueIdLength = 1;
        for (int shift = 28; shift >= 0; shift -= 4)
        {
            _queueId[_queueIdLength++] = (byte)"0123456789ABCDEF"[(_sequence >> shift) & 0xF];
        }
        return StoreBeginResult.Started(_queueId.AsSpan(0, _queueIdLength));
    }

    public void Append(ReadOnlySpan<byte> octets)
    {
        if (_envelope == null)
        {
            throw new InvalidOperationException("Append without Begin");
        }
        if (_length + octets.Length > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + octets.Length));
        }
        octets.CopyTo(_buffer.AsSpan(_length));
        _length += octets.Length;
    }

    public void Abort()
    {
        _envelope = null;
        _length = 0;
        Aborted++;
    }

    /// <summary>What the host does between AwaitingCommit and CompleteMessage: make the message "durable".</summary>
    public CommitOutcome Commit()
    {
        Envelope e = _envelope ?? throw new InvalidOperationException("Commit without Begin");
        Committed++;
        CommittedOctets += _length;
        if (_keep)
        {
            var rcpts = new string[e.RecipientCount];
            for (int i = 0; i < rcpts.Length; i++)
            {
                rcpts[i] = Encoding.UTF8.GetString(e.GetForwardPath(i));
            }
            Messages.Add(new StoredMessage(Encoding.ASCII.GetString(_queueId, 0, _queueIdLength), Encoding.UTF8.GetString(e.ReversePath), rcpts, _buffer.AsSpan(0, _length).ToArray()));
        }
        _envelope = null;
        _length = 0;
        return CommitOutcome.Committed;
    }
}
