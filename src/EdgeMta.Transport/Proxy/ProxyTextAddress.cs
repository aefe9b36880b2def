// Contract: the literal addresses of a PROXY v1 line (HAProxy's doc/proxy-protocol.txt §2.1), parsed from ASCII
// bytes into address bytes with no allocation (IPAddress.TryParse would allocate, and accepts forms inet_pton
// does not: "1.2.3", hex or octal parts, scope ids).
//
// What it accepts: TCP4: a dotted quad, each part 0..255 in decimal without a leading zero (what glibc's
// inet_pton(AF_INET), HAProxy's parser, accepts). TCP6: RFC 4291 §2.2 text: eight groups of 1..4 hex digits,
// one "::" standing for one or more zero groups, and an optional dotted quad as the last 32 bits.
// What it refuses: anything else, including an IPv4 address on a TCP6 line and the reverse, zone ids and
// brackets. It never throws.
namespace EdgeMta.Transport.Proxy;

internal static class ProxyTextAddress
{
    /// <summary>Writes 4 (IPv4) or 16 (IPv6) bytes to <paramref name="into"/>; false for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, bool v6, Span<byte> into) =>
        v6 ? TryParseV6(text, into[..16]) : TryParseV4(text, into[..4]);

    private static bool TryParseV4(ReadOnlySpan<byte> text, Span<byte> into)
    {
        if (text.Length is < 7 or > 15)
        {
            return false;
        }
        for (int part = 0; part < 4; part++)
        {
            int dot = part < 3 ? text.IndexOf((byte)'.') : text.Length;
            if (dot <= 0 || dot > 3 || (text[0] == '0' && dot > 1))
            {
                return false;
            }
            int value = 0;
            for (int i = 0; i < dot; i++)
            {
                int digit = text[i] - '0';
                if ((uint)digit > 9)
                {
                    return false;
                }
                value = value * 10 + digit;
            }
            if (value > 255)
            {
                return false;
            }
            into[part] = (byte)value;
            text = part < 3 ? text[(dot + 1)..] : default;
        }
        return true;
    }

    private static bool TryParseV6(ReadOnlySpan<byte> text, Span<byte> into)
    {
        // Longest form: six groups and a dotted quad, 45 characters.
        if (text.Length is < 2 or > 45)
        {
            return false;
        }
        into.Clear();
        int gap = -1; // the byte index where "::" stands
        int written = 0;
        int i = 0;
        if (text[0] == ':')
        {
            if (text[1] != ':')
            {
                return false;
            }
            gap = 0;
            i = 2;
            if (i == text.Length)
            {
                return true; // "::"
            }
        }
        while (i < text.Length)
        {
            if (written == 16)
            {
                return false;
            }
            int start = i;
            int value = 0;
            while (i < text.Length && i - start < 5 && HexValue(text[i]) is int digit and >= 0)
            {
                value = (value << 4) | digit;
                i++;
            }
            int digits = i - start;
            if (i < text.Length && text[i] == '.')
            {
                // The last 32 bits as a dotted quad: from the start of this group to the end.
                if (written > 12 || !TryParseV4(text[start..], into.Slice(written, 4)))
                {
                    return false;
                }
                written += 4;
                break;
            }
            if (digits is 0 or > 4)
            {
                return false;
            }
            into[written++] = (byte)(value >> 8);
            into[written++] = (byte)value;
            if (i == text.Length)
            {
                break;
            }
            if (text[i] != ':')
            {
                return false;
            }
            i++;
            if (i < text.Length && text[i] == ':')
            {
                if (gap >= 0)
                {
                    return false; // a second "::"
                }
                gap = written;
                i++;
                if (i == text.Length)
                {
                    break;
                }
            }
            else if (i == text.Length)
            {
                return false; // a trailing single ':'
            }
        }
        if (gap < 0)
        {
            return written == 16;
        }
        if (written == 16)
        {
            return false; // "::" must stand for at least one zero group (RFC 4291 §2.2, RFC 5952 §4.2.2)
        }
        // Move the groups after the gap to the end; the gap becomes zeros.
        int tail = written - gap;
        into.Slice(gap, tail).CopyTo(into[(16 - tail)..]);
        into[gap..(16 - tail)].Clear();
        return true;
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
