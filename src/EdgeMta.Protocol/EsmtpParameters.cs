// Contract: the MAIL and RCPT parameters of the extensions EdgeMta advertises, parsed and validated.
//
// Mail-parameters = esmtp-param *(SP esmtp-param)      ; RFC 5321 §4.1.2
// esmtp-param     = esmtp-keyword ["=" esmtp-value]
// esmtp-keyword   = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
// esmtp-value     = 1*(%d33-60 / %d62-126)             ; =/ UTF8-non-ascii (RFC 6531 §3.3)
// Known: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030 BINARYMIME), SMTPUTF8 (RFC 6531), RET and ENVID (MAIL),
// NOTIFY and ORCPT (RCPT) (RFC 3461). Any other keyword is 555 5.5.4 (RFC 5321 §4.1.1.11); a known one with
// a bad value is 501 5.5.4; a SIZE too large to represent, or over the limit, is 552 5.3.4 (RFC 1870 §6).
// The raw parameter text is kept by the caller; this module only checks it and extracts what the session
// acts on. It allocates nothing.
namespace EdgeMta.Protocol;

/// <summary>What was wrong with a parameter list.</summary>
public enum ParameterError : byte
{
    None,
    /// <summary>555 5.5.4: not a parameter of the command.</summary>
    Unknown,
    /// <summary>501 5.5.4: a known keyword with a bad value, a repeated keyword, or bad syntax.</summary>
    BadValue,
    /// <summary>552 5.3.4: SIZE over the limit (or too large to represent).</summary>
    SizeExceeded,
}

/// <summary>BODY= of RFC 6152 / RFC 3030.</summary>
public enum BodyType : byte
{
    Unspecified,
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// <summary>What the session needs from MAIL parameters.</summary>
public struct MailParameters
{
    /// <summary>SIZE=, or -1 when absent.</summary>
    public long DeclaredSize;
    public BodyType Body;
    public bool SmtpUtf8;
}

/// <summary>Try* parsers for MAIL and RCPT parameters.</summary>
public static class EsmtpParameters
{
    /// <summary>RFC 3461 §4.4: ENVID at most 100 characters (decoded).</summary>
    public const int MaxEnvId = 100;
    /// <summary>RFC 3461 §4.2: ORCPT at most 500 characters.</summary>
    public const int MaxOrcpt = 500;

    /// <summary>
    /// mail-params: SIZE=1*20DIGIT / BODY=(7BIT/8BITMIME/BINARYMIME) / SMTPUTF8 / RET=(FULL/HDRS) / ENVID=xtext
    /// </summary>
    public static ParseStatus TryParseMail(ReadOnlySpan<byte> s, long maxSize, out MailParameters result, out ParameterError error)
    {
        result = new MailParameters { DeclaredSize = -1 };
        error = ParameterError.None;
        bool seenRet = false, seenEnvId = false;
        int i = 0;
        while (NextParameter(s, ref i, out ReadOnlySpan<byte> keyword, out ReadOnlySpan<byte> value, out bool hasValue, ref error))
        {
            if (Is(keyword, "SIZE"u8))
            {
                if (result.DeclaredSize >= 0 || !hasValue)
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                ParameterError e = ParseSize(value, maxSize, out result.DeclaredSize);
                if (e != ParameterError.None)
                {
                    return Fail(ref error, e);
                }
            }
            else if (Is(keyword, "BODY"u8))
            {
                if (result.Body != BodyType.Unspecified || !hasValue)
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                result.Body = Is(value, "7BIT"u8) ? BodyType.SevenBit
                    : Is(value, "8BITMIME"u8) ? BodyType.EightBitMime
                    : Is(value, "BINARYMIME"u8) ? BodyType.BinaryMime
                    : BodyType.Unspecified;
                if (result.Body == BodyType.Unspecified)
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
            }
            else if (Is(keyword, "SMTPUTF8"u8))
            {
                if (result.SmtpUtf8 || hasValue)
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                result.SmtpUtf8 = true;
            }
            else if (Is(keyword, "RET"u8))
            {
                if (seenRet || !hasValue || !(Is(value, "FULL"u8) || Is(value, "HDRS"u8)))
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                seenRet = true;
            }
            else if (Is(keyword, "ENVID"u8))
            {
                if (seenEnvId || !hasValue || !IsXText(value, MaxEnvId))
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                seenEnvId = true;
            }
            else
            {
                return Fail(ref error, ParameterError.Unknown);
            }
        }
        return error == ParameterError.None ? ParseStatus.Complete : ParseStatus.Error;
    }

    /// <summary>
    /// rcpt-params: NOTIFY=("NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY")) / ORCPT=addr-type ";" xtext   ; RFC 3461 §4.1-4.2
    /// </summary>
    public static ParseStatus TryParseRcpt(ReadOnlySpan<byte> s, out ParameterError error)
    {
        error = ParameterError.None;
        bool seenNotify = false, seenOrcpt = false;
        int i = 0;
        while (NextParameter(s, ref i, out ReadOnlySpan<byte> keyword, out ReadOnlySpan<byte> value, out bool hasValue, ref error))
        {
            if (Is(keyword, "NOTIFY"u8))
            {
                if (seenNotify || !hasValue || !IsNotify(value))
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                seenNotify = true;
            }
            else if (Is(keyword, "ORCPT"u8))
            {
                // addr-type = atom (RFC 3461 §4.2), e.g. "rfc822"; the xtext after ';' is the original recipient.
                int semi = value.IndexOf((byte)';');
                if (seenOrcpt || !hasValue || semi <= 0 || value.Length > MaxOrcpt
                    || PathGrammar.LocalPartLength(value[..semi], out bool utf8) != semi || utf8 || value[..semi].Contains((byte)'.')
                    || !IsXText(value[(semi + 1)..], MaxOrcpt) || semi + 1 == value.Length)
                {
                    return Fail(ref error, ParameterError.BadValue);
                }
                seenOrcpt = true;
            }
            else
            {
                return Fail(ref error, ParameterError.Unknown);
            }
        }
        return error == ParameterError.None ? ParseStatus.Complete : ParseStatus.Error;
    }

    /// <summary>
    /// Reads the next esmtp-param after position <paramref name="i"/> (which is at the start or at a separator).
    /// False at the end of input, or with <paramref name="error"/> set when the syntax is bad.
    /// </summary>
    private static bool NextParameter(ReadOnlySpan<byte> s, ref int i, out ReadOnlySpan<byte> keyword, out ReadOnlySpan<byte> value, out bool hasValue, ref ParameterError error)
    {
        keyword = default;
        value = default;
        hasValue = false;
        while (i < s.Length && s[i] == (byte)' ')
        {
            i++; // RFC 5321 wants one SP; more are tolerated
        }
        if (i >= s.Length)
        {
            return false;
        }
        int start = i;
        if (!CharClass.Is(s[i], CharClass.LetDig))
        {
            error = ParameterError.BadValue;
            return false;
        }
        while (i < s.Length && CharClass.Is(s[i], CharClass.Ldh))
        {
            i++;
        }
        keyword = s[start..i];
        if (i < s.Length && s[i] == (byte)'=')
        {
            i++;
            int valueStart = i;
            while (i < s.Length && (s[i] >= 0x80 || CharClass.Is(s[i], CharClass.EsmtpValue)))
            {
                i++;
            }
            value = s[valueStart..i];
            hasValue = true;
            if (value.IsEmpty)
            {
                error = ParameterError.BadValue;
                return false;
            }
        }
        if (i < s.Length && s[i] != (byte)' ')
        {
            error = ParameterError.BadValue; // a control octet, '=' in a value, a bare CR...
            return false;
        }
        return true;
    }

    /// <summary>size-value = 1*20DIGIT (RFC 1870 §4). More than fits in a long is "too big", not junk.</summary>
    internal static ParameterError ParseSize(ReadOnlySpan<byte> value, long maxSize, out long size)
    {
        size = -1;
        if (value.IsEmpty)
        {
            return ParameterError.BadValue;
        }
        ulong n = 0;
        bool overflow = false;
        foreach (byte c in value)
        {
            uint d = (uint)(c - '0');
            if (d > 9)
            {
                return ParameterError.BadValue;
            }
            if (n > (ulong.MaxValue - d) / 10)
            {
                overflow = true;
            }
            else
            {
                n = n * 10 + d;
            }
        }
        if (overflow || n > (ulong)long.MaxValue || (maxSize > 0 && (long)n > maxSize))
        {
            return ParameterError.SizeExceeded;
        }
        size = (long)n;
        return ParameterError.None;
    }

    /// <summary>
    /// xtext = *( xchar / hexchar )                ; RFC 3461 §4
    /// xchar = any CHAR from "!" (33) to "~" (126) except "+" and "="
    /// hexchar = "+" 2(%x30-39 / %x41-46)          ; upper-case hex; a decoded control octet (CR, LF, ...) is refused
    /// </summary>
    internal static bool IsXText(ReadOnlySpan<byte> s, int maxDecoded)
    {
        int decoded = 0;
        for (int i = 0; i < s.Length; i++)
        {
            byte c = s[i];
            if (c == (byte)'+')
            {
                if (i + 2 >= s.Length)
                {
                    return false;
                }
                int hi = Hex(s[i + 1]), lo = Hex(s[i + 2]);
                if (hi < 0 || lo < 0)
                {
                    return false;
                }
                int octet = hi * 16 + lo;
                if (octet < 32 || octet == 127)
                {
                    return false; // would smuggle CR, LF or another control into a DSN
                }
                i += 2;
            }
            else if (c >= 0x80 || !CharClass.Is(c, CharClass.XChar))
            {
                return false;
            }
            decoded++;
        }
        return decoded <= maxDecoded;
    }

    private static int Hex(byte c) => c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

    private static bool IsNotify(ReadOnlySpan<byte> value)
    {
        if (Is(value, "NEVER"u8))
        {
            return true;
        }
        int seen = 0;
        while (!value.IsEmpty)
        {
            int comma = value.IndexOf((byte)',');
            ReadOnlySpan<byte> item = comma < 0 ? value : value[..comma];
            int bit = Is(item, "SUCCESS"u8) ? 1 : Is(item, "FAILURE"u8) ? 2 : Is(item, "DELAY"u8) ? 4 : 0;
            if (bit == 0 || (seen & bit) != 0)
            {
                return false;
            }
            seen |= bit;
            if (comma < 0)
            {
                return true;
            }
            value = value[(comma + 1)..];
            if (value.IsEmpty)
            {
                return false;
            }
        }
        return false;
    }

    private static bool Is(ReadOnlySpan<byte> s, ReadOnlySpan<byte> upper) => System.Text.Ascii.EqualsIgnoreCase(s, upper);

    private static ParseStatus Fail(ref ParameterError error, ParameterError e)
    {
        error = e;
        return ParseStatus.Error;
    }
}
