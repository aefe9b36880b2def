// Contract: two screenings asked as one (docs/SCREENING.md): the blocklists first, the rates last.
//
// The order is the seam's counting rule (src/EdgeMta.Protocol/SessionScreening.cs): a screening counts an
// event when it answers Accept or Refuse, never Pending. The blocklists are the one that can answer Pending;
// the rates count every question they are asked. Asked first, the rates would count a RCPT once before the
// blocklist's Pending and again when the session asks after the verdict. So the rates are asked only once
// the blocklists have accepted, and a command a blocklist refuses is not counted toward a rate.
// What it does not do: decide anything, or merge replies: the first screening that does not accept answers.
using System.Buffers;
using System.Net;
using EdgeMta.Protocol;

namespace EdgeMta.Server.Screening;

/// <summary>The blocklist screening, then the rate screening, behind one <see cref="IConnectionScreening"/>.</summary>
internal sealed class CompositeScreening(IConnectionScreening first, IConnectionScreening last) : IConnectionScreening
{
    public void Open(IPAddress? client, long connection)
    {
        first.Open(client, connection);
        last.Open(client, connection);
    }

    public void Close()
    {
        first.Close();
        last.Close();
    }

    public ScreeningAnswer OnConnect(IBufferWriter<byte> output) =>
        first.OnConnect(output) is var a && a != ScreeningAnswer.Accept ? a : last.OnConnect(output);

    public ScreeningAnswer OnHello(IBufferWriter<byte> output) =>
        first.OnHello(output) is var a && a != ScreeningAnswer.Accept ? a : last.OnHello(output);

    public ScreeningAnswer OnMail(IBufferWriter<byte> output) =>
        first.OnMail(output) is var a && a != ScreeningAnswer.Accept ? a : last.OnMail(output);

    public ScreeningAnswer OnRecipient(IBufferWriter<byte> output) =>
        first.OnRecipient(output) is var a && a != ScreeningAnswer.Accept ? a : last.OnRecipient(output);
}
