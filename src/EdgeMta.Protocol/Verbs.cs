// Contract: SMTP verbs as 4-byte opcodes and the one table of their properties.
//
// A command line starts with its verb (RFC 5321 §4.1.1: verbs are case-insensitive, four letters, except
// the extension verb STARTTLS, RFC 3207 §4). The first four octets are read as one little-endian uint and
// case-folded with `| 0x20202020`: that sets bit 5 of each octet, which lower-cases an ASCII letter and
// changes nothing else a letter could become, so the fold is exact for letters (a byte folds to 'l' only
// if it is 'L' or 'l'). The verb must be followed by a space or by the end of the line ("MAILX" is not MAIL).
// The folded opcode is matched against all 17 at once with Vector128 compares where the hardware has
// them (SSE2, AdvSimd), else by a switch; the two are checked against each other by a test.
// This module does not judge arguments or state; it only names the verb and says where its argument starts.
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EdgeMta.Protocol;

/// <summary>The commands of RFC 5321 §4.1.1 plus BDAT (RFC 3030) and STARTTLS (RFC 3207).</summary>
public enum SmtpVerb : byte
{
    /// <summary>Not a known verb (500 5.5.2).</summary>
    Unknown = 0,
    Helo, Ehlo, Mail, Rcpt, Data, Bdat, Rset, Noop, Quit, Vrfy, Expn, Help, Turn, Send, Soml, Saml, StartTls,
    /// <summary>A line holding only "." outside DATA (docs/seeds/000: 503 in every state).</summary>
    Dot,
}

/// <summary>The case-folded opcodes. Each is the four ASCII lower-case letters read as a little-endian uint.</summary>
public static class VerbOpcodes
{
    /// <summary>OR-ed into the first four octets to lower-case them (bit 5 of each octet).</summary>
    public const uint CaseFold = 0x20202020;
    /// <summary>OR-ed into eight octets for STARTTLS.</summary>
    public const ulong CaseFold8 = 0x2020202020202020;

    public const uint Helo = 0x6F6C6568; // 'h'=0x68 'e'=0x65 'l'=0x6C 'o'=0x6F, little-endian
    public const uint Ehlo = 0x6F6C6865; // 'e'=0x65 'h'=0x68 'l'=0x6C 'o'=0x6F
    public const uint Mail = 0x6C69616D; // 'm'=0x6D 'a'=0x61 'i'=0x69 'l'=0x6C
    public const uint Rcpt = 0x74706372; // 'r'=0x72 'c'=0x63 'p'=0x70 't'=0x74
    public const uint Data = 0x61746164; // 'd'=0x64 'a'=0x61 't'=0x74 'a'=0x61
    public const uint Bdat = 0x74616462; // 'b'=0x62 'd'=0x64 'a'=0x61 't'=0x74
    public const uint Rset = 0x74657372; // 'r'=0x72 's'=0x73 'e'=0x65 't'=0x74
    public const uint Noop = 0x706F6F6E; // 'n'=0x6E 'o'=0x6F 'o'=0x6F 'p'=0x70
    public const uint Quit = 0x74697571; // 'q'=0x71 'u'=0x75 'i'=0x69 't'=0x74
    public const uint Vrfy = 0x79667276; // 'v'=0x76 'r'=0x72 'f'=0x66 'y'=0x79
    public const uint Expn = 0x6E707865; // 'e'=0x65 'x'=0x78 'p'=0x70 'n'=0x6E
    public const uint Help = 0x706C6568; // 'h'=0x68 'e'=0x65 'l'=0x6C 'p'=0x70
    public const uint Turn = 0x6E727574; // 't'=0x74 'u'=0x75 'r'=0x72 'n'=0x6E
    public const uint Send = 0x646E6573; // 's'=0x73 'e'=0x65 'n'=0x6E 'd'=0x64
    public const uint Soml = 0x6C6D6F73; // 's'=0x73 'o'=0x6F 'm'=0x6D 'l'=0x6C
    public const uint Saml = 0x6C6D6173; // 's'=0x73 'a'=0x61 'm'=0x6D 'l'=0x6C
    public const uint Star = 0x72617473; // 's'=0x73 't'=0x74 'a'=0x61 'r'=0x72: the first half of STARTTLS
    public const ulong StartTls = 0x736C747472617473; // "starttls": 's' 't' 'a' 'r' 't' 't' 'l' 's', little-endian

    /// <summary>
    /// Names the verb at the start of <paramref name="line"/> (no CRLF) and the index of its argument
    /// (after the spaces that follow the verb; equal to the line length when there is none).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SmtpVerb Recognise(ReadOnlySpan<byte> line, out int argumentStart)
    {
        argumentStart = line.Length;
        if (line.Length < 4)
        {
            return line.Length == 1 && line[0] == (byte)'.' ? SmtpVerb.Dot : SmtpVerb.Unknown;
        }

        uint op = BinaryPrimitives.ReadUInt32LittleEndian(line) | CaseFold;
        SmtpVerb verb = Vector128.IsHardwareAccelerated ? MatchVector(op) : MatchScalar(op);

        int verbLength = 4;
        if (verb == SmtpVerb.StartTls)
        {
            if (line.Length < 8 || (BinaryPrimitives.ReadUInt64LittleEndian(line) | CaseFold8) != StartTls)
            {
                return SmtpVerb.Unknown;
            }
            verbLength = 8;
        }
        else if (verb == SmtpVerb.Unknown)
        {
            return SmtpVerb.Unknown;
        }

        if (line.Length == verbLength)
        {
            return verb;
        }
        if (line[verbLength] != (byte)' ')
        {
            return SmtpVerb.Unknown;
        }

        // RFC 5321 §4.1.1 asks for one SP; extra spaces are tolerated (Postfix does too).
        int i = verbLength + 1;
        while (i < line.Length && line[i] == (byte)' ')
        {
            i++;
        }
        argumentStart = i;
        return verb;
    }
    // The 17 opcodes in SmtpVerb order (Helo = 1 ... StartTls = 17), five vectors of four; the three unused
    // lanes are masked off (a folded input could not equal their 0 anyway: folding sets bit 5 of every octet).
    private static readonly Vector128<uint> Lanes0 = Vector128.Create(Helo, Ehlo, Mail, Rcpt);
    private static readonly Vector128<uint> Lanes1 = Vector128.Create(Data, Bdat, Rset, Noop);
    private static readonly Vector128<uint> Lanes2 = Vector128.Create(Quit, Vrfy, Expn, Help);
    private static readonly Vector128<uint> Lanes3 = Vector128.Create(Turn, Send, Soml, Saml);
    private static readonly Vector128<uint> Lanes4 = Vector128.Create(Star, 0u, 0u, 0u);

    /// <summary>The vector path: the folded opcode compared with all 17 at once (SSE2 / AdvSimd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static SmtpVerb MatchVector(uint op)
    {
        Vector128<uint> v = Vector128.Create(op);
        uint mask = Vector128.Equals(v, Lanes0).ExtractMostSignificantBits()
            | (Vector128.Equals(v, Lanes1).ExtractMostSignificantBits() << 4)
            | (Vector128.Equals(v, Lanes2).ExtractMostSignificantBits() << 8)
            | (Vector128.Equals(v, Lanes3).ExtractMostSignificantBits() << 12)
            | ((Vector128.Equals(v, Lanes4).ExtractMostSignificantBits() & 1) << 16);
        return mask == 0 ? SmtpVerb.Unknown : (SmtpVerb)(BitOperations.TrailingZeroCount(mask) + 1);
    }

    /// <summary>The scalar fallback: a switch the compiler turns into a binary search.</summary>
    internal static SmtpVerb MatchScalar(uint op) => op switch
    {
        Helo => SmtpVerb.Helo,
        Ehlo => SmtpVerb.Ehlo,
        Mail => SmtpVerb.Mail,
        Rcpt => SmtpVerb.Rcpt,
        Data => SmtpVerb.Data,
        Bdat => SmtpVerb.Bdat,
        Rset => SmtpVerb.Rset,
        Noop => SmtpVerb.Noop,
        Quit => SmtpVerb.Quit,
        Vrfy => SmtpVerb.Vrfy,
        Expn => SmtpVerb.Expn,
        Help => SmtpVerb.Help,
        Turn => SmtpVerb.Turn,
        Send => SmtpVerb.Send,
        Soml => SmtpVerb.Soml,
        Saml => SmtpVerb.Saml,
        Star => SmtpVerb.StartTls,
        _ => SmtpVerb.Unknown,
    };
}

/// <summary>Properties of a verb; the table <see cref="VerbTable"/> gives each verb its set.</summary>
[Flags]
public enum VerbFlags : ushort
{
    None = 0,

    /// <summary>
    /// RFC 2920 §3.1: "The EHLO, DATA, VRFY, EXPN, TURN, QUIT, and NOOP commands can only appear as the last
    /// command in a group since their success or failure produces a change of state which the client SMTP
    /// must accommodate." HELO likewise (RFC 2920 §3.1 names EHLO; HELO replaces it) and STARTTLS
    /// (RFC 3207 §4.2: "the client MUST NOT send any further commands" until the 220). QUIT is left out:
    /// the session closes after it anyway.
    /// </summary>
    EndsPipelineGroup = 1 << 0,

    /// <summary>
    /// RFC 5321 §4.1.1.4 "data = "DATA" CRLF", §4.1.1.5 "rset = "RSET" CRLF", §4.1.1.10 "quit = "QUIT" CRLF",
    /// RFC 3207 §4 "STARTTLS with no parameters"; NOOP per PROTOCOL.md (Postfix answers 501 to "NOOP x";
    /// RFC 5321 §4.1.1.9 would let it ignore the string), TURN (RFC 821 "TURN <CRLF>").
    /// </summary>
    NoArguments = 1 << 1,

    /// <summary>RFC 5321 §4.1.1: HELO/EHLO name a domain, MAIL/RCPT a path, VRFY/EXPN a string; RFC 3030 BDAT a size.</summary>
    RequiresArgument = 1 << 2,

    /// <summary>
    /// Not implemented: TURN (RFC 2821 §4.1.1 dropped it: "obsolete, unsafe without authentication"),
    /// SEND/SOML/SAML (RFC 5321 §4.5.3... removed; sendmail answers 502, docs/seeds/001). 502 5.5.1.
    /// </summary>
    NotImplemented = 1 << 3,

    /// <summary>Opens or belongs to a mail transaction: refused with 530 5.7.0 under --require-tls before STARTTLS (RFC 3207 §4).</summary>
    NeedsTlsWhenRequired = 1 << 4,

    /// <summary>SEND, SOML, SAML: with --legacy-send they are MAIL (RFC 821 §4.1.1, mailbox delivery).</summary>
    LegacySend = 1 << 5,
}

/// <summary>The one flags table of command properties, indexed by <see cref="SmtpVerb"/>.</summary>
public static class VerbTable
{
    private const VerbFlags Ends = VerbFlags.EndsPipelineGroup;
    private const VerbFlags NoArgs = VerbFlags.NoArguments;
    private const VerbFlags Arg = VerbFlags.RequiresArgument;

    private static readonly VerbFlags[] Flags =
    [
        /* Unknown  */ VerbFlags.None,
        /* Helo     */ Ends | Arg,
        /* Ehlo     */ Ends | Arg,
        /* Mail     */ Arg | VerbFlags.NeedsTlsWhenRequired,
        /* Rcpt     */ Arg,
        /* Data     */ Ends | NoArgs,
        /* Bdat     */ Arg,
        /* Rset     */ NoArgs,
        /* Noop     */ Ends | NoArgs,
        /* Quit     */ NoArgs,
        /* Vrfy     */ Ends | Arg,
        /* Expn     */ Ends | Arg,
        /* Help     */ VerbFlags.None,
        /* Turn     */ Ends | NoArgs | VerbFlags.NotImplemented,
        /* Send     */ Arg | VerbFlags.NotImplemented | VerbFlags.LegacySend | VerbFlags.NeedsTlsWhenRequired,
        /* Soml     */ Arg | VerbFlags.NotImplemented | VerbFlags.LegacySend | VerbFlags.NeedsTlsWhenRequired,
        /* Saml     */ Arg | VerbFlags.NotImplemented | VerbFlags.LegacySend | VerbFlags.NeedsTlsWhenRequired,
        /* StartTls */ Ends | NoArgs,
        /* Dot      */ VerbFlags.None,
    ];

    public static int Count => Flags.Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VerbFlags Of(SmtpVerb verb) => Flags[(int)verb];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Has(SmtpVerb verb, VerbFlags flag) => (Flags[(int)verb] & flag) != 0;
}
