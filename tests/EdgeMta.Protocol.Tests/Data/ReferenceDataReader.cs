// The slow, obvious reading of PROTOCOL.md "Message data rules" that the fast readers are checked against.
// It works on the whole input at once and line by line (a line ends at a CRLF the client sent), so it
// shares no structure with DataReader's streaming state machine or its bit masks.
using System.Text;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol.Tests.Data;

/// <summary>Everything a reader reports about one message, for comparing two readers.</summary>
internal sealed record DataOutcome(
    string Output, DataStatus Status, int Consumed, long Size, bool OverSize, bool SawBareNewline, int ReceivedHeaderCount, int LongLineCount)
{
    public static string Text(IEnumerable<byte> octets) => Encoding.Latin1.GetString(octets.ToArray());
}

internal static class ReferenceDataReader
{
    /// <summary>What a correct DATA reader reports after being given all of <paramref name="input"/>.</summary>
    public static DataOutcome Read(byte[] input, long maxMessageSize, BareNewlinePolicy policy)
    {
        bool normalize = policy == BareNewlinePolicy.Normalize;
        var text = new List<byte>();
        bool inHeaders = true;
        bool sawBare = false;
        int received = 0;
        int longLines = 0;
        int pos = 0;
        while (true)
        {
            int cr = FindCrLf(input, pos);
            if (cr < 0)
            {
                // The line so far, with no CRLF yet: what a streaming reader has passed on of it.
                byte[] partial = input[pos..];
                if (!(partial.Length == 2 && partial[0] == '.' && partial[1] == '\r'))
                {
                    byte[] content = partial.Length > 0 && partial[0] == '.' ? partial[1..] : partial;
                    for (int k = 0; k < content.Length; k++)
                    {
                        bool trailingCr = k == content.Length - 1 && content[k] == '\r'; // its LF may still come
                        sawBare |= IsNewline(content[k]) && !trailingCr;
                        Append(text, content[k], normalize && !trailingCr);
                    }

                    if (inHeaders && StartsWithReceived(content))
                    {
                        received++;
                    }
                }

                return Finish(DataStatus.NeedMore, input.Length);
            }

            byte[] line = input[pos..(cr + 2)];
            byte[] body = input[pos..cr];
            if (body.Length == 1 && body[0] == '.')
            {
                return Finish(DataStatus.Complete, cr + 2);
            }

            if (line.Length > 1000)
            {
                longLines++;
            }

            byte[] unstuffed = body.Length > 0 && body[0] == '.' ? body[1..] : body;
            if (inHeaders)
            {
                if (body.Length == 0)
                {
                    inHeaders = false;
                }
                else if (StartsWithReceived(unstuffed))
                {
                    received++;
                }
            }

            foreach (byte b in unstuffed)
            {
                sawBare |= IsNewline(b); // inside a line every CR and LF is bare
                Append(text, b, normalize);
            }

            text.Add((byte)'\r');
            text.Add((byte)'\n');
            pos = cr + 2;
        }

        DataOutcome Finish(DataStatus status, int consumed)
        {
            long size = text.Count;
            var sent = text.Take((int)Math.Min(size, maxMessageSize));
            return new DataOutcome(DataOutcome.Text(sent), status, consumed, size, size > maxMessageSize, sawBare, received, longLines);
        }
    }

    /// <summary>What a correct BDAT reader reports after the given chunks (the whole of each is read).</summary>
    public static DataOutcome ReadBdat(byte[] message, long maxMessageSize)
    {
        int received = 0;
        int pos = 0;
        while (pos < message.Length)
        {
            int cr = FindCrLf(message, pos);
            byte[] line = cr < 0 ? message[pos..] : message[pos..cr];
            if (cr >= 0 && line.Length == 0)
            {
                break;
            }

            if (StartsWithReceived(line))
            {
                received++;
            }

            if (cr < 0)
            {
                break;
            }

            pos = cr + 2;
        }

        var sent = message.Take((int)Math.Min(message.Length, maxMessageSize));
        return new DataOutcome(DataOutcome.Text(sent), DataStatus.Complete, message.Length, message.Length, message.Length > maxMessageSize, false, received, 0);
    }

    private static bool IsNewline(byte b) => b == '\r' || b == '\n';

    private static void Append(List<byte> text, byte b, bool normalize)
    {
        if (normalize && IsNewline(b))
        {
            text.Add((byte)'\r');
            text.Add((byte)'\n');
        }
        else
        {
            text.Add(b);
        }
    }

    private static int FindCrLf(byte[] input, int from)
    {
        for (int k = from; k + 1 < input.Length; k++)
        {
            if (input[k] == '\r' && input[k + 1] == '\n')
            {
                return k;
            }
        }

        return -1;
    }

    private static bool StartsWithReceived(byte[] line)
    {
        const string name = "received:";
        if (line.Length < name.Length)
        {
            return false;
        }

        for (int k = 0; k < name.Length; k++)
        {
            int c = line[k] is >= (byte)'A' and <= (byte)'Z' ? line[k] + 32 : line[k];
            if (c != name[k])
            {
                return false;
            }
        }

        return true;
    }
}
