// Contract: reads a DURATION setting (docs/DELIVERY.md, the flag table: --retry-min, --retry-max,
// --queue-lifetime, --bounce-lifetime, --delay-warning).
//
//   DURATION = 1*DIGIT [ "s" / "m" / "h" / "d" ]      ; no suffix means seconds
//
// Exactly that: no sign, no spaces, no decimals, no upper-case or other suffixes, no combinations ("1h30m").
// Anything else is refused with a one-line error naming the value, which the host prints to stderr before
// exiting 2 (docs/DELIVERY.md). Values past what a TimeSpan holds are refused, never wrapped. It does not judge
// whether a value makes sense for a given flag (retry-min above retry-max, say); the caller does that.
namespace EdgeMta.Delivery;

/// <summary>Parses DURATION values for the delivery flags.</summary>
public static class DurationParser
{
    // The most seconds a TimeSpan holds (about 29,227 years); the bound for value × unit.
    private const long MaxSeconds = long.MaxValue / TimeSpan.TicksPerSecond;

    /// <summary>
    /// True with <paramref name="duration"/> set for a well-formed value; false with <paramref name="error"/>
    /// saying what is wrong.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out TimeSpan duration, out string error)
    {
        duration = TimeSpan.Zero;
        if (text.IsEmpty)
            return Fail("a duration is empty; write seconds, or a number with s, m, h or d (300s, 5m, 2d)", out error);

        int digits = 0;
        while (digits < text.Length && char.IsAsciiDigit(text[digits]))
            digits++;
        if (digits == 0)
            return Fail($"duration '{text}' must start with a number (negative values and signs are not allowed)", out error);

        long unit;
        if (digits == text.Length)
        {
            unit = 1;
        }
        else if (digits == text.Length - 1)
        {
            switch (text[digits])
            {
                case 's': unit = 1; break;
                case 'm': unit = 60; break;
                case 'h': unit = 3600; break;
                case 'd': unit = 86400; break;
                default:
                    return Fail($"duration '{text}' has an unknown unit '{text[digits]}'; use s, m, h or d", out error);
            }
        }
        else
        {
            return Fail($"duration '{text}' must be a whole number with at most one unit (s, m, h or d)", out error);
        }

        long value = 0;
        foreach (char c in text[..digits])
        {
            // value * 10 + digit stays within MaxSeconds, checked before it is computed.
            long digit = c - '0';
            if (value > (MaxSeconds - digit) / 10)
                return Fail($"duration '{text}' is too long", out error);
            value = value * 10 + digit;
        }

        if (value > MaxSeconds / unit)
            return Fail($"duration '{text}' is too long", out error);

        duration = TimeSpan.FromSeconds(value * unit);
        error = string.Empty;
        return true;
    }

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
