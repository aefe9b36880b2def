// Contract: the DNS wire format a stub resolver needs for one A question (RFC 1035 §4.1): building the query
// and reading the answer. Pure functions over spans, no allocation but the query packet and the addresses of a
// listing.
//
// Read defensively, as the answer comes from the network: every length is checked against the packet, a
// compression pointer must point backwards (RFC 1035 §4.1.4; forward or self pointers are how a loop is made),
// and at most 128 labels are followed per name. The answer must echo the question (RFC 5452 §9.1, so a stray or
// spoofed packet with a guessed id is not taken for it). What it does not do: EDNS, TCP retry on truncation (a
// blocklist answer is a few A records, far below 512 octets; TC is treated as a failure), CNAME chasing (A
// records under any owner name count, as a recursive resolver has already followed the chain).
using System.Buffers.Binary;
using System.Text;

namespace EdgeMta.Server.Dns;

internal static class DnsMessage
{
    public const int HeaderLength = 12;
    private const ushort TypeA = 1, TypeSoa = 6, ClassIn = 1;
    private const int MaxAddresses = 16;

    /// <summary>Why an answer packet does not answer the question at all (it is then ignored, not delivered).</summary>
    public enum Match : byte
    {
        Ours,
        NotAResponse,
        OtherQuestion,
    }

    /// <summary>The query packet for an A question with recursion desired; null when <paramref name="name"/> is
    /// not a DNS name (a label empty or over 63 octets, over 255 octets in all, or not ASCII).</summary>
    public static byte[]? Query(ushort id, string name)
    {
        int nameLength = name.Length + 2; // a length octet per label replaces each dot, plus the first and the root
        if (name.Length == 0 || nameLength > 255) return null;
        var packet = new byte[HeaderLength + nameLength + 4];
        BinaryPrimitives.WriteUInt16BigEndian(packet, id);
        packet[2] = 0x01; // RD (RFC 1035 §4.1.1): the server recurses for us
        packet[5] = 1;    // QDCOUNT
        int at = HeaderLength;
        int labelStart = 0;
        for (int i = 0; i <= name.Length; i++)
        {
            if (i < name.Length && name[i] != '.') continue;
            int length = i - labelStart;
            if (length is 0 or > 63) return null;
            packet[at++] = (byte)length;
            for (int c = labelStart; c < i; c++)
            {
                if (name[c] > 0x7E || name[c] <= 0x20) return null;
                packet[at++] = (byte)name[c];
            }
            labelStart = i + 1;
        }
        packet[at++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), TypeA);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at + 2), ClassIn);
        return packet;
    }

    /// <summary>The id of a packet of at least a header; -1 for a shorter one.</summary>
    public static int IdOf(ReadOnlySpan<byte> packet) => packet.Length < HeaderLength ? -1 : BinaryPrimitives.ReadUInt16BigEndian(packet);

    /// <summary>Whether <paramref name="response"/> answers <paramref name="query"/>: QR set, and the same
    /// question (names compared without case, RFC 4343).</summary>
    public static Match Matches(ReadOnlySpan<byte> query, ReadOnlySpan<byte> response)
    {
        if (response.Length < HeaderLength || (response[2] & 0x80) == 0) return Match.NotAResponse;
        ReadOnlySpan<byte> question = query[HeaderLength..];
        if (BinaryPrimitives.ReadUInt16BigEndian(response[4..]) != 1 || response.Length < HeaderLength + question.Length
            || !Ascii.EqualsIgnoreCase(response.Slice(HeaderLength, question.Length), question))
        {
            return Match.OtherQuestion;
        }
        return Match.Ours;
    }

    /// <summary>Reads a response already known to match its query.</summary>
    public static DnsAnswer Read(ReadOnlySpan<byte> response, int questionLength)
    {
        int rcode = response[3] & 0x0F;
        if ((response[2] & 0x02) != 0) return DnsAnswer.Failed(DnsResult.ServerFailure); // TC
        if (rcode != 0 && rcode != 3) return DnsAnswer.Failed(DnsResult.ServerFailure);  // SERVFAIL, REFUSED, ...
        int answers = BinaryPrimitives.ReadUInt16BigEndian(response[6..]);
        int authorities = BinaryPrimitives.ReadUInt16BigEndian(response[8..]);
        int at = HeaderLength + questionLength;
        Span<uint> found = stackalloc uint[MaxAddresses];
        int count = 0;
        uint ttl = uint.MaxValue;
        for (int r = 0; r < answers + authorities; r++)
        {
            if (!SkipName(response, ref at) || at + 10 > response.Length) return DnsAnswer.Failed(DnsResult.Malformed);
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(response[at..]);
            ushort cls = BinaryPrimitives.ReadUInt16BigEndian(response[(at + 2)..]);
            uint recordTtl = BinaryPrimitives.ReadUInt32BigEndian(response[(at + 4)..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(response[(at + 8)..]);
            at += 10;
            if (at + length > response.Length) return DnsAnswer.Failed(DnsResult.Malformed);
            if (recordTtl > int.MaxValue) recordTtl = 0; // RFC 2181 §8: a TTL with the top bit set is zero
            if (r < answers && type == TypeA && cls == ClassIn)
            {
                if (length != 4) return DnsAnswer.Failed(DnsResult.Malformed);
                if (count < MaxAddresses) found[count++] = BinaryPrimitives.ReadUInt32BigEndian(response[at..]);
                ttl = Math.Min(ttl, recordTtl);
            }
            else if (r >= answers && type == TypeSoa && length >= 20)
            {
                // RFC 2308 §5: a negative answer is cached for the lesser of the SOA's TTL and its MINIMUM field.
                ttl = Math.Min(ttl, Math.Min(recordTtl, BinaryPrimitives.ReadUInt32BigEndian(response[(at + length - 4)..])));
            }
            at += length;
        }
        TimeSpan keep = ttl == uint.MaxValue ? TimeSpan.Zero : TimeSpan.FromSeconds(ttl);
        if (rcode == 3) return new DnsAnswer(DnsResult.NoSuchName, [], keep);
        return new DnsAnswer(DnsResult.Answered, found[..count].ToArray(), keep);
    }

    // RFC 1035 §4.1.4: labels, ending in a zero octet or a pointer. A pointer ends the name here.
    private static bool SkipName(ReadOnlySpan<byte> packet, ref int at)
    {
        for (int labels = 0; labels < 128 && at < packet.Length; labels++)
        {
            byte length = packet[at];
            if (length == 0)
            {
                at++;
                return true;
            }
            if ((length & 0xC0) == 0xC0)
            {
                if (at + 2 > packet.Length) return false;
                int target = ((length & 0x3F) << 8) | packet[at + 1];
                if (target >= at) return false;
                at += 2;
                return true;
            }
            if ((length & 0xC0) != 0) return false; // 0x40 and 0x80 are reserved label types
            at += 1 + length;
        }
        return false;
    }
}
