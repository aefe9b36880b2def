// Contract: one `POST /checkv2` on one outbound connection (RspamdClient.cs): connect, write the head and the message
// (in blocks of at most BlockBytes, HandlerStatus.WriteMore between them, as the relay client streams DATA), read
// the reply (RspamdReplyReader, RspamdResult), and settle the outcome exactly once.
// The deadline: --rspamd-timeout from Start, on the server's clock (a TimeProvider timer, so a test's fake clock
// moves it): connect, send and reply all fit in it or the outcome is Timeout. Whoever settles first wins (a
// compare-and-swap): the reply, a failure, the timer, or the server's stop. The waiter then hears it on a pool
// thread, never inside this connection's callback nor the timer's, so the session's OnResumed runs on a thread
// of its own.
// After the outcome is settled the connection is of no more use: its next callback answers Close, and the idle
// timeout (set to the same deadline) closes one that hears nothing more. The message octets are released as soon
// as they are all written, or at the close, whichever is first (MessageBuffer's two holders).
// How it fails: nothing throws out of a callback for anything rspamd sends or does; every outcome is a value.
using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using EdgeMta.Protocol;
using EdgeMta.Transport;

namespace EdgeMta.Server.Rspamd;

internal sealed class RspamdExchange : IOutboundHandler, IThreadPoolWorkItem
{
    /// <summary>Octets of message one write takes: a bounded share of the transport's 256 KiB output buffer.</summary>
    internal const int BlockBytes = 64 * 1024;

    private static readonly SslClientAuthenticationOptions NoTls = new();

    private readonly RspamdClient _client;
    private readonly MessageBuffer _body;
    private readonly RspamdOutcome _outcome;
    private readonly IRspamdWaiter _waiter;
    private readonly RspamdReplyReader _reader = new();
    private RspamdResult _result;
    private byte[] _head = [];
    private int _headLength;
    private long _sent;
    private int _bodyReleased;
    private int _settled;
    private long _startedAt;
    private ITimer? _timer;

    public RspamdExchange(RspamdClient client, MessageBuffer body, RspamdOutcome outcome, IRspamdWaiter waiter)
    {
        _client = client;
        _body = body;
        _outcome = outcome;
        _waiter = waiter;
        body.Hold();
    }

    public SslClientAuthenticationOptions ClientTlsOptions => NoTls;

    public void WriteHead(ReadOnlySpan<byte> path, Envelope envelope, ReadOnlySpan<byte> queueId, ReadOnlySpan<byte> tlsVersion, ReadOnlySpan<byte> tlsCipher)
    {
        _head = ArrayPool<byte>.Shared.Rent(RspamdRequest.MaxLength(envelope, _client.Host.Length, path.Length, queueId.Length, tlsVersion.Length + tlsCipher.Length));
        _headLength = RspamdRequest.Write(_head, _client.Host, path, envelope, queueId, _body.Length, tlsVersion, tlsCipher);
    }

    /// <summary>Arms the deadline, then connects; every outcome arrives later, on another thread.</summary>
    public void Start(Action<EndPoint, IOutboundHandler, TimeSpan> connect)
    {
        TimeProvider clock = _client.Clock;
        _startedAt = clock.GetTimestamp();
        TimeSpan timeout = _client.Options.Timeout;
        // Armed first: whatever happens below, the check ends by its deadline.
        _timer = clock.CreateTimer(static state => ((RspamdExchange)state!).Settle(RspamdFailure.Timeout, "timeout"), this, timeout, Timeout.InfiniteTimeSpan);
        try
        {
            connect(_client.Options.EndPoint, this, timeout);
        }
        catch (InvalidOperationException)
        {
            ReleaseTransportSide();
            Settle(RspamdFailure.Stopping, "stopping");
        }
    }

    private bool Settled => Volatile.Read(ref _settled) != 0;

    public void OnConnectFailed(SocketError error)
    {
        ReleaseTransportSide();
        Settle(error == SocketError.OperationAborted ? RspamdFailure.Stopping : RspamdFailure.Connect, error.ToString());
    }

    public HandlerStatus OnOpened(ConnectionInfo info, IBufferWriter<byte> output)
    {
        if (Settled) return HandlerStatus.Close;
        // Resolution one second: the deadline's timer settles the outcome on time; this only closes the socket.
        info.SetIdleTimeout(_client.Options.Timeout);
        output.Write(_head.AsSpan(0, _headLength));
        return WriteBody(output);
    }

    public HandlerStatus OnWritable(IBufferWriter<byte> output) => Settled ? HandlerStatus.Close : WriteBody(output);

    private HandlerStatus WriteBody(IBufferWriter<byte> output)
    {
        if (_sent == _body.Length)
        {
            ReleaseBody();
            return HandlerStatus.Continue;
        }
        Span<byte> block = output.GetSpan(BlockBytes);
        int n = _body.CopyTo(_sent, block[..Math.Min(block.Length, BlockBytes)]);
        output.Advance(n);
        _sent += n;
        return HandlerStatus.WriteMore;
    }

    public HandlerStatus OnReceived(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        consumed = input.Length;
        if (Settled) return HandlerStatus.Close;
        return Finish(_reader.Read(input)) ? HandlerStatus.Close : HandlerStatus.Continue;
    }

    /// <summary>Settles on a whole or failed reply; false while more is needed.</summary>
    private bool Finish(ReplyStatus status)
    {
        switch (status)
        {
            case ReplyStatus.NeedMore:
                return false;
            case ReplyStatus.Error:
                Settle(RspamdFailure.Protocol, _reader.StatusCode is > 0 and not 200 ? "status=" + _reader.StatusCode : _reader.Reason);
                return true;
        }
        if (_result.TryParse(_reader.Body, out string reason)) Settle(RspamdFailure.None, "");
        else Settle(RspamdFailure.Protocol, reason);
        return true;
    }

    public HandlerStatus OnTimedOut(IBufferWriter<byte> output)
    {
        Settle(RspamdFailure.Timeout, "timeout");
        return HandlerStatus.Close;
    }

    public HandlerStatus OnShutdown(IBufferWriter<byte> output)
    {
        Settle(RspamdFailure.Stopping, "stopping");
        return HandlerStatus.Close;
    }

    public HandlerStatus OnResumed(IBufferWriter<byte> output) => HandlerStatus.Continue; // never paused

    public void OnTlsFailed(string reason)
    {
        // Never asked for: http:// only.
    }

    public void OnClosed()
    {
        if (!Settled) Finish(_reader.ReadEnd());
        ReleaseTransportSide();
    }

    private void ReleaseTransportSide()
    {
        ReleaseBody();
        _reader.Release();
        byte[] head = Interlocked.Exchange(ref _head, []);
        if (head.Length > 0) ArrayPool<byte>.Shared.Return(head);
    }

    private void ReleaseBody()
    {
        if (Interlocked.Exchange(ref _bodyReleased, 1) == 0) _body.Release();
    }

    // The one settlement: fills the waiter's outcome, then hands the waiter to the pool.
    private void Settle(RspamdFailure failure, string detail)
    {
        if (Interlocked.Exchange(ref _settled, 1) != 0) return;
        _timer?.Dispose();
        RspamdOutcome o = _outcome;
        o.Failure = failure;
        o.Detail = detail;
        o.Milliseconds = (long)_client.Clock.GetElapsedTime(_startedAt).TotalMilliseconds;
        if (failure == RspamdFailure.None)
        {
            o.Action = _result.Action;
            o.Score = _result.Score;
            o.RequiredScore = _result.RequiredScore;
            o.SmtpMessageLength = _result.SmtpMessageLength;
            _result.SmtpMessage.AsSpan(0, _result.SmtpMessageLength).CopyTo(o.SmtpMessage);
        }
        _client.Counters.Count(o);
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute() => _waiter.OnRspamdDone();
}
