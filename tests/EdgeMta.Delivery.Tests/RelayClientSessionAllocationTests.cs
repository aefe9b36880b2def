// Zero allocation per message in the steady state (docs/DELIVERY.md: a slow next hop holds one connection,
// never the queue; many connections stream at once): one delivered message over a reused connection, from the
// replies to MAIL, RCPT and DATA through the data blocks and the final reply to the next transaction's MAIL.
// The session is driven directly (the in-memory connection allocates itself), measured in bytes, not time.
using System.Buffers;
using System.Text;
using EdgeMta.Delivery;
using EdgeMta.TestKit;
using EdgeMta.Transport;
using static EdgeMta.Delivery.Tests.RelayHarness;

namespace EdgeMta.Delivery.Tests;

public class RelayClientSessionAllocationTests
{
    /// <summary>Hands out the same transaction for ever, as an agent recycling its transactions does.</summary>
    private sealed class EndlessWork(RelayTransaction transaction) : IRelayWork
    {
        public int Completed;
        public RecipientOutcome First, Second;

        public bool TryNext(out RelayTransaction next)
        {
            Array.Clear(transaction.Outcomes);
            next = transaction;
            return true;
        }

        void IRelayWork.Completed(RelayTransaction done)
        {
            Completed++;
            First = done.Outcomes[0];
            Second = done.Outcomes[1];
        }

        public void Ended(SessionEnd end, string reason) => throw new InvalidOperationException($"ended: {end} {reason}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ADeliveredMessageOverAReusedConnectionAllocatesNothing(bool lmtp)
    {
        var text = new StringBuilder("Subject: steady\r\n\r\n");
        for (int i = 0; i < 2000; i++)
            text.Append(i % 7 == 0 ? ".a dot-stuffed line of text\r\n" : "an ordinary line of message text\r\n");
        var transaction = Transaction(text.ToString(), "s@example.com", "BODY=8BITMIME",
            ("a@x.net", "NOTIFY=SUCCESS"), ("b@x.net", ""));
        var work = new EndlessWork(transaction);
        var options = Options(lmtp ? "lmtp://lmtp.example.net" : "smtp://mx.example.net") with
        {
            MaxTransactions = int.MaxValue,
            MaxConnectionAge = TimeSpan.MaxValue,
        };
        var session = new RelayClientSession(options, work);
        var output = new ArrayBufferWriter<byte>(1 << 18);
        session.OnOpened(default, output);
        Feed(session, "220 mx.example.net ESMTP\r\n"u8, output);
        Feed(session, Encoding.ASCII.GetBytes(Ehlo("PIPELINING", "8BITMIME", "SIZE 10000000", "ENHANCEDSTATUSCODES")), output);
        Assert.Contains("\r\nMAIL FROM:<s@example.com> SIZE=", Encoding.ASCII.GetString(output.WrittenSpan));

        byte[] commandReplies = "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"u8.ToArray();
        byte[] finalReplies = lmtp ? "250 2.0.0 saved\r\n250 2.0.0 saved\r\n"u8.ToArray() : "250 2.0.0 queued\r\n"u8.ToArray();
        HandlerStatus last = default;
        long allocated = Allocations.SteadyStateBytes(() =>
        {
            output.ResetWrittenCount();
            var status = session.OnReceived(commandReplies, output, out _);
            // Bounded: one block per 64 KiB of a 70 KB message.
            for (int i = 0; i < 10 && status == HandlerStatus.WriteMore; i++)
            {
                output.ResetWrittenCount();
                status = session.OnWritable(output);
            }
            output.ResetWrittenCount();
            last = session.OnReceived(finalReplies, output, out _);
        });
        Assert.Equal(HandlerStatus.Continue, last);
        Assert.True(work.Completed >= 10);
        Assert.Equal((OutcomeKind.Delivered, OutcomeKind.Delivered), (work.First.Kind, work.Second.Kind));
        Assert.Equal((true, false), (work.First.RelayedWithoutDsn, work.Second.RelayedWithoutDsn));
        Assert.Equal(0, allocated);
    }

    private static void Feed(RelayClientSession session, ReadOnlySpan<byte> replies, IBufferWriter<byte> output)
    {
        var status = session.OnReceived(replies, output, out int consumed);
        Assert.Equal(HandlerStatus.Continue, status);
        Assert.Equal(replies.Length, consumed);
    }
}
