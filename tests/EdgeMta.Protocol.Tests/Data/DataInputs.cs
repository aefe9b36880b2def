// Inputs for comparing the fast readers with the reference: realistic messages, CR/LF/dot soup, smuggling
// sequences dropped into text, lines about 1000 octets long, huge header sections. All from fixed seeds.
using System.Text;

namespace EdgeMta.Protocol.Tests.Data;

internal static class DataInputs
{
    public static readonly string[] Smuggling =
        ["\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r\n.\r", "\r\n.\rX", "\r\r\n.\r\n", "\r\n.\r\r\n", "\r\n..\r\n", "\n\r\n.\r\n"];

    private static readonly string[] Newlines = ["\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", "\n\r"];

    /// <summary>One input of each kind in turn, chosen by <paramref name="kind"/>; all end, or not, at random.</summary>
    public static byte[] Make(Random rng, int kind) => (kind % 6) switch
    {
        0 => Message(rng, bodyLines: rng.Next(0, 60), smuggle: false),
        1 => Message(rng, bodyLines: rng.Next(0, 60), smuggle: true),
        2 => Soup(rng, rng.Next(0, 400)),
        3 => DotLines(rng, rng.Next(1, 120)),
        4 => LongLines(rng),
        _ => HugeHeaders(rng),
    };

    /// <summary>Headers (Received: in several spellings, folded lines), an empty line, text with dot-stuffed lines.</summary>
    public static byte[] Message(Random rng, int bodyLines, bool smuggle)
    {
        var sb = new StringBuilder();
        string[] names = ["Received: from a by b", "received: x", "RECEIVED:y", "Received : not one", "Received", "Return-Path: <a@b>", "Subject: hi", "X-Received: no", ".Received: stuffed"];
        int headers = rng.Next(0, 12);
        for (int k = 0; k < headers; k++)
        {
            sb.Append(names[rng.Next(names.Length)]).Append("\r\n");
            if (rng.Next(4) == 0)
            {
                sb.Append(rng.Next(2) == 0 ? "\tReceived: continuation\r\n" : " by c\r\n");
            }
        }

        if (rng.Next(5) != 0)
        {
            sb.Append("\r\n");
        }

        for (int k = 0; k < bodyLines; k++)
        {
            int shape = rng.Next(20);
            string line = shape switch
            {
                0 => "..stuffed " + Words(rng, rng.Next(0, 60)),
                1 => "..",
                2 => "Received: in the body",
                3 => "",
                _ => Words(rng, rng.Next(0, 120)),
            };
            sb.Append(line);
            sb.Append(smuggle && rng.Next(6) == 0 ? DataInputs.Smuggling[rng.Next(DataInputs.Smuggling.Length)] : "\r\n");
        }

        AppendEnd(rng, sb);
        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    /// <summary>Octets drawn mostly from CR, LF, '.', and the letters of "received:".</summary>
    public static byte[] Soup(Random rng, int length)
    {
        const string alphabet = "\r\r\r\n\n\n...Received:x ";
        var sb = new StringBuilder();
        for (int k = 0; k < length; k++)
        {
            sb.Append(alphabet[rng.Next(alphabet.Length)]);
        }

        if (rng.Next(2) == 0)
        {
            AppendEnd(rng, sb);
        }

        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    /// <summary>Short lines made of dots, with every kind of newline between them.</summary>
    public static byte[] DotLines(Random rng, int lines)
    {
        string[] shapes = [".", "..", "...", ".x", "", "x", "x.", ". ", ".\r"];
        var sb = new StringBuilder();
        for (int k = 0; k < lines; k++)
        {
            sb.Append(shapes[rng.Next(shapes.Length)]).Append(Newlines[rng.Next(Newlines.Length)]);
        }

        if (rng.Next(3) != 0)
        {
            AppendEnd(rng, sb);
        }

        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    /// <summary>Lines of 990-1010 octets and a few of several thousand, some dot-stuffed.</summary>
    public static byte[] LongLines(Random rng)
    {
        var sb = new StringBuilder("Subject: long\r\n\r\n");
        int lines = rng.Next(1, 8);
        for (int k = 0; k < lines; k++)
        {
            int length = rng.Next(4) == 0 ? rng.Next(1500, 5000) : rng.Next(990 - 2, 1010 - 2);
            sb.Append(rng.Next(3) == 0 ? "." : "").Append('y', length).Append(Newlines[rng.Next(Newlines.Length)]);
        }

        AppendEnd(rng, sb);
        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    /// <summary>About 100-160 header lines, most of them Received:, some folded, then a short body.</summary>
    public static byte[] HugeHeaders(Random rng)
    {
        var sb = new StringBuilder();
        int lines = rng.Next(100, 160);
        for (int k = 0; k < lines; k++)
        {
            sb.Append(rng.Next(5) switch
            {
                0 => "DKIM-Signature: v=1; a=rsa-sha256",
                1 => "\tby relay.example with ESMTP id " + k,
                2 => "rEcEiVeD: from h" + k,
                _ => "Received: from mx" + k + ".example.org (mx.example.org [192.0.2.1]) by edge (EdgeMta)",
            }).Append("\r\n");
        }

        sb.Append("\r\nReceived: after the headers\r\nbody\r\n");
        AppendEnd(rng, sb);
        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    private static void AppendEnd(Random rng, StringBuilder sb)
    {
        sb.Append(rng.Next(4) switch
        {
            0 => ".\r\n",      // right after the last line (or the very start)
            1 => ".\r\nQUIT\r\n",
            2 => "\r\n.\r\nRSET\r\n.\r\n",
            _ => rng.Next(2) == 0 ? "" : "\r\n.\r\n",
        });
    }

    private static string Words(Random rng, int length)
    {
        var sb = new StringBuilder(length);
        for (int k = 0; k < length; k++)
        {
            sb.Append(rng.Next(7) == 0 ? ' ' : (char)('a' + rng.Next(26)));
        }

        return sb.ToString();
    }
}
