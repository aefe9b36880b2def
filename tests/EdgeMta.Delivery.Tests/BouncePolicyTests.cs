// Contract: when a notice is due (docs/DELIVERY.md "Bounces"; RFC 3461 §4.1; RFC 5321 §4.5.5) and how NOTIFY
// is read.

namespace EdgeMta.Delivery.Tests;

public sealed class BouncePolicyTests
{
    [Theory]
    [InlineData(DsnNotify.Unspecified, DsnAction.Failed, true)]
    [InlineData(DsnNotify.Failure, DsnAction.Failed, true)]
    [InlineData(DsnNotify.Success | DsnNotify.Failure, DsnAction.Failed, true)]
    [InlineData(DsnNotify.Never, DsnAction.Failed, false)]
    [InlineData(DsnNotify.Success, DsnAction.Failed, false)]
    [InlineData(DsnNotify.Delay, DsnAction.Failed, false)]
    [InlineData(DsnNotify.Unspecified, DsnAction.Delayed, true)]
    [InlineData(DsnNotify.Delay, DsnAction.Delayed, true)]
    [InlineData(DsnNotify.Failure, DsnAction.Delayed, false)]
    [InlineData(DsnNotify.Never, DsnAction.Delayed, false)]
    [InlineData(DsnNotify.Success, DsnAction.Relayed, true)]
    [InlineData(DsnNotify.Unspecified, DsnAction.Relayed, false)]
    [InlineData(DsnNotify.Failure | DsnNotify.Delay, DsnAction.Relayed, false)]
    public void NotifyDecidesForARealSender(DsnNotify notify, DsnAction action, bool expected)
    {
        Assert.Equal(expected, BouncePolicy.ShouldNotify("alice@example.org", notify, action));
    }

    [Theory]
    [InlineData(DsnNotify.Unspecified, DsnAction.Failed)]
    [InlineData(DsnNotify.Failure, DsnAction.Failed)]
    [InlineData(DsnNotify.Delay, DsnAction.Delayed)]
    [InlineData(DsnNotify.Success, DsnAction.Relayed)]
    public void NullSenderNeverGetsANotice(DsnNotify notify, DsnAction action)
    {
        Assert.False(BouncePolicy.ShouldNotify("", notify, action));
    }

    [Theory]
    [InlineData("NEVER", DsnNotify.Never)]
    [InlineData("never", DsnNotify.Never)]
    [InlineData("FAILURE", DsnNotify.Failure)]
    [InlineData("SUCCESS,FAILURE", DsnNotify.Success | DsnNotify.Failure)]
    [InlineData("delay,Failure,SUCCESS", DsnNotify.Delay | DsnNotify.Failure | DsnNotify.Success)]
    public void NotifyValuesParse(string value, DsnNotify expected)
    {
        Assert.True(BouncePolicy.TryParseNotify(value, out DsnNotify notify));
        Assert.Equal(expected, notify);
    }

    [Theory]
    [InlineData("")]
    [InlineData("NEVER,FAILURE")]
    [InlineData("FAILURE,NEVER")]
    [InlineData("FAILURE,FAILURE")]
    [InlineData("FAILURE,")]
    [InlineData("SOMETIMES")]
    [InlineData(" FAILURE")]
    public void MalformedNotifyIsRefused(string value)
    {
        Assert.False(BouncePolicy.TryParseNotify(value, out DsnNotify notify));
        Assert.Equal(DsnNotify.Unspecified, notify);
    }
}
