// Whether a delivery status notification is due (docs/DELIVERY.md "Bounces"; RFC 3461 §4.1; RFC 5321 §4.5.5).
// Does not decide *when* (retry schedule, delay-warning switch): that is the delivery agent's. Parsing NOTIFY
// answers false with no exception for malformed text, so a bad stored parameter never crashes delivery.

namespace EdgeMta.Delivery;

/// <summary>The rules for sending or withholding a notification.</summary>
public static class BouncePolicy
{
    /// <summary>
    /// True when a notice of <paramref name="action"/> should go to <paramref name="sender"/>. Never for the
    /// null reverse-path: RFC 5321 §4.5.5 forbids a notification about a notification (no bounce loops).
    /// </summary>
    public static bool ShouldNotify(string sender, DsnNotify notify, DsnAction action)
    {
        if (sender.Length == 0 || (notify & DsnNotify.Never) != 0)
        {
            return false;
        }

        return action switch
        {
            // RFC 3461 §4.1: with no NOTIFY the server behaves as for NOTIFY=FAILURE (and MAY send delay notices).
            DsnAction.Failed => notify == DsnNotify.Unspecified || (notify & DsnNotify.Failure) != 0,
            DsnAction.Delayed => notify == DsnNotify.Unspecified || (notify & DsnNotify.Delay) != 0,
            // A "relayed" notice answers an explicit request for success notices only (RFC 3461 §4.1, §5.2.3).
            DsnAction.Relayed => (notify & DsnNotify.Success) != 0,
            _ => false,
        };
    }

    /// <summary>
    /// Parses a NOTIFY value: "NEVER" or a comma list of SUCCESS, FAILURE, DELAY, case-insensitive
    /// (RFC 3461 §4.1). False for anything else, including NEVER combined with another keyword or a repeat.
    /// </summary>
    public static bool TryParseNotify(ReadOnlySpan<char> value, out DsnNotify notify)
    {
        notify = DsnNotify.Unspecified;
        if (value.Equals("NEVER", StringComparison.OrdinalIgnoreCase))
        {
            notify = DsnNotify.Never;
            return true;
        }

        if (value.IsEmpty)
        {
            return false;
        }

        foreach (Range range in value.Split(','))
        {
            ReadOnlySpan<char> word = value[range];
            DsnNotify flag = word.Equals("SUCCESS", StringComparison.OrdinalIgnoreCase) ? DsnNotify.Success
                : word.Equals("FAILURE", StringComparison.OrdinalIgnoreCase) ? DsnNotify.Failure
                : word.Equals("DELAY", StringComparison.OrdinalIgnoreCase) ? DsnNotify.Delay
                : DsnNotify.Unspecified;
            if (flag == DsnNotify.Unspecified || (notify & flag) != 0)
            {
                notify = DsnNotify.Unspecified;
                return false;
            }

            notify |= flag;
        }

        return true;
    }
}
