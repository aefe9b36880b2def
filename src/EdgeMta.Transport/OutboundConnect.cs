// One outbound connect in flight: a non-blocking connect(2) and the timer that bounds it.
//
// What it does: issues Socket.ConnectAsync(SocketAsyncEventArgs) (which also resolves a DnsEndPoint, without
// blocking, and tries its addresses), arms a one-shot timer on the transport's clock, and settles exactly once:
// - connected in time: the socket goes to a pooled Connection (TransportServer.Outbound.cs), which calls
//   OnOpened and drives it as any other connection;
// - refused, unreachable, not resolved: OnConnectFailed with the socket's error;
// - the timer fired first: the connect is cancelled and the socket disposed, then OnConnectFailed(TimedOut),
//   even if the connect happened to complete in the instant between (its socket is already gone);
// - the server began to stop: cancelled the same way, OnConnectFailed(OperationAborted).
// The state word decides who settles (a compare-and-swap from Connecting), so the handler hears one outcome.
//
// What it does not do: retry, try other next hops, or call the handler on the caller's thread. A connect that
// completes synchronously (a refused Unix socket, typically) is settled on a pool thread, so that Connect
// never re-enters its caller.
//
// How it fails: never by exception. A throw from ConnectAsync (a socket disposed by the timer before the call,
// an address family the socket cannot reach) is a failed connect; a throw from the handler's OnConnectFailed
// is logged (ITransportLog.HandlerFaulted) and goes no further.
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport;

internal sealed class OutboundConnect : IThreadPoolWorkItem
{
    private const int Connecting = 0;
    private const int Completed = 1;
    private const int TimedOut = 2;
    private const int Aborted = 3;

    private readonly TransportServer _server;
    private readonly IOutboundHandler _handler;
    private readonly Socket _socket;
    private readonly SocketAsyncEventArgs _args;
    private readonly bool _tcp;
    private readonly long _id;
    private ITimer? _timer;
    private int _state;

    public OutboundConnect(TransportServer server, Socket socket, EndPoint remote, IOutboundHandler handler, long id)
    {
        _server = server;
        _socket = socket;
        _handler = handler;
        _id = id;
        _tcp = socket.ProtocolType == ProtocolType.Tcp;
        _args = new SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true) { RemoteEndPoint = remote, UserToken = this };
        _args.Completed += static (_, e) => ((OutboundConnect)e.UserToken!).OnCompleted();
    }

    /// <summary>Arms the timer, then issues the connect. The outcome always arrives on another thread.</summary>
    public void Begin(TimeSpan timeout)
    {
        // Armed first: a connect that never completes is still bounded, whatever happens below.
        _timer = _server.Clock.CreateOneShot(static state => ((OutboundConnect)state!).Cancel(TimedOut), this, timeout);
        bool pending;
        try
        {
            if (_tcp)
            {
                _socket.NoDelay = true; // commands are batched by the transport already; Nagle would delay them
            }
            pending = _socket.ConnectAsync(_args);
        }
        catch (Exception exception) when (exception is ObjectDisposedException or SocketException or InvalidOperationException or NotSupportedException or ArgumentException)
        {
            // Disposed by the timer or by stop before the call, or an endpoint this socket cannot reach.
            _args.SocketError = exception switch
            {
                SocketException socketError => socketError.SocketErrorCode,
                ObjectDisposedException => SocketError.OperationAborted,
                _ => SocketError.AddressFamilyNotSupported,
            };
            pending = false;
        }
        if (!pending)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    /// <summary>The timer (TimedOut) or stop (Aborted): cancel the connect unless it has already settled.</summary>
    private void Cancel(int reason)
    {
        if (Interlocked.CompareExchange(ref _state, reason, Connecting) != Connecting)
        {
            return;
        }
        // Guarded: this runs on a timer thread, where an exception would end the process.
        try
        {
            Socket.CancelConnectAsync(_args); // stops a DnsEndPoint's resolution or its next address
            _socket.Dispose(); // the pending connect completes with OperationAborted
        }
        catch (Exception exception)
        {
            _server.Log.InternalError(exception);
            _socket.Dispose();
        }
    }

    /// <summary>Stop's cancellation, for TransportServer's list of connects in flight.</summary>
    public void Abort() => Cancel(Aborted);

    void IThreadPoolWorkItem.Execute() => OnCompleted();

    private void OnCompleted()
    {
        // Guarded: an exception escaping a completion callback would end the process.
        try
        {
            Settle();
        }
        catch (Exception exception)
        {
            _server.Log.InternalError(exception);
            _socket.Dispose();
        }
    }

    private void Settle()
    {
        _server.ForgetConnect(this);
        _timer?.Dispose();
        int state = Interlocked.CompareExchange(ref _state, Completed, Connecting);
        SocketError error = _args.SocketError;
        if (state == Connecting)
        {
            _args.Dispose(); // when Cancel won instead, it may still hold the args: the GC has them
        }
        else if (state == TimedOut)
        {
            error = SocketError.TimedOut;
        }
        else if (state == Aborted)
        {
            error = SocketError.OperationAborted;
        }
        if (error != SocketError.Success)
        {
            _socket.Dispose();
            try
            {
                _handler.OnConnectFailed(error);
            }
            catch (Exception exception)
            {
                _server.Log.HandlerFaulted(_id, exception);
            }
            return;
        }
        _server.StartOutbound(_socket, _id, _handler);
    }
}
