// Contract: builds notices with a fixed clock and Message-ID and reads them back with MimeSplitter, so each
// bounce test states only its inputs and what it expects. Every notice it reads is first checked for CRLF
// line ends and line length.

using System.Buffers;
using System.Text;
using EdgeMta.TestKit;

namespace EdgeMta.Delivery.Tests;

internal sealed record ReadNotice(
    MimeEntity Top, string Boundary, MimeEntity Words, MimeEntity Report, MimeEntity Returned, byte[] Raw)
{
    /// <summary>The report's field groups: the per-message group first, then one per recipient (RFC 3464 §2.1).</summary>
    public List<List<KeyValuePair<string, string>>> Groups
    {
        get
        {
            var groups = new List<List<KeyValuePair<string, string>>>();
            foreach (string block in Report.BodyText.Split("\r\n\r\n"))
            {
                groups.Add(MimeSplitter.Fields(block));
            }

            return groups;
        }
    }
}

internal static class BounceHarness
{
    public const string Host = "mx.example.net";
    public const string MessageId = "20261206.1@mx.example.net";
    public static readonly DateTimeOffset Now = new(2026, 12, 6, 20, 34, 41, TimeSpan.Zero);
    public static readonly DateTimeOffset Arrival = new(2026, 12, 5, 9, 5, 0, TimeSpan.FromHours(-5));

    public static BounceEnvelope Envelope(
        DsnReturn ret = DsnReturn.Unspecified, string? envid = null, bool utf8 = false, string sender = "alice@example.org")
        => new(sender, envid, ret, utf8, Arrival);

    public static BounceRecipient Failed(
        string rcpt = "bob@example.com", string? orcpt = null, string? reply = "550 5.1.1 <bob@example.com>: no such user")
        => new(rcpt, orcpt, DsnAction.Failed, "5.1.1", "relay.example.net", reply, Now.AddMinutes(-1));

    public static byte[] Message(int bodyBytes)
    {
        var text = new StringBuilder("From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\n");
        while (text.Length < bodyBytes - 2)
        {
            text.Append('x', Math.Min(70, bodyBytes - 2 - text.Length)).Append("\r\n");
        }

        byte[] bytes = Encoding.ASCII.GetBytes(text.ToString());
        Assert.Equal(bodyBytes, bytes.Length);
        return bytes;
    }

    public static bool TryCompose(
        BounceEnvelope envelope, byte[] message, BounceRecipient[] recipients, out byte[] notice, out string? error,
        string messageId = MessageId)
    {
        var composer = new BounceComposer(Host, new FakeClock(Now), () => messageId);
        var output = new ArrayBufferWriter<byte>();
        bool ok = composer.TryWrite(envelope, message, recipients, output, out error);
        notice = output.WrittenSpan.ToArray();
        return ok;
    }

    public static ReadNotice Compose(BounceEnvelope envelope, byte[] message, params BounceRecipient[] recipients)
    {
        Assert.True(TryCompose(envelope, message, recipients, out byte[] notice, out string? error), error);
        Assert.Null(error);
        MimeSplitter.AssertLines(notice);
        MimeEntity top = MimeSplitter.Parse(notice);
        string boundary = MimeSplitter.Boundary(top.Field("Content-Type")!);
        List<byte[]> parts = MimeSplitter.Parts(top.Body, boundary);
        Assert.Equal(3, parts.Count);
        return new ReadNotice(
            top, boundary, MimeSplitter.Parse(parts[0]), MimeSplitter.Parse(parts[1]), MimeSplitter.Parse(parts[2]),
            notice);
    }

    public static string? Value(List<KeyValuePair<string, string>> group, string name)
    {
        string? found = null;
        foreach (KeyValuePair<string, string> f in group)
        {
            if (string.Equals(f.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                Assert.Null(found);
                found = f.Value;
            }
        }

        return found;
    }
}
