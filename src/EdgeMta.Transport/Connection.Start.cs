// How a connection begins: an accepted socket taken over (a new generation claimed, registered in the table),
// turned away with the factory's refusal when over the global limit, or opened to its handler at once, or
// after a PROXY header (Connection.Proxy.cs) for a --listen-proxy listener. Connection.cs holds the contract.
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    /// <summary>
    /// Takes over an accepted socket. <paramref name="rejection"/> set (the global limit): the factory writes
    /// the refusal and the connection closes after sending it. <paramref name="requireProxy"/>: the session opens
    /// only after a PROXY header (Connection.Proxy.cs). Otherwise runs the greeting and the first receive inline.
    /// </summary>
    public void Start(Socket socket, long id, ConnectionRejection? rejection, bool requireProxy)
    {
        int generation = Claim(socket, id);
        _admitted = rejection is null;
        _peer = socket.RemoteEndPoint as IPEndPoint;

        ConnectionTable.Mode mode = _server.Table.Register(this, generation, out _slot);
        try
        {
            if (rejection is ConnectionRejection reason)
            {
                Reject(NewInfo(generation, client: null), reason);
            }
            else if (requireProxy)
            {
                BeginProxyPhase();
            }
            else
            {
                OpenSession(client: null);
            }
        }
        catch (Exception exception)
        {
            Fault(exception);
        }
        Opened(mode);
    }

    /// <summary>The client is known (the socket peer, or the one a PROXY header named): admit it against the
    /// host's IConnectionGate, then create the handler and let it greet. Throws what the handler throws.</summary>
    private void OpenSession(IPEndPoint? client)
    {
        ConnectionInfo info = NewInfo((int)(Volatile.Read(ref _state) >> 32), client);
        ConnectionRejection? rejection = _server.TryAdmitAddress(info.ClientEndPoint?.Address, out _admittedAddress);
        if (rejection is ConnectionRejection reason)
        {
            Reject(info, reason);
            return;
        }
        Interlocked.Increment(ref _server.Counters._accepted);
        _handler = _server.Factory.Create();
        Apply(_handler.OnOpened(info, _output));
    }

    private ConnectionInfo NewInfo(int generation, IPEndPoint? client) =>
        new(this, generation, _id, _peer, _socket!.LocalEndPoint as IPEndPoint, client ?? _peer, client is null ? null : _peer);

    private void Reject(ConnectionInfo info, ConnectionRejection reason)
    {
        if (_admitted)
        {
            // Refused by the gate after the global one let it in: rejected ones are not Open.
            _admitted = false;
            Interlocked.Decrement(ref _server.Counters._open);
        }
        Interlocked.Increment(ref _server.Counters._rejected);
        _server.Factory.WriteRejection(info, reason, _output);
        _closeRequested = true;
    }

    /// <summary>Takes the socket for a new generation; the caller holds Running from here on.</summary>
    private int Claim(Socket socket, long id)
    {
        int generation = unchecked((int)id);
        if (generation == 0)
        {
            generation = 1;
        }
        _socket = socket;
        _id = id;
        _idleTimeoutMs = _server.DefaultIdleTimeoutMs;
        _deadline = long.MaxValue;
        Volatile.Write(ref _state, ((long)generation << 32) | Running);
        return generation;
    }

    /// <summary>After OnOpened: join a stop already under way, then run the first send and receive inline.</summary>
    private void Opened(ConnectionTable.Mode mode)
    {
        if (mode == ConnectionTable.Mode.Stopping)
        {
            _shutdownRequested = true;
        }
        else if (mode == ConnectionTable.Mode.Aborting)
        {
            Close();
        }
        RunSignals(drive: true);
    }
}
