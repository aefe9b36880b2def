// Receive, send and close on the socket, with SocketAsyncEventArgs. Each Post* either leaves the
// operation pending (its completion posts a signal) or handles the synchronous result at once and
// returns to the drive loop. Under TLS the same Post* hand over to the SslStream (Connection.Tls.cs)
// at one branch each; the plain path is otherwise unchanged.
using System.Net.Sockets;

namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    private void PostReceive()
    {
        if (_draining)
        {
            ReturnInput(); // after our FIN the peer's bytes are read only to be dropped
        }
        // Zero-byte receive while nothing is kept: wait for readiness without holding a buffer.
        bool real = _dataReady || _inputEnd > _inputStart || !_server.WaitForDataBeforeTakingBuffer;
        if (real && !EnsureInputSpace())
        {
            Interlocked.Increment(ref _server.Counters._inputOverflows);
            Close();
            return;
        }
        _receiveZeroByte = !real;
        _dataReady = false;
        _receivePending = true;
        if (_tls is not null)
        {
            PostTlsReceive(real);
            return;
        }
        if (real)
        {
            _receiveArgs.SetBuffer(_input, _inputEnd, _input!.Length - _inputEnd);
        }
        else
        {
            _receiveArgs.SetBuffer(Memory<byte>.Empty);
        }
        bool pending;
        try
        {
            pending = _socket!.ReceiveAsync(_receiveArgs);
        }
        catch (Exception exception) when (exception is ObjectDisposedException or SocketException or InvalidOperationException)
        {
            _receivePending = false;
            Close();
            return;
        }
        if (!pending)
        {
            _receivePending = false;
            OnReceiveResult();
        }
    }

    private void OnReceiveResult()
    {
        int received;
        if (_tls is null)
        {
            if (_receiveArgs.SocketError != SocketError.Success)
            {
                Close(); // reset, or our own close
                return;
            }
            received = _receiveArgs.BytesTransferred;
        }
        else if (!TakeTlsReceive(out received))
        {
            Close(); // reset, a bad record, or our own close
            return;
        }
        if (_receiveZeroByte)
        {
            // Data, or the FIN: the real receive tells which. But a zero-byte wait can complete with nothing
            // to read: .NET's Unix socket engine completes it on any epoll notification for the socket without
            // a syscall ("our caller is interested in the event", SocketAsyncContext.Unix.cs), also inline when
            // a notification came while it was being queued, and a notification can be stale: bytes that
            // arrived while no receive was posted (a paused connection, Connection.Park.cs) and were since
            // taken by a receive that completed at once. Taking a buffer for it left an idle connection holding
            // 16 KiB until the client next sent (PauseParkTests), so the wait is re-armed instead. One poll(2)
            // with no timeout per completed wait; it is also readable at the FIN or an error, so those still
            // reach the real receive that reports them.
            _dataReady = _tls is not null || SocketReadable();
            return;
        }
        if (received == 0)
        {
            Close(); // the peer's FIN: after ours that ends the drain; before it the client has gone
            return;
        }
        _inputEnd += received;
        _inputOffered = false;
        CreditTransfer(received); // plaintext bytes under TLS, as Postfix counts them
    }

    private bool SocketReadable()
    {
        try
        {
            return _socket!.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception exception) when (exception is ObjectDisposedException or SocketException)
        {
            return true; // the real receive reports it
        }
    }

    /// <summary>Makes room after the kept bytes: take a buffer, move kept bytes to the front, or grow up to MaxInputBytes.</summary>
    private bool EnsureInputSpace()
    {
        if (_input is null)
        {
            _input = _server.Buffers.Rent(_server.ReceiveBufferSize)!;
            _inputStart = _inputEnd = 0;
            return true;
        }
        int kept = _inputEnd - _inputStart;
        if (_inputStart > 0)
        {
            // Kept bytes are a partial line: short, so moving them is cheaper than a smaller read.
            Buffer.BlockCopy(_input, _inputStart, _input, 0, kept);
            _inputStart = 0;
            _inputEnd = kept;
        }
        if (_inputEnd < _input.Length)
        {
            return true;
        }
        if (_input.Length >= _server.MaxInputBytes)
        {
            return false; // the handler keeps consuming nothing: stop before this grows without bound
        }
        byte[] larger = _server.Buffers.Rent(_input.Length * 2)!;
        Buffer.BlockCopy(_input, 0, larger, 0, kept);
        _server.Buffers.Return(_input);
        _input = larger;
        return true;
    }

    private void ReturnInput()
    {
        if (_input is not null)
        {
            _server.Buffers.Return(_input);
            _input = null;
        }
        _inputStart = _inputEnd = 0;
        _parkedLength = 0; // parked bytes are input kept too (Connection.Park.cs)
    }

    private void PostSend()
    {
        _sendPending = true;
        Volatile.Write(ref _deadline, _server.Clock.NowMs + _server.SendTimeoutMs);
        if (_tls is not null)
        {
            PostTlsSend();
            return;
        }
        _sendArgs.SetBuffer(_sending, _sendOffset, _sendEnd - _sendOffset);
        bool pending;
        try
        {
            pending = _socket!.SendAsync(_sendArgs);
        }
        catch (Exception exception) when (exception is ObjectDisposedException or SocketException or InvalidOperationException)
        {
            _sendPending = false;
            Close();
            return;
        }
        if (!pending)
        {
            _sendPending = false;
            OnSendResult();
        }
    }

    private void OnSendResult()
    {
        int sent;
        if (_tls is null)
        {
            if (_sendArgs.SocketError != SocketError.Success)
            {
                Close();
                return;
            }
            sent = _sendArgs.BytesTransferred;
        }
        else
        {
            bool closeNotify = _closeNotifyPending;
            if (!TakeTlsSend(out sent))
            {
                Close();
                return;
            }
            if (closeNotify)
            {
                ShutdownSend(); // close_notify is out: now our FIN
                return;
            }
        }
        _sendOffset += sent;
        if (_sendOffset >= _sendEnd && _sending is not null)
        {
            _server.Buffers.Return(_sending);
            _sending = null;
        }
    }

    /// <summary>Our FIN after the last reply, then read until the peer's FIN (bounded by LingerTimeout),
    /// so the reply is not destroyed by an RST that closing with unread input would send.</summary>
    private void BeginDrain()
    {
        _draining = true;
        _lingerDeadline = _server.Clock.NowMs + _server.LingerTimeoutMs;
        if (InTlsMode)
        {
            PostCloseNotify(); // its completion sends the FIN
            return;
        }
        ShutdownSend();
    }

    private void ShutdownSend()
    {
        try
        {
            _socket!.Shutdown(SocketShutdown.Send);
        }
        catch (Exception exception) when (exception is ObjectDisposedException or SocketException)
        {
            Close();
        }
    }

    /// <summary>Closes the socket now. Pending operations complete with OperationAborted and post their signals.</summary>
    private void Close()
    {
        if (_closed)
        {
            return;
        }
        _closed = true;
        _output.Reset();
        _socket?.Dispose();
    }
}
