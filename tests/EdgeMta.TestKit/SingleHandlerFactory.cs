// Contract: a factory for exactly one handler made by the test (an outbound session, which the transport never
// pools): Create hands it out once, Return takes it back and does nothing, rejections are not expected.
using System.Buffers;
using EdgeMta.Transport;

namespace EdgeMta.TestKit;

public sealed class SingleHandlerFactory(IConnectionHandler handler) : IConnectionHandlerFactory
{
    private bool _created;

    public IConnectionHandler Create()
    {
        if (_created) throw new InvalidOperationException("This factory makes one handler only.");
        _created = true;
        return handler;
    }

    public void Return(IConnectionHandler returned)
    {
    }

    public void WriteRejection(ConnectionInfo info, ConnectionRejection reason, IBufferWriter<byte> output) =>
        throw new InvalidOperationException("An outbound connection is never rejected at accept.");
}
