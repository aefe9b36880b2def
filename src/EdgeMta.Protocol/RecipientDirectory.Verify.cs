// Contract: VRFY and EXPN lookups over the recipient directory (RFC 5321 §3.5).
//
// VRFY matches a whole address, a local part, a whole display name, or one word of a display name,
// ASCII case-insensitively ("Crispin" and "Admin.MRC" both find "Mark Crispin <Admin.MRC@foo.com>").
// More than one match is ambiguous (553 5.1.4, RFC 5321 §3.5.3). These commands are rare and off the hot
// path: a linear scan over the entries is the honest cost.
using System.Text;

namespace EdgeMta.Protocol;

public sealed partial class RecipientDirectory
{
    /// <summary>Finds the one entry VRFY names; <paramref name="name"/> and <paramref name="address"/> describe it.</summary>
    public DirectoryMatch Verify(ReadOnlySpan<byte> query, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> address)
    {
        name = default;
        address = default;
        query = Unbracket(query);
        int found = -1;
        for (int i = 0; i < _entries.Count; i++)
        {
            Entry e = _entries[i];
            if (Matches(e, query))
            {
                if (found >= 0)
                {
                    return DirectoryMatch.Ambiguous;
                }
                found = i;
            }
        }
        if (found < 0)
        {
            return DirectoryMatch.None;
        }
        name = _entries[found].Name;
        address = _entries[found].Address;
        return DirectoryMatch.One;
    }

    /// <summary>The list EXPN names: <see cref="DirectoryMatch.One"/> with its members, or None / a non-list (<paramref name="isList"/> false).</summary>
    public DirectoryMatch Expand(ReadOnlySpan<byte> query, out bool isList, out int list, out int memberCount)
    {
        isList = false;
        memberCount = 0;
        list = -1;
        DirectoryMatch m = Verify(query, out _, out ReadOnlySpan<byte> address);
        if (m != DirectoryMatch.One)
        {
            return m;
        }
        _addresses.TryGet(address, out int index);
        Entry e = _entries[index];
        isList = e.Kind == Kind.List;
        memberCount = e.Members.Length;
        list = index;
        return m;
    }

    /// <summary>Member <paramref name="i"/> of the <paramref name="list"/> <see cref="Expand"/> found, with its display name if it is an entry.</summary>
    public ReadOnlySpan<byte> ListMember(int list, int i, out ReadOnlySpan<byte> name)
    {
        byte[] member = _members[_entries[list].Members[i]];
        name = _addresses.TryGet(member, out int index) ? _entries[index].Name : default;
        return member;
    }

    private static bool Matches(Entry e, ReadOnlySpan<byte> q)
    {
        if (ByteKeyTable.EqualsFolded(e.Address, q) || ByteKeyTable.EqualsFolded(e.Address.AsSpan(0, e.AtIndex), q))
        {
            return true;
        }
        if (e.Name.Length == 0)
        {
            return false;
        }
        if (ByteKeyTable.EqualsFolded(e.Name, q))
        {
            return true;
        }
        ReadOnlySpan<byte> rest = e.Name;
        while (!rest.IsEmpty)
        {
            int sp = rest.IndexOf((byte)' ');
            ReadOnlySpan<byte> word = sp < 0 ? rest : rest[..sp];
            if (ByteKeyTable.EqualsFolded(word, q))
            {
                return true;
            }
            rest = sp < 0 ? default : rest[(sp + 1)..];
        }
        return false;
    }

    private static ReadOnlySpan<byte> Unbracket(ReadOnlySpan<byte> q) =>
        q.Length >= 2 && q[0] == (byte)'<' && q[^1] == (byte)'>' ? q[1..^1] : q;
}

/// <summary>An open-addressing table from byte keys (ASCII case folded) to ints, built once, read without allocating.</summary>
internal sealed class ByteKeyTable
{
    private byte[]?[] _keys = new byte[]?[16];
    private int[] _values = new int[16];

    public int Count { get; private set; }

    public void Set(byte[] key, int value)
    {
        if ((Count + 1) * 2 > _keys.Length)
        {
            Grow();
        }
        int mask = _keys.Length - 1;
        int i = (int)(Hash(key) & (uint)mask);
        while (_keys[i] != null && !EqualsFolded(_keys[i]!, key))
        {
            i = (i + 1) & mask;
        }
        if (_keys[i] == null)
        {
            Count++;
        }
        _keys[i] = key;
        _values[i] = value;
    }

    public bool TryGet(ReadOnlySpan<byte> key, out int value)
    {
        int mask = _keys.Length - 1;
        int i = (int)(Hash(key) & (uint)mask);
        while (_keys[i] is byte[] k)
        {
            if (EqualsFolded(k, key))
            {
                value = _values[i];
                return true;
            }
            i = (i + 1) & mask;
        }
        value = 0;
        return false;
    }

    private void Grow()
    {
        byte[]?[] keys = _keys;
        int[] values = _values;
        _keys = new byte[]?[keys.Length * 2];
        _values = new int[keys.Length * 2];
        Count = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] is byte[] k)
            {
                Set(k, values[i]);
            }
        }
    }

    /// <summary>FNV-1a over the octets with ASCII upper case folded to lower case.</summary>
    private static uint Hash(ReadOnlySpan<byte> key)
    {
        uint h = 2166136261;
        foreach (byte b in key)
        {
            h = (h ^ Fold(b)) * 16777619;
        }
        return h ^ (h >> 15);
    }

    private static byte Fold(byte b) => b >= (byte)'A' && b <= (byte)'Z' ? (byte)(b | 0x20) : b;

    public static bool EqualsFolded(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] != b[i] && Fold(a[i]) != Fold(b[i]))
            {
                return false;
            }
        }
        return true;
    }
}
