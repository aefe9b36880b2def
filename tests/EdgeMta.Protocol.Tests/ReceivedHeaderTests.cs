// The Received: trace header (RFC 5321 §4.4): fields, sanitised HELO, date from the clock.
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class ReceivedHeaderTests
{
    private static string Header(Action<Envelope> setup)
    {
        var e = new Envelope();
        setup(e);
        var buffer = new byte[ReceivedHeader.MaxLength];
        int n = ReceivedHeader.Write(buffer, e, "foo.com"u8, "Q00000001"u8, FixedClock.Instant);
        return Encoding.Latin1.GetString(buffer, 0, n);
    }

    [Fact]
    public void TheHeaderNamesHeloClientHostProtocolIdRecipientAndDate()
    {
        string h = Header(e =>
        {
            e.SetClient("192.0.2.1"u8);
            e.SetHelo("bar.com"u8, extended: true);
            e.BeginTransaction("Smith@bar.com"u8, default, new MailParameters { DeclaredSize = -1 });
            e.AddRecipient("Jones@foo.com"u8, default);
        });
        Assert.Equal("Received: from bar.com ([192.0.2.1])\r\n\tby foo.com with ESMTP id Q00000001\r\n\tfor <Jones@foo.com>; Sun, 22 Nov 2026 07:30:15 +0000\r\n", h);
    }

    [Fact]
    public void AnIpv6ClientIsAnIpv6AddressLiteralAndSeveralRecipientsAreNotNamed()
    {
        string h = Header(e =>
        {
            e.SetClient("2001:db8::1"u8);
            e.SetHelo("bar.com"u8, extended: false);
            e.BeginTransaction("a@b.c"u8, default, new MailParameters { DeclaredSize = -1, SmtpUtf8 = true });
            e.AddRecipient("x@foo.com"u8, default);
            e.AddRecipient("y@foo.com"u8, default);
        });
        Assert.StartsWith("Received: from bar.com ([IPv6:2001:db8::1])\r\n\tby foo.com with UTF8SMTP id Q00000001; ", h);
    }

    [Theory]
    [InlineData(false, "UTF8SMTP")]
    [InlineData(true, "UTF8SMTPS")]
    public void SmtpUtf8OverEhloIsTheRegisteredKeywordNotUtf8Esmtp(bool tls, string with)
    {
        // Audit finding: it wrote UTF8ESMTP and UTF8ESMTPS, which RFC 6531 §3.7.3 does not register.
        string h = Header(e =>
        {
            e.SetClient("192.0.2.1"u8);
            e.SetHelo("bar.com"u8, extended: true);
            e.Tls = tls;
            e.BeginTransaction("a@b.c"u8, default, new MailParameters { DeclaredSize = -1, SmtpUtf8 = true });
        });
        Assert.Contains($"\tby foo.com with {with} id ", h);
    }

    [Fact]
    public void ControlCharactersInTheHeloNameCannotBreakTheHeader()
    {
        string h = Header(e =>
        {
            e.SetClient("192.0.2.1"u8);
            e.SetHelo("evil\rBcc: x\n\u0001\u007f"u8.ToArray(), extended: true);
        });
        Assert.StartsWith("Received: from evil?Bcc: x??? ([192.0.2.1])\r\n", h);
        Assert.Equal(2, h.Split("\r\n").Length - 1); // two folded lines, no "for" without a recipient
        foreach (char c in h.Replace("\r\n\t", "").TrimEnd('\n').TrimEnd('\r'))
        {
            Assert.True(c >= 0x20 && c < 0x7F, $"control {(int)c}");
        }
    }

    [Fact]
    public void TheLongestHeaderFitsTheBuffer()
    {
        string h = Header(e =>
        {
            e.SetClient(Encoding.ASCII.GetBytes("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"));
            e.SetHelo(Encoding.ASCII.GetBytes(new string('h', 255)), extended: true);
            e.BeginTransaction("a@b.c"u8, default, new MailParameters { DeclaredSize = -1, SmtpUtf8 = true });
            e.AddRecipient(Encoding.ASCII.GetBytes(new string('r', 254)), default);
        });
        Assert.True(h.Length < ReceivedHeader.MaxLength);
    }
}
