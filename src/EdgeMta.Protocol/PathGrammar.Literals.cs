// Contract: the address literals of RFC 5321 §4.1.3 and the character classes of the path grammars.
//
// IPv4 literals are checked here digit by digit; IPv6 ones are checked for their alphabet here and for
// their grammar by the runtime's parser (no zone ids: RFC 5321 has none). General address literals are
// accepted as the grammar allows. Each character class is one lookup in a 256-entry table.
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace EdgeMta.Protocol;

public static partial class PathGrammar
{
    /// <summary>
    /// address-literal = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal ) "]"
    /// IPv4-address-literal = Snum 3("." Snum)              ; Snum = 1*3DIGIT, 0-255
    /// IPv6-address-literal = "IPv6:" IPv6-addr
    /// General-address-literal = Standardized-tag ":" 1*dcontent   ; dcontent = %d33-90 / %d94-126
    /// Returns the length with the brackets, or 0.
    /// </summary>
    internal static int AddressLiteralLength(ReadOnlySpan<byte> s)
    {
        int close = s.IndexOf((byte)']');
        if (s.Length < 3 || s[0] != (byte)'[' || close < 2)
        {
            return 0;
        }
        ReadOnlySpan<byte> inner = s[1..close];
        if (IsIPv4(inner))
        {
            return close + 1;
        }
        int colon = inner.IndexOf((byte)':');
        if (colon <= 0)
        {
            return 0;
        }
        ReadOnlySpan<byte> tag = inner[..colon];
        ReadOnlySpan<byte> rest = inner[(colon + 1)..];
        if (tag.Length == 4 && (tag[0] | 0x20) == 'i' && (tag[1] | 0x20) == 'p' && (tag[2] | 0x20) == 'v' && tag[3] == '6')
        {
            return IsIPv6(rest) ? close + 1 : 0;
        }
        // Standardized-tag = Ldh-str; the dcontent after it is accepted as the grammar allows.
        if (DomainLength(tag, out bool tagUtf8) != tag.Length || tagUtf8 || rest.IsEmpty)
        {
            return 0;
        }
        foreach (byte c in rest)
        {
            if (c < 33 || c > 126 || c == (byte)'[' || c == (byte)'\\' || c == (byte)']')
            {
                return 0;
            }
        }
        return close + 1;
    }

    /// <summary>IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT representing 0-255.</summary>
    internal static bool IsIPv4(ReadOnlySpan<byte> s)
    {
        int parts = 0;
        int i = 0;
        while (true)
        {
            int value = 0;
            int digits = 0;
            while (i < s.Length && s[i] >= (byte)'0' && s[i] <= (byte)'9' && digits < 4)
            {
                value = value * 10 + (s[i] - '0');
                digits++;
                i++;
            }
            if (digits == 0 || digits > 3 || value > 255)
            {
                return false;
            }
            parts++;
            if (parts == 4)
            {
                return i == s.Length;
            }
            if (i >= s.Length || s[i] != (byte)'.')
            {
                return false;
            }
            i++;
        }
    }

    /// <summary>IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp (RFC 5321 §4.1.3); checked by the runtime's parser.</summary>
    private static bool IsIPv6(ReadOnlySpan<byte> s)
    {
        if (s.IsEmpty || s.Length > 45)
        {
            return false;
        }
        Span<char> chars = stackalloc char[45];
        for (int i = 0; i < s.Length; i++)
        {
            byte c = s[i];
            if (!(c == ':' || c == '.' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')))
            {
                return false; // no zone ids, no brackets, no spaces
            }
            chars[i] = (char)c;
        }
        if (!IPAddress.TryParse(chars[..s.Length], out IPAddress? address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }
        // The runtime also takes a "::" that stands for one group; RFC 5321 §4.1.3 does not: "::" is at least two
        // groups of zeros, so beside it at most 6 groups (4 before an IPv4 tail) may be written.
        if (s.IndexOf("::"u8) < 0)
        {
            return true;
        }
        bool v4 = s.Contains((byte)'.');
        int groups = 0;
        foreach (Range part in ((ReadOnlySpan<char>)chars[..s.Length]).Split(':'))
        {
            ReadOnlySpan<char> g = chars[..s.Length][part];
            if (g.Length > 0 && !g.Contains('.'))
            {
                groups++;
            }
        }
        return groups <= (v4 ? 4 : 6);
    }
}

/// <summary>Character classes of the RFC 5321 / RFC 3461 grammars, one table lookup each.</summary>
internal static class CharClass
{
    public const byte AText = 1;       // RFC 5322 §3.2.3 atext
    public const byte QText = 2;       // RFC 5321 qtextSMTP %d32-33 / %d35-91 / %d93-126
    public const byte Ldh = 4;         // ALPHA / DIGIT / "-"
    public const byte LetDig = 8;      // ALPHA / DIGIT
    public const byte EsmtpValue = 16; // %d33-60 / %d62-126
    public const byte XChar = 32;      // RFC 3461 §4: "!" .. "~" except "+" and "="

    private static readonly byte[] Table = Build();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Is(byte c, byte cls) => (Table[c] & cls) != 0;

    private static byte[] Build()
    {
        var t = new byte[256];
        for (int c = 0; c < 128; c++)
        {
            bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            bool digit = c >= '0' && c <= '9';
            byte v = 0;
            if (alpha || digit || "!#$%&'*+-/=?^_`{|}~".Contains((char)c))
            {
                v |= AText;
            }
            if ((c >= 32 && c <= 33) || (c >= 35 && c <= 91) || (c >= 93 && c <= 126))
            {
                v |= QText;
            }
            if (alpha || digit || c == '-')
            {
                v |= Ldh;
            }
            if (alpha || digit)
            {
                v |= LetDig;
            }
            if ((c >= 33 && c <= 60) || (c >= 62 && c <= 126))
            {
                v |= EsmtpValue;
            }
            if (c >= 33 && c <= 126 && c != '+' && c != '=')
            {
                v |= XChar;
            }
            t[c] = v;
        }
        return t;
    }
}
