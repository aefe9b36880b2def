// Contract: the recipient directory of PROTOCOL.md ("--recipients FILE"), loaded once, looked up per RCPT.
//
// Format, one entry a line, '#' starts a comment, addresses compare case-insensitively (ASCII letters;
// UTF-8 octets compare exactly):
//   jones@foo.com                       a valid mailbox
//   Admin.MRC@foo.com   Mark Crispin    a valid mailbox with its display name (VRFY)
//   @bar.org                            any local part at bar.org
//   staff@foo.com  list: a@foo.com, b@foo.com     a mailing list (valid; EXPN lists it)
//   old@foo.com    moved: new@elsewhere.org       RCPT → 551 5.1.6
//   fwd@foo.com    forward: x@elsewhere.org       RCPT → 251 2.1.5
// Local domains are the entries' domains plus the extra domains given (--domain). A local domain with no
// entry of its own (only named by --domain) takes any local part. With no entries and no domains the
// directory is in sink mode: every recipient is accepted. Postmaster is always accepted at a local domain
// and bare (RFC 5321 §4.5.1). Lookups hash the address octets with ASCII case folded: no allocation.
// A malformed line throws FormatException with its line number (the host reports it and exits).
using System.Text;

namespace EdgeMta.Protocol;

/// <summary>What RCPT gets for an address.</summary>
public enum RecipientVerdict : byte
{
    /// <summary>250 2.1.5.</summary>
    Accept,
    /// <summary>251 2.1.5 will forward to &lt;target&gt; (accepted).</summary>
    Forward,
    /// <summary>551 5.1.6 please try &lt;target&gt;.</summary>
    Moved,
    /// <summary>550 5.1.1.</summary>
    Unknown,
    /// <summary>550 5.7.1 relaying denied.</summary>
    RelayDenied,
}

/// <summary>What VRFY/EXPN found.</summary>
public enum DirectoryMatch : byte
{
    None,
    One,
    Ambiguous,
}

/// <summary>The recipient directory, immutable after <see cref="Parse(string)"/>; shared by every session.</summary>
public sealed partial class RecipientDirectory
{
    private enum Kind : byte { Mailbox, List, Moved, Forward }

    private sealed class Entry
    {
        public required byte[] Address;
        public required int AtIndex;
        public required Kind Kind;
        public byte[] Name = [];
        public byte[] Target = [];
        public int[] Members = [];
    }

    private readonly List<Entry> _entries = [];
    private readonly List<byte[]> _members = [];
    private readonly ByteKeyTable _addresses = new();
    // Domain → flags: 1 local, 2 any local part (wildcard or no entries of its own).
    private readonly ByteKeyTable _domains = new();

    private RecipientDirectory()
    {
    }

    /// <summary>The sink-mode directory: no entries, no domains, every recipient accepted.</summary>
    public static RecipientDirectory Sink { get; } = new();

    /// <summary>True when every recipient is accepted (no entries and no domains).</summary>
    public bool IsSink => _entries.Count == 0 && _domains.Count == 0;

    public int EntryCount => _entries.Count;

    public static RecipientDirectory Parse(string text, IEnumerable<string>? extraDomains = null) =>
        Parse(new StringReader(text), extraDomains);

    public static RecipientDirectory Parse(TextReader reader, IEnumerable<string>? extraDomains = null)
    {
        var d = new RecipientDirectory();
        var domainsWithEntries = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var lists = new List<(Entry Entry, string Members, int Line)>();
        string? raw;
        int number = 0;
        while ((raw = reader.ReadLine()) != null)
        {
            number++;
            int hash = raw.IndexOf('#');
            string line = (hash >= 0 ? raw[..hash] : raw).Trim();
            if (line.Length == 0)
            {
                continue;
            }
            int space = line.IndexOfAny([' ', '\t']);
            string address = space < 0 ? line : line[..space];
            string rest = space < 0 ? "" : line[(space + 1)..].Trim();
            int at = address.IndexOf('@');
            if (at < 0 || at != address.LastIndexOf('@') || at == address.Length - 1)
            {
                throw new FormatException($"recipients line {number}: '{address}' is not an address or @domain");
            }
            string domain = address[(at + 1)..];
            if (at == 0)
            {
                if (rest.Length != 0)
                {
                    throw new FormatException($"recipients line {number}: '@{domain}' takes nothing after it");
                }
                d._domains.Set(Encoding.UTF8.GetBytes(domain), 3);
                continue;
            }
            domainsWithEntries.Add(domain);
            var entry = new Entry { Address = Encoding.UTF8.GetBytes(address), AtIndex = Encoding.UTF8.GetByteCount(address[..at]), Kind = Kind.Mailbox };
            if (StartsWithWord(rest, "list:", out string members))
            {
                entry.Kind = Kind.List;
                lists.Add((entry, members, number));
            }
            else if (StartsWithWord(rest, "moved:", out string moved) || StartsWithWord(rest, "forward:", out moved))
            {
                entry.Kind = rest.StartsWith("moved:", StringComparison.OrdinalIgnoreCase) ? Kind.Moved : Kind.Forward;
                if (moved.Length == 0 || moved.Contains(' ') || !moved.Contains('@'))
                {
                    throw new FormatException($"recipients line {number}: one target address expected");
                }
                entry.Target = Encoding.UTF8.GetBytes(moved);
            }
            else
            {
                entry.Name = Encoding.UTF8.GetBytes(rest);
            }
            if (d._addresses.TryGet(entry.Address, out _))
            {
                throw new FormatException($"recipients line {number}: '{address}' is listed twice");
            }
            d._addresses.Set(entry.Address, d._entries.Count);
            d._entries.Add(entry);
        }

        foreach ((Entry entry, string members, int line) in lists)
        {
            var indices = new List<int>();
            foreach (string m in members.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!m.Contains('@'))
                {
                    throw new FormatException($"recipients line {line}: list member '{m}' is not an address");
                }
                indices.Add(d._members.Count);
                d._members.Add(Encoding.UTF8.GetBytes(m));
            }
            if (indices.Count == 0)
            {
                throw new FormatException($"recipients line {line}: empty list");
            }
            entry.Members = [.. indices];
        }

        foreach (string domain in domainsWithEntries)
        {
            byte[] key = Encoding.UTF8.GetBytes(domain);
            if (!d._domains.TryGet(key, out _))
            {
                d._domains.Set(key, 1);
            }
        }
        foreach (string domain in extraDomains ?? [])
        {
            byte[] key = Encoding.UTF8.GetBytes(domain.Trim());
            if (!d._domains.TryGet(key, out _))
            {
                d._domains.Set(key, domainsWithEntries.Contains(domain.Trim()) ? 1 : 3);
            }
        }
        return d;
    }

    /// <summary>
    /// The verdict for a forward path's mailbox (no brackets). <paramref name="atIndex"/> is the '@' or -1
    /// for a bare Postmaster. <paramref name="target"/> is the 251/551 address.
    /// </summary>
    public RecipientVerdict Lookup(scoped ReadOnlySpan<byte> mailbox, int atIndex, out ReadOnlySpan<byte> target)
    {
        target = default;
        if (atIndex < 0)
        {
            return RecipientVerdict.Accept; // "<Postmaster>": RFC 5321 §4.1.1.3
        }
        if (IsSink)
        {
            return RecipientVerdict.Accept;
        }
        if (!_domains.TryGet(mailbox[(atIndex + 1)..], out int domainFlags))
        {
            return RecipientVerdict.RelayDenied;
        }
        // "jones"@foo.com is jones@foo.com (RFC 5321 §4.1.2: quoting that is not needed does not change the
        // mailbox), so a quoted local part whose content is a plain dot-string is looked up without its quotes.
        if (mailbox[0] == (byte)'"')
        {
            Span<byte> unquoted = stackalloc byte[PathGrammar.MaxPath];
            if (TryUnquoteLocalPart(mailbox, atIndex, unquoted, out int unquotedAt))
            {
                mailbox = unquoted[..(unquotedAt + mailbox.Length - atIndex)];
                atIndex = unquotedAt;
            }
        }
        if (_addresses.TryGet(mailbox, out int index))
        {
            Entry e = _entries[index];
            switch (e.Kind)
            {
                case Kind.Moved:
                    target = e.Target;
                    return RecipientVerdict.Moved;
                case Kind.Forward:
                    target = e.Target;
                    return RecipientVerdict.Forward;
                default:
                    return RecipientVerdict.Accept;
            }
        }
        if ((domainFlags & 2) != 0 || (atIndex == 10 && Ascii.EqualsIgnoreCase(mailbox[..10], "postmaster"u8)))
        {
            return RecipientVerdict.Accept;
        }
        return RecipientVerdict.Unknown;
    }

    /// <summary>Writes the mailbox with its quoted local part unquoted when the content is a Dot-string (atext
    /// and single inner dots); false when it is not one, and quoting is then part of the mailbox.</summary>
    private static bool TryUnquoteLocalPart(ReadOnlySpan<byte> mailbox, int atIndex, Span<byte> dest, out int at)
    {
        at = 0;
        if (atIndex < 2 || mailbox[atIndex - 1] != (byte)'"' || mailbox.Length > dest.Length)
        {
            return false;
        }
        for (int i = 1; i < atIndex - 1; i++)
        {
            byte c = mailbox[i];
            if (c == (byte)'\\' && i + 1 < atIndex - 1)
            {
                c = mailbox[++i];
            }
            bool dot = c == (byte)'.';
            if (!(dot || CharClass.Is(c, CharClass.AText)) || (dot && (at == 0 || dest[at - 1] == (byte)'.')))
            {
                return false;
            }
            dest[at++] = c;
        }
        if (at == 0 || dest[at - 1] == (byte)'.')
        {
            return false;
        }
        mailbox[atIndex..].CopyTo(dest[at..]);
        return true;
    }

    private static bool StartsWithWord(string s, string word, out string rest)
    {
        if (s.StartsWith(word, StringComparison.OrdinalIgnoreCase))
        {
            rest = s[word.Length..].Trim();
            return true;
        }
        rest = "";
        return false;
    }
}
