// Contract: input the composer cannot report on is refused with a reason and no bytes written, never thrown.

using static EdgeMta.Delivery.Tests.BounceHarness;

namespace EdgeMta.Delivery.Tests;

public sealed class BounceInputTests
{
    public static TheoryData<string, BounceEnvelope, BounceRecipient[], string> Refused => new()
    {
        { "null sender", Envelope(sender: ""), [Failed()], MessageId },
        { "default envelope", default, [Failed()], MessageId },
        { "default recipient", Envelope(), [default], MessageId },
        { "sender with a space", Envelope(sender: "a b@example.org"), [Failed()], MessageId },
        { "sender with CRLF", Envelope(sender: "a@example.org\r\nBcc: x@y"), [Failed()], MessageId },
        { "8-bit sender without SMTPUTF8", Envelope(sender: "zoë@example.org"), [Failed()], MessageId },
        { "no recipients", Envelope(), [], MessageId },
        { "8-bit recipient without SMTPUTF8", Envelope(), [Failed("josé@example.fr")], MessageId },
        { "ENVID with a bad hex pair", Envelope(envid: "a+2g"), [Failed()], MessageId },
        { "ENVID cut short", Envelope(envid: "abc+2"), [Failed()], MessageId },
        { "ENVID over 100", Envelope(envid: new string('e', 101)), [Failed()], MessageId },
        { "ORCPT with no type", Envelope(), [Failed(orcpt: "bob@example.com")], MessageId },
        { "ORCPT with a space", Envelope(), [Failed(orcpt: "rfc822;bob @example.com")], MessageId },
        { "Message-ID without @", Envelope(), [Failed()], "nohost" },
        { "Message-ID with >", Envelope(), [Failed()], "a>b@c" },
        { "status word", Envelope(), [Failed() with { Status = "failed" }], MessageId },
        { "status of four parts", Envelope(), [Failed() with { Status = "5.1.1.1" }], MessageId },
        { "status with a long part", Envelope(), [Failed() with { Status = "5.1111.1" }], MessageId },
        { "failed with 2.0.0", Envelope(), [Failed() with { Status = "2.0.0" }], MessageId },
        { "delayed with 5.0.0", Envelope(), [Failed() with { Action = DsnAction.Delayed, Status = "5.0.0" }], MessageId },
        { "unknown action", Envelope(), [Failed() with { Action = (DsnAction)7 }], MessageId },
        { "remote MTA with a space", Envelope(), [Failed() with { RemoteMta = "relay example" }], MessageId },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void BadInputIsRefusedWithAReasonAndNoBytes(
        string why, BounceEnvelope envelope, BounceRecipient[] recipients, string messageId)
    {
        bool ok = TryCompose(envelope, Message(300), recipients, out byte[] notice, out string? error, messageId);
        Assert.False(ok, why);
        Assert.False(string.IsNullOrEmpty(error), why);
        Assert.Empty(notice);
    }

    [Fact]
    public void ExpiryStatusFourFourSevenIsAcceptedForAFailure()
    {
        // A message that outlived the queue lifetime fails with 4.4.7 (RFC 3463 §3.5).
        Assert.True(TryCompose(
            Envelope(), Message(300), [Failed() with { Status = "4.4.7" }], out byte[] notice, out string? error));
        Assert.Null(error);
        Assert.NotEmpty(notice);
    }

    [Fact]
    public void AddressLiteralIsAcceptedAsRemoteMta()
    {
        Assert.True(TryCompose(
            Envelope(), Message(300), [Failed() with { RemoteMta = "[192.0.2.7]" }], out _, out string? error), error);
    }
}
