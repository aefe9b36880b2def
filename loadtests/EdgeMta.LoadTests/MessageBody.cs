using System.Text;

namespace EdgeMta.LoadTests;

/// <summary>
/// Preformatted bytes: the command lines a session writes and the message contents, built once per run
/// and shared read-only by every session, so the hot path only copies or sends existing arrays.
/// A message of size N is exactly N octets of RFC 5322 text (headers, blank line, 76-column body lines,
/// the final CRLF) followed by the end-of-data ".\r\n" (RFC 5321 §4.1.1.4). No body line starts with
/// '.', so no dot-stuffing is needed, and N is what the server stores before adding its trace header.
/// </summary>
public sealed class MessageBody
{
    public const int MinimumSize = 128;

    public MessageBody(string helo, string from, string to, IReadOnlyList<int> sizes)
    {
        Ehlo = Encoding.ASCII.GetBytes($"EHLO {helo}\r\n");
        Mail = Encoding.ASCII.GetBytes($"MAIL FROM:<{from}>\r\n");
        Rcpt = Encoding.ASCII.GetBytes($"RCPT TO:<{to}>\r\n");
        Envelope = [.. Mail, .. Rcpt, .. Data];
        Contents = new byte[sizes.Count][];
        for (int i = 0; i < sizes.Count; i++) Contents[i] = Build(from, to, sizes[i]);
    }

    public byte[] Ehlo { get; }
    public byte[] Mail { get; }
    public byte[] Rcpt { get; }
    public static byte[] Data { get; } = "DATA\r\n"u8.ToArray();
    public static byte[] Rset { get; } = "RSET\r\n"u8.ToArray();
    public static byte[] Quit { get; } = "QUIT\r\n"u8.ToArray();
    public static byte[] LoneDot { get; } = ".\r\n"u8.ToArray();
    /// <summary>MAIL, RCPT and DATA in one write: a pipelined group (RFC 2920 §3.1).</summary>
    public byte[] Envelope { get; }
    /// <summary>Per size-mix entry: the message and its terminating ".\r\n".</summary>
    public byte[][] Contents { get; }

    /// <summary>Contents length without the ".\r\n" terminator: the message size.</summary>
    public int SizeOf(int entry) => Contents[entry].Length - 3;

    public static byte[] Build(string from, string to, int size)
    {
        if (size < MinimumSize) throw new ArgumentOutOfRangeException(nameof(size));
        var headers = Encoding.ASCII.GetBytes(
            $"From: <{from}>\r\nTo: <{to}>\r\nSubject: edgemta-load {size}\r\n" +
            $"Message-ID: <load-{size}@edgemta.test>\r\n\r\n");
        byte[] result = new byte[size + 3];
        headers.AsSpan().CopyTo(result);
        int pos = headers.Length;
        int end = size;                       // the message proper ends with CRLF at [size-2, size)
        int column = 0;
        while (pos < end - 2)
        {
            if (column == 76) { result[pos++] = (byte)'\r'; if (pos < end - 2) result[pos++] = (byte)'\n'; else break; column = 0; continue; }
            result[pos++] = (byte)('a' + (pos % 26));
            column++;
        }
        // pos may sit right after a CR of a line break (then the LF position must become a letter).
        if (pos > 0 && result[pos - 1] == (byte)'\r') result[pos - 1] = (byte)'x';
        result[end - 2] = (byte)'\r';
        result[end - 1] = (byte)'\n';
        result[end] = (byte)'.';
        result[end + 1] = (byte)'\r';
        result[end + 2] = (byte)'\n';
        return result;
    }
}
