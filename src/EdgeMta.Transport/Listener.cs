// One listening socket and its accept loop (SocketAsyncEventArgs, one accept outstanding).
//
// accept(2) errors fall in three kinds (Garnet's GarnetServerTcp, Postfix's master):
// - fatal: the listening socket is closed or unusable (our own stop): the loop ends;
// - resource pressure: EMFILE/ENFILE (TooManyOpenSockets), ENOBUFS (NoBufferSpaceAvailable):
//   retrying at once would spin on the same error, so wait (10 ms, doubling to 1 s) and retry; ENOMEM
//   surfaces as the catch-all SocketError.SocketError, which is treated the same way;
// - transient: the connection died in the backlog (ECONNABORTED, ECONNRESET, EPROTO...), retry at once.
//   A long run of them is treated as pressure, so no error can make this loop spin.
// A listener either binds its own socket or adopts one already bound and listening (handed over by a
// service manager); adopting checks it is a listening TCP socket and leaves its backlog alone.
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport;

internal sealed class Listener
{
    private const int MaxBackoffMs = 1000;
    private const int TransientRunBeforeBackoff = 64;

    private readonly TransportServer _server;
    private readonly Socket _socket;
    private readonly SocketAsyncEventArgs _args;
    private readonly int _initialBackoffMs;
    private int _backoffMs;
    private int _transientRun;
    private volatile bool _stopped;

    public Listener(TransportServer server, IPEndPoint endPoint, int backlog, int initialBackoffMs, bool requireProxy = false)
        : this(server, Bind(endPoint, backlog), initialBackoffMs)
    {
        RequiresProxy = requireProxy;
    }

    /// <summary>Every connection must begin with a PROXY header (TransportOptions.ProxyEndPoints).</summary>
    public bool RequiresProxy { get; }

    private Listener(TransportServer server, Socket listening, int initialBackoffMs)
    {
        _server = server;
        _initialBackoffMs = Math.Max(1, initialBackoffMs);
        _backoffMs = _initialBackoffMs;
        _socket = listening;
        BoundEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        _args = new SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true) { UserToken = this };
        _args.Completed += static (_, e) => ((Listener)e.UserToken!).OnAcceptCompleted();
    }

    /// <summary>Serves a socket someone else bound and put in the listening state. Throws ArgumentException
    /// (the socket left open, its owner's to close) when it is not a listening TCP socket on an IP address.</summary>
    public static Listener Adopt(TransportServer server, Socket listening, int initialBackoffMs)
    {
        bool listens;
        try
        {
            // SO_ACCEPTCONN: whether listen(2) was called. A socket that is only bound would fail every accept.
            listens = listening.SocketType == SocketType.Stream && listening.ProtocolType == ProtocolType.Tcp
                && listening.LocalEndPoint is IPEndPoint
                && listening.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection) is int on && on != 0;
        }
        catch (SocketException)
        {
            listens = false;
        }
        if (!listens)
        {
            throw new ArgumentException($"The socket handed over ({listening.SocketType}, {listening.LocalEndPoint?.ToString() ?? "unbound"}) is not a listening TCP socket.", nameof(listening));
        }
        // XXX The runtime closes a socket that never connected abortively: SO_LINGER {1, 0} on the socket, which
        // the service manager still holds, so the instance before us may have left it there, and accepted
        // sockets inherit it (a close with unsent data would then be a reset). Clear it on adoption; our own
        // close at stop does the same to the next instance, which clears it again.
        listening.LingerState = new LingerOption(false, 0);
        return new Listener(server, listening, initialBackoffMs);
    }

    private static Socket Bind(IPEndPoint endPoint, int backlog)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true; // [::]:port also takes IPv4, as most daemons do
            }
            socket.Bind(endPoint);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public IPEndPoint BoundEndPoint { get; }

    public void Start() => AcceptLoop();

    public void Stop()
    {
        _stopped = true;
        _socket.Dispose(); // the pending accept completes with OperationAborted: fatal, the loop ends
    }

    private void OnAcceptCompleted()
    {
        try
        {
            if (OnAccepted())
            {
                AcceptLoop();
            }
        }
        catch (Exception exception)
        {
            _server.Log.InternalError(exception);
        }
    }

    private void AcceptLoop()
    {
        while (!_stopped)
        {
            _args.AcceptSocket = null;
            bool pending;
            try
            {
                pending = _socket.AcceptAsync(_args);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (Exception exception) when (exception is SocketException or InvalidOperationException)
            {
                _server.Log.ListenerStopped(BoundEndPoint.ToString(), (exception as SocketException)?.SocketErrorCode ?? SocketError.SocketError);
                return;
            }
            if (pending || !OnAccepted())
            {
                return;
            }
        }
    }

    /// <summary>Handles one accept outcome; true to accept again at once.</summary>
    private bool OnAccepted()
    {
        SocketError error = _args.SocketError;
        if (error == SocketError.Success)
        {
            Socket accepted = _args.AcceptSocket!;
            _args.AcceptSocket = null;
            _backoffMs = _initialBackoffMs;
            _transientRun = 0;
            _server.Admit(accepted, RequiresProxy);
            return !_stopped;
        }
        if (_stopped)
        {
            return false;
        }
        switch (Classify(error))
        {
            case AcceptErrorKind.Fatal:
                _stopped = true;
                _server.Log.ListenerStopped(BoundEndPoint.ToString(), error);
                return false;
            case AcceptErrorKind.Transient when ++_transientRun < TransientRunBeforeBackoff:
                return true;
            default:
                _transientRun = 0;
                int delay = _backoffMs;
                _backoffMs = Math.Min(_backoffMs * 2, MaxBackoffMs);
                _server.Log.AcceptBackingOff(error, TimeSpan.FromMilliseconds(delay));
                _ = RetryAfterAsync(delay);
                return false;
        }
    }

    private async Task RetryAfterAsync(int delayMs)
    {
        await Task.Delay(delayMs).ConfigureAwait(false);
        try
        {
            AcceptLoop();
        }
        catch (Exception exception)
        {
            _server.Log.InternalError(exception);
        }
    }

    internal enum AcceptErrorKind { Fatal, ResourcePressure, Transient }

    internal static AcceptErrorKind Classify(SocketError error) => error switch
    {
        SocketError.OperationAborted or SocketError.Shutdown or SocketError.NotSocket or SocketError.InvalidArgument
            or SocketError.Fault or SocketError.AccessDenied or SocketError.OperationNotSupported => AcceptErrorKind.Fatal,
        // EMFILE and ENFILE map to TooManyOpenSockets, ENOBUFS to NoBufferSpaceAvailable; ENOMEM has no
        // SocketError of its own (.NET reports an unmapped errno as SocketError.SocketError), and an
        // unknown error is safer waited on than retried in a tight loop.
        SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable or SocketError.SocketError => AcceptErrorKind.ResourcePressure,
        _ => AcceptErrorKind.Transient,
    };
}
