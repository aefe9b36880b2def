// Contract: the path grammar of RFC 5321 §4.1.2 with the UTF-8 extension of RFC 6531 §3.3.
//
// It validates a reverse-path or forward-path in place and reports where the mailbox is; it copies
// nothing and allocates nothing (except when checking an IPv6 literal, which is rare). A source route
// (A-d-l, RFC 5321 §4.1.1.3 and Appendix C) is checked and then ignored: the mailbox alone is kept.
// Length limits are RFC 5321 §4.5.3.1.1-3: local part 64, domain 255, path 256 octets. Non-ASCII octets
// are accepted as UTF-8 (validated) and flagged, so the caller can insist on SMTPUTF8 (553 5.6.7).
// It does not decide whether a mailbox exists or is local: see RecipientDirectory.
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace EdgeMta.Protocol;

/// <summary>Why a path was refused.</summary>
public enum PathError : byte
{
    None,
    /// <summary>Not the grammar (501 5.1.7 / 5.1.3).</summary>
    Syntax,
    /// <summary>Over 256 octets (501, RFC 5321 §4.5.3.1.3 "Path too long").</summary>
    PathTooLong,
    /// <summary>Local part over 64 or domain over 255 octets (553, mailbox name not allowed).</summary>
    NameTooLong,
    /// <summary>"&lt;&gt;" where a forward path is needed (501 5.1.3).</summary>
    NullPath,
}

/// <summary>A path validated by <see cref="PathGrammar"/>: offsets into the argument it came from.</summary>
public struct ParsedPath
{
    /// <summary>Where the mailbox (without route or brackets) starts, and its length; 0 for "&lt;&gt;".</summary>
    public int MailboxStart;
    public int MailboxLength;
    /// <summary>Offset of the '@' that splits local part and domain, relative to MailboxStart; -1 for none (Postmaster).</summary>
    public int AtIndex;
    /// <summary>Octets of the argument the path took, its closing '&gt;' included.</summary>
    public int End;
    public bool IsNull;
    /// <summary>The mailbox holds octets above 127 (RFC 6531: needs SMTPUTF8).</summary>
    public bool HasUtf8;
    public bool HasSourceRoute;
}

/// <summary>Try* methods for RFC 5321 §4.1.2 paths.</summary>
public static partial class PathGrammar
{
    public const int MaxLocalPart = 64;   // RFC 5321 §4.5.3.1.1
    public const int MaxDomain = 255;     // RFC 5321 §4.5.3.1.2
    public const int MaxPath = 256;       // RFC 5321 §4.5.3.1.3, punctuation included

    /// <summary>
    /// Reverse-path = Path / "&lt;&gt;"                         ; RFC 5321 §4.1.2
    /// Path         = "&lt;" [ A-d-l ":" ] Mailbox "&gt;"
    /// </summary>
    public static ParseStatus TryParseReversePath(ReadOnlySpan<byte> s, out ParsedPath path, out PathError error)
    {
        if (s.Length >= 2 && s[0] == (byte)'<' && s[1] == (byte)'>')
        {
            path = new ParsedPath { IsNull = true, End = 2, AtIndex = -1 };
            error = PathError.None;
            return ParseStatus.Complete;
        }
        return TryParsePath(s, allowPostmaster: false, out path, out error);
    }

    /// <summary>
    /// Forward-path = Path                                    ; RFC 5321 §4.1.2
    /// rcpt         = "RCPT TO:" ( "&lt;Postmaster@" Domain "&gt;" / "&lt;Postmaster&gt;" / Forward-path ) ...
    /// </summary>
    public static ParseStatus TryParseForwardPath(ReadOnlySpan<byte> s, out ParsedPath path, out PathError error)
    {
        if (s.Length >= 2 && s[0] == (byte)'<' && s[1] == (byte)'>')
        {
            path = default;
            error = PathError.NullPath;
            return ParseStatus.Error;
        }
        return TryParsePath(s, allowPostmaster: true, out path, out error);
    }

    /// <summary>
    /// Path    = "&lt;" [ A-d-l ":" ] Mailbox "&gt;"
    /// A-d-l   = At-domain *( "," At-domain )                ; source route, ignored (RFC 5321 §4.1.1.3)
    /// At-domain = "@" Domain
    /// Mailbox = Local-part "@" ( Domain / address-literal )
    /// </summary>
    private static ParseStatus TryParsePath(ReadOnlySpan<byte> s, bool allowPostmaster, out ParsedPath path, out PathError error)
    {
        path = default;
        path.AtIndex = -1;
        error = PathError.Syntax;
        if (s.IsEmpty || s[0] != (byte)'<')
        {
            return ParseStatus.Error;
        }
        int i = 1;
        if (i < s.Length && s[i] == (byte)'@')
        {
            path.HasSourceRoute = true;
            while (true)
            {
                i++; // the '@'
                int n = DomainLength(s[i..], out bool utf8);
                if (n <= 0 || n > MaxDomain)
                {
                    return ParseStatus.Error;
                }
                path.HasUtf8 |= utf8;
                i += n;
                if (i < s.Length && s[i] == (byte)',' && i + 1 < s.Length && s[i + 1] == (byte)'@')
                {
                    i++;
                    continue;
                }
                if (i < s.Length && s[i] == (byte)':')
                {
                    i++;
                    break;
                }
                return ParseStatus.Error;
            }
        }

        int mailboxStart = i;
        int local = LocalPartLength(s[i..], out bool localUtf8);
        if (local <= 0)
        {
            return ParseStatus.Error;
        }
        path.HasUtf8 |= localUtf8;
        i += local;
        if (i < s.Length && s[i] == (byte)'>' && allowPostmaster && IsPostmaster(s.Slice(mailboxStart, local)))
        {
            // "<Postmaster>" without a domain: RFC 5321 §4.1.1.3 and §4.5.1 (MUST be accepted).
            path.MailboxStart = mailboxStart;
            path.MailboxLength = local;
            path.End = i + 1;
            error = PathError.None;
            return ParseStatus.Complete;
        }
        if (i >= s.Length || s[i] != (byte)'@')
        {
            return ParseStatus.Error;
        }
        int at = i;
        i++;
        int domain;
        if (i < s.Length && s[i] == (byte)'[')
        {
            domain = AddressLiteralLength(s[i..]);
        }
        else
        {
            domain = DomainLength(s[i..], out bool domainUtf8);
            path.HasUtf8 |= domainUtf8;
        }
        if (domain <= 0)
        {
            return ParseStatus.Error;
        }
        i += domain;
        if (i >= s.Length || s[i] != (byte)'>')
        {
            return ParseStatus.Error;
        }
        i++;
        if (path.HasUtf8 && !Utf8.IsValid(s[mailboxStart..i]))
        {
            return ParseStatus.Error;
        }
        if (i > MaxPath)
        {
            error = PathError.PathTooLong;
            return ParseStatus.Error;
        }
        if (local > MaxLocalPart || domain > MaxDomain)
        {
            error = PathError.NameTooLong;
            return ParseStatus.Error;
        }
        path.MailboxStart = mailboxStart;
        path.MailboxLength = i - 1 - mailboxStart;
        path.AtIndex = at - mailboxStart;
        path.End = i;
        error = PathError.None;
        return ParseStatus.Complete;
    }

    /// <summary>
    /// Local-part = Dot-string / Quoted-string
    /// Dot-string = Atom *("." Atom)    Atom = 1*atext      ; atext =/ UTF8-non-ascii (RFC 6531 §3.3)
    /// Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    /// QcontentSMTP  = qtextSMTP / quoted-pairSMTP
    /// quoted-pairSMTP = %d92 %d32-126                      ; backslash followed by any ASCII graphic or space
    /// qtextSMTP     = %d32-33 / %d35-91 / %d93-126         ; =/ UTF8-non-ascii
    /// Returns the length, or 0 when the grammar does not match.
    /// </summary>
    internal static int LocalPartLength(ReadOnlySpan<byte> s, out bool utf8)
    {
        utf8 = false;
        if (s.IsEmpty)
        {
            return 0;
        }
        if (s[0] == (byte)'"')
        {
            int i = 1;
            while (i < s.Length)
            {
                byte c = s[i];
                if (c == (byte)'"')
                {
                    return i + 1;
                }
                if (c == (byte)'\\')
                {
                    if (i + 1 >= s.Length || s[i + 1] < 32 || s[i + 1] > 126)
                    {
                        return 0;
                    }
                    i += 2;
                    continue;
                }
                if (c >= 0x80)
                {
                    utf8 = true;
                }
                else if (!CharClass.Is(c, CharClass.QText))
                {
                    return 0;
                }
                i++;
            }
            return 0;
        }

        int j = 0;
        bool atomStart = true;
        while (j < s.Length)
        {
            byte c = s[j];
            if (c == (byte)'.')
            {
                if (atomStart)
                {
                    return 0; // empty atom: leading dot or ".."
                }
                atomStart = true;
                j++;
                continue;
            }
            if (c >= 0x80)
            {
                utf8 = true;
            }
            else if (!CharClass.Is(c, CharClass.AText))
            {
                break;
            }
            atomStart = false;
            j++;
        }
        return atomStart ? 0 : j; // a trailing dot leaves an empty atom
    }

    /// <summary>
    /// Domain     = sub-domain *("." sub-domain)
    /// sub-domain = Let-dig [Ldh-str]                        ; =/ U-label (RFC 6531 §3.3)
    /// Let-dig    = ALPHA / DIGIT
    /// Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
    /// Returns the length, or 0 when the grammar does not match. Labels are at most 63 octets (RFC 1035 §2.3.4).
    /// </summary>
    internal static int DomainLength(ReadOnlySpan<byte> s, out bool utf8)
    {
        utf8 = false;
        int i = 0;
        while (true)
        {
            int label = 0;
            byte last = 0;
            while (i < s.Length)
            {
                byte c = s[i];
                if (c >= 0x80)
                {
                    utf8 = true;
                }
                else if (!CharClass.Is(c, CharClass.Ldh))
                {
                    break;
                }
                else if (label == 0 && c == (byte)'-')
                {
                    return 0;
                }
                last = c;
                label++;
                i++;
            }
            if (label == 0 || last == (byte)'-' || label > 63)
            {
                return 0;
            }
            if (i < s.Length && s[i] == (byte)'.')
            {
                i++;
                continue;
            }
            return i;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsPostmaster(ReadOnlySpan<byte> local) =>
        local.Length == 10 && Ascii.EqualsIgnoreCase(local, "postmaster"u8);
}
