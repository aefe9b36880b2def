// Contract: reads what a next hop offers from its EHLO or LHLO reply, and the domain it names there or in its
// greeting, for loop detection.
//
// RFC 5321 §4.1.1.1: ehlo-ok-rsp = "250" SP Domain [ SP ehlo-greet ] CRLF, or the same first line with "250-"
// followed by ( "250-" ehlo-line CRLF ) and a last "250" SP ehlo-line CRLF;
// ehlo-line = ehlo-keyword *( SP ehlo-param ), and keywords are case-insensitive (§2.4). The extensions it
// knows, each with the document that defines it: PIPELINING (RFC 2920), CHUNKING and BINARYMIME (RFC 3030),
// 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461), STARTTLS (RFC 3207), SIZE (RFC 1870) and
// ENHANCEDSTATUSCODES (RFC 2034). Other keywords, AUTH and the old "AUTH=" form included, are ignored.
//
// It does not decide what to use (docs/DELIVERY.md "What a delivery attempt does" does that), and it does not
// look at replies other than 250: a refused EHLO is the caller's to handle (fall back to HELO or defer), so
// TryParse answers false with the reason. A SIZE parameter that is not a number is read as no limit known (0),
// as RFC 1870 §5 makes the number optional; the rest of the reply still counts.
using System.Text;

namespace EdgeMta.Delivery;

/// <summary>The service extensions a next hop advertised; the ones the client can use.</summary>
[Flags]
public enum SmtpExtensions : ushort
{
    None = 0,
    Pipelining = 1 << 0,
    Chunking = 1 << 1,
    BinaryMime = 1 << 2,
    EightBitMime = 1 << 3,
    SmtpUtf8 = 1 << 4,
    Dsn = 1 << 5,
    StartTls = 1 << 6,
    Size = 1 << 7,
    EnhancedStatusCodes = 1 << 8,
}

/// <summary>What one EHLO or LHLO reply said: the extensions, the SIZE limit and the server's domain.</summary>
public sealed class ServerCapabilities
{
    private ServerCapabilities(SmtpExtensions extensions, long sizeLimit, string domain)
    {
        Extensions = extensions;
        SizeLimit = sizeLimit;
        Domain = domain;
    }

    public SmtpExtensions Extensions { get; }

    /// <summary>RFC 1870 §4: the largest message the server takes, in octets; 0 when it gave none (no fixed limit).</summary>
    public long SizeLimit { get; }

    /// <summary>The first word of the first line: the domain the server calls itself (RFC 5321 §4.1.1.1).</summary>
    public string Domain { get; }

    public bool Has(SmtpExtensions extension) => (Extensions & extension) == extension;

    /// <summary>
    /// Reads a 250 reply to EHLO or LHLO (RFC 2033 §4.1 gives LHLO the same reply). False, with
    /// <paramref name="error"/> saying why, for any other code.
    /// </summary>
    public static bool TryParse(SmtpReply reply, out ServerCapabilities capabilities, out string error)
    {
        if (reply.Code != 250)
        {
            capabilities = new ServerCapabilities(SmtpExtensions.None, 0, string.Empty);
            error = $"EHLO was answered {reply.Code}, not 250";
            return false;
        }

        var extensions = SmtpExtensions.None;
        long sizeLimit = 0;
        bool first = true;
        foreach (var line in reply.Lines)
        {
            // The first line is Domain [ SP ehlo-greet ]: a server named "SIZE" must not read as an extension.
            if (first)
            {
                first = false;
                continue;
            }

            int space = line.IndexOf((byte)' ');
            var keyword = space < 0 ? line : line[..space];
            var extension = Keyword(keyword);
            extensions |= extension;
            if (extension == SmtpExtensions.Size && space >= 0)
                sizeLimit = SizeParameter(line[(space + 1)..]);
        }

        capabilities = new ServerCapabilities(extensions, sizeLimit, DomainOf(reply));
        error = string.Empty;
        return true;
    }

    /// <summary>
    /// The first word of a greeting's or EHLO reply's first line (RFC 5321 §4.2: greeting = "220 " Domain ...;
    /// §4.1.1.1 for EHLO). Empty when the line is empty. Octets outside ASCII are kept one char each (Latin-1),
    /// so such a name can never equal an ASCII host name by accident.
    /// </summary>
    public static string DomainOf(SmtpReply reply)
    {
        var line = reply.FirstLine;
        int space = line.IndexOf((byte)' ');
        return Encoding.Latin1.GetString(space < 0 ? line : line[..space]);
    }

    /// <summary>
    /// docs/DELIVERY.md "Loops": true when <paramref name="domain"/> (from <see cref="DomainOf"/>) names
    /// <paramref name="hostname"/>. DNS names compare without regard to ASCII case (RFC 4343) and a trailing dot
    /// (the root) does not make a different name. A name with non-ASCII characters matches nothing: it is not a
    /// host name (RFC 1123 §2.1), and an A-label host name is ASCII.
    /// </summary>
    public static bool NamesHost(string domain, string hostname)
    {
        var a = domain.AsSpan().TrimEnd('.');
        var b = hostname.AsSpan().TrimEnd('.');
        return a.Length > 0 && Ascii.EqualsIgnoreCase(a, b);
    }

    private static SmtpExtensions Keyword(ReadOnlySpan<byte> keyword)
    {
        if (Ascii.EqualsIgnoreCase(keyword, "PIPELINING"u8))
            return SmtpExtensions.Pipelining;
        if (Ascii.EqualsIgnoreCase(keyword, "CHUNKING"u8))
            return SmtpExtensions.Chunking;
        if (Ascii.EqualsIgnoreCase(keyword, "BINARYMIME"u8))
            return SmtpExtensions.BinaryMime;
        if (Ascii.EqualsIgnoreCase(keyword, "8BITMIME"u8))
            return SmtpExtensions.EightBitMime;
        if (Ascii.EqualsIgnoreCase(keyword, "SMTPUTF8"u8))
            return SmtpExtensions.SmtpUtf8;
        if (Ascii.EqualsIgnoreCase(keyword, "DSN"u8))
            return SmtpExtensions.Dsn;
        if (Ascii.EqualsIgnoreCase(keyword, "STARTTLS"u8))
            return SmtpExtensions.StartTls;
        if (Ascii.EqualsIgnoreCase(keyword, "SIZE"u8))
            return SmtpExtensions.Size;
        if (Ascii.EqualsIgnoreCase(keyword, "ENHANCEDSTATUSCODES"u8))
            return SmtpExtensions.EnhancedStatusCodes;
        return SmtpExtensions.None;
    }

    /// <summary>
    /// size-param = ["SIZE"] SP 1*20DIGIT (RFC 1870 §4; the keyword already read). 0 when it is not a number or
    /// has more than 18 digits (the most a long always holds): the client then sends without a size check, and the server's own reply to the
    /// data still decides.
    /// </summary>
    private static long SizeParameter(ReadOnlySpan<byte> parameter)
    {
        int end = parameter.IndexOf((byte)' ');
        var digits = end < 0 ? parameter : parameter[..end];
        if (digits.IsEmpty || digits.Length > 18)
            return 0;
        long value = 0;
        foreach (byte b in digits)
        {
            if (b - (uint)'0' > 9)
                return 0;
            value = value * 10 + (b - '0');
        }

        return value;
    }
}
