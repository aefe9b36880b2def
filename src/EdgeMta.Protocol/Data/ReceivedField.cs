// Recognises the field name "Received:" at the start of a header line, one octet at a time, so that a
// name split across reads is still seen. RFC 5322 §3.6.7 names the trace field; field names are
// case-insensitive (RFC 5322 §1.2.2); the colon follows the name directly (§2.2, no white space before it).
// RFC 5321 §6.3: a server should refuse a message with a large number of them (a mail loop); PROTOCOL.md
// says more than 100.
namespace EdgeMta.Protocol.Data;

internal static class ReceivedField
{
    /// <summary>The value <see cref="Advance"/> returns once all of "received:" has been matched.</summary>
    public const sbyte Matched = 9;

    private static ReadOnlySpan<byte> Name => "received:"u8;

    /// <summary>
    /// Given <paramref name="matched"/> octets of "received:" matched so far (0-8), returns the new count after
    /// <paramref name="octet"/>, <see cref="Matched"/> when the name is complete, or -1 when the line is no
    /// Received: line. Letters fold with | 0x20, which maps only 'A'-'Z' onto 'a'-'z' among the letters of the
    /// name; the colon is compared exactly (0x1A | 0x20 would also give ':').
    /// </summary>
    public static sbyte Advance(sbyte matched, byte octet)
    {
        byte expected = Name[matched];
        bool equal = expected == (byte)':' ? octet == expected : (octet | 0x20) == expected;
        return equal ? (sbyte)(matched + 1) : (sbyte)-1;
    }
}
