// Contract: the head of one `POST /checkv2` (rspamd's HTTP protocol, https://rspamd.com/doc/developers/protocol.html;
// docs/SCREENING.md "Content check by rspamd"): the request line, Host, `Connection: close` (one request per
// connection: RspamdReplyReader reads no keep-alive), Content-Length of the message, then rspamd's own fields:
// `Pass: all` (run every rule, none skipped as "already seen"), IP, Helo, From, one Rcpt per recipient,
// Queue-Id, and TLS-Version / TLS-Cipher when the session is under TLS and the transport can say which.
// Hostname (the client's name from DNS) is sent only when known; EdgeMta resolves none today, so it is absent,
// and rspamd then does its own lookup.
// Values come from the session's envelope, already checked by the protocol (paths and HELO hold no CR, LF or
// controls); a control octet here would still split the head, so any is written as a space. The null reverse
// path is sent as "<>", which rspamd reads as the empty sender.
// How it fails: never; the head is written into a buffer sized by MaxLength first.
using System.Buffers.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Server.Rspamd;

internal static class RspamdRequest
{
    /// <summary>Room the head of this request takes at most: the fixed text (under 200 octets, 512 kept), each
    /// field name with its CRLF (under 16 octets, 16 kept), and the values as they are.</summary>
    public static int MaxLength(Envelope envelope, int hostLength, int pathLength, int queueIdLength, int tlsLength)
    {
        int n = 512 + hostLength + pathLength + queueIdLength + tlsLength + 8 * 16
            + envelope.ClientAddress.Length + envelope.HeloName.Length + envelope.ReversePath.Length + 2;
        for (int i = 0; i < envelope.RecipientCount; i++) n += 16 + envelope.GetForwardPath(i).Length;
        return n;
    }

    public static int Write(Span<byte> dest, ReadOnlySpan<byte> host, ReadOnlySpan<byte> path, Envelope envelope, ReadOnlySpan<byte> queueId,
        long contentLength, ReadOnlySpan<byte> tlsVersion, ReadOnlySpan<byte> tlsCipher)
    {
        int n = 0;
        Put(dest, ref n, "POST "u8);
        Put(dest, ref n, path);
        Put(dest, ref n, " HTTP/1.1\r\nHost: "u8);
        Put(dest, ref n, host);
        Put(dest, ref n, "\r\nConnection: close\r\nContent-Length: "u8);
        Utf8Formatter.TryFormat(contentLength, dest[n..], out int digits);
        n += digits;
        Put(dest, ref n, "\r\nPass: all\r\n"u8);
        Field(dest, ref n, "IP: "u8, envelope.ClientAddress);
        if (!envelope.HeloName.IsEmpty) Field(dest, ref n, "Helo: "u8, envelope.HeloName);
        Field(dest, ref n, "From: "u8, envelope.ReversePath.IsEmpty ? "<>"u8 : envelope.ReversePath);
        for (int i = 0; i < envelope.RecipientCount; i++) Field(dest, ref n, "Rcpt: "u8, envelope.GetForwardPath(i));
        Field(dest, ref n, "Queue-Id: "u8, queueId);
        if (!tlsVersion.IsEmpty) Field(dest, ref n, "TLS-Version: "u8, tlsVersion);
        if (!tlsCipher.IsEmpty) Field(dest, ref n, "TLS-Cipher: "u8, tlsCipher);
        Put(dest, ref n, "\r\n"u8);
        return n;
    }

    private static void Field(Span<byte> dest, ref int n, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Put(dest, ref n, name);
        Span<byte> to = dest[n..];
        for (int i = 0; i < value.Length; i++) to[i] = value[i] < 0x20 || value[i] == 0x7F ? (byte)' ' : value[i];
        n += value.Length;
        Put(dest, ref n, "\r\n"u8);
    }

    private static void Put(Span<byte> dest, ref int n, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(dest[n..]);
        n += bytes.Length;
    }
}
