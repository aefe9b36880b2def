// A DNS server that answers wrongly on purpose, on a loopback UDP port: silent, SERVFAIL, REFUSED, garbage
// bytes, garbage after the right id, or a good answer under the wrong id. Counts what it received, so a test
// knows the question arrived before it moves the clock. Stopped by Dispose (the socket closes, the loop ends).
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.Server.Tests.Dns;

public enum Fault
{
    Silent,
    ServFail,
    Refused,
    Garbage,
    GarbageAfterId,
    WrongId,
}

internal sealed class FaultyDnsServer : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Fault _fault;
    private readonly SemaphoreSlim _received = new(0);
    private readonly Task _loop;

    public FaultyDnsServer(Fault fault)
    {
        _fault = fault;
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _loop = Task.Run(Serve);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Waits (bounded) until <paramref name="count"/> more questions have been received and answered.</summary>
    public void WaitForQuestions(int count = 1)
    {
        for (int i = 0; i < count; i++) Assert.True(_received.Wait(ServerHarness.Bound), "no DNS question arrived");
    }

    public void Dispose()
    {
        _socket.Dispose();
        _loop.Wait(ServerHarness.Bound);
    }

    private async Task Serve()
    {
        var buffer = new byte[512];
        while (true)
        {
            SocketReceiveFromResult r;
            try
            {
                r = await _socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0));
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                return;
            }
            byte[] reply = Reply(buffer.AsSpan(0, r.ReceivedBytes));
            if (reply.Length > 0) await _socket.SendToAsync(reply, r.RemoteEndPoint);
            _received.Release();
        }
    }

    private byte[] Reply(ReadOnlySpan<byte> query)
    {
        switch (_fault)
        {
            case Fault.Silent:
                return [];
            case Fault.ServFail or Fault.Refused:
                {
                    byte[] reply = query.ToArray();
                    reply[2] = 0x81; // QR, RD
                    reply[3] = (byte)(0x80 | (_fault == Fault.ServFail ? 2 : 5));
                    return reply;
                }
            case Fault.Garbage:
                return [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x02];
            case Fault.GarbageAfterId:
                {
                    // The right id and question, then an answer count of 1 with a record cut short.
                    byte[] reply = [.. query, 0xC0, 0x0C, 0x00, 0x01];
                    reply[2] = 0x81;
                    reply[3] = 0x80;
                    reply[7] = 1;
                    return reply;
                }
            default: // WrongId: a listing, under an id one off
                {
                    byte[] reply = [.. query, 0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 127, 0, 0, 2];
                    BinaryPrimitives.WriteUInt16BigEndian(reply, (ushort)(BinaryPrimitives.ReadUInt16BigEndian(reply) + 1));
                    reply[2] = 0x81;
                    reply[3] = 0x80;
                    reply[7] = 1;
                    return reply;
                }
        }
    }
}
