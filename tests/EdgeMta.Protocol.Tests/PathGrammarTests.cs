// RFC 5321 §4.1.2 paths and RFC 6531 UTF-8: what is accepted, where the mailbox is, and why a path is refused.
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class PathGrammarTests
{
    [Theory]
    [InlineData("<Smith@bar.com>", "Smith@bar.com")]
    [InlineData("<@foo.com:Jones@XYZ.COM>", "Jones@XYZ.COM")]
    [InlineData("<@a.org,@b.org:user@c.org>", "user@c.org")]
    [InlineData("<\"john smith\"@example.com>", "\"john smith\"@example.com")]
    [InlineData("<\"a\\\"b\"@example.com>", "\"a\\\"b\"@example.com")]
    [InlineData("<first.last+tag@example.com>", "first.last+tag@example.com")]
    [InlineData("<!#$%&'*+-/=?^_`{|}~@example.com>", "!#$%&'*+-/=?^_`{|}~@example.com")]
    [InlineData("<user@[192.0.2.1]>", "user@[192.0.2.1]")]
    [InlineData("<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]")]
    [InlineData("<user@[IPv6:::ffff:192.0.2.1]>", "user@[IPv6:::ffff:192.0.2.1]")]
    [InlineData("<user@[IPv6:1:2:3:4:5:6::]>", "user@[IPv6:1:2:3:4:5:6::]")]
    [InlineData("<user@[IPv6:1:2:3:4::192.0.2.1]>", "user@[IPv6:1:2:3:4::192.0.2.1]")]
    [InlineData("<user@[IPv6:1:2:3:4:5:6:7:8]>", "user@[IPv6:1:2:3:4:5:6:7:8]")]
    [InlineData("<user@[x-tag:anything]>", "user@[x-tag:anything]")]
    [InlineData("<a@b-c.d1>", "a@b-c.d1")]
    public void AValidForwardPathGivesItsMailboxWithoutBracketsOrRoute(string path, string mailbox)
    {
        byte[] s = Encoding.UTF8.GetBytes(path);
        Assert.Equal(ParseStatus.Complete, PathGrammar.TryParseForwardPath(s, out ParsedPath p, out PathError e));
        Assert.Equal(PathError.None, e);
        Assert.Equal(mailbox, Encoding.UTF8.GetString(s, p.MailboxStart, p.MailboxLength));
        Assert.Equal(s.Length, p.End);
        Assert.Equal(path.StartsWith("<@"), p.HasSourceRoute);
        Assert.Equal(mailbox.LastIndexOf('@'), p.AtIndex);
    }

    [Fact]
    public void TheNullReversePathIsAcceptedForMailAndRefusedForRcpt()
    {
        Assert.Equal(ParseStatus.Complete, PathGrammar.TryParseReversePath("<>"u8, out ParsedPath p, out _));
        Assert.True(p.IsNull);
        Assert.Equal(2, p.End);
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseForwardPath("<>"u8, out _, out PathError e));
        Assert.Equal(PathError.NullPath, e);
    }

    [Theory]
    [InlineData("<Postmaster>")]
    [InlineData("<postmaster>")]
    [InlineData("<POSTMASTER>")]
    public void ABarePostmasterIsAValidForwardPathButNotAReversePath(string path)
    {
        byte[] s = Encoding.ASCII.GetBytes(path);
        Assert.Equal(ParseStatus.Complete, PathGrammar.TryParseForwardPath(s, out ParsedPath p, out _));
        Assert.Equal(-1, p.AtIndex);
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseReversePath(s, out _, out _));
    }

    [Theory]
    [InlineData("Smith@bar.com")]
    [InlineData("<Smith@bar.com")]
    [InlineData("<Smith>")]
    [InlineData("<@bar.com>")]
    [InlineData("<Smith@>")]
    [InlineData("<.Smith@bar.com>")]
    [InlineData("<Smith.@bar.com>")]
    [InlineData("<Sm..ith@bar.com>")]
    [InlineData("<Smith@bar..com>")]
    [InlineData("<Smith@-bar.com>")]
    [InlineData("<Smith@bar-.com>")]
    [InlineData("<Smith@bar.com.>")]
    [InlineData("<Sm ith@bar.com>")]
    [InlineData("<Sm\rith@bar.com>")]
    [InlineData("<\"unterminated@bar.com>")]
    [InlineData("<\"a\"b@bar.com>")]
    [InlineData("<a@b@c.com>")]
    [InlineData("<a@[192.0.2.256]>")]
    [InlineData("<a@[192.0.2]>")]
    [InlineData("<a@[1.2.3.4.5]>")]
    [InlineData("<a@[IPv6:2001:db8::g]>")]
    [InlineData("<a@[IPv6:fe80::1%eth0]>")]
    [InlineData("<a@[IPv6:1:2:3:4:5:6:7::]>")]          // RFC 5321 §4.1.3: "::" is at least two groups
    [InlineData("<a@[IPv6:1::2:3:4:5:6:7]>")]
    [InlineData("<a@[IPv6:1:2:3:4:5::192.0.2.1]>")]
    [InlineData("<a@[]>")]
    [InlineData("<@a.org:>")]
    [InlineData("<@a.org,b.org:u@c.org>")]
    [InlineData("<@a.org;u@c.org>")]
    [InlineData("<a@b.com>>")]
    [InlineData("<>")]
    [InlineData("")]
    public void AMalformedPathIsASyntaxError(string path)
    {
        byte[] s = Encoding.Latin1.GetBytes(path);
        ParseStatus status = PathGrammar.TryParseForwardPath(s, out ParsedPath p, out PathError e);
        bool trailing = status == ParseStatus.Complete && p.End != s.Length;
        Assert.True(status == ParseStatus.Error || trailing, path);
        if (status == ParseStatus.Error && path != "<>")
        {
            Assert.Equal(PathError.Syntax, e);
        }
    }

    [Fact]
    public void ALocalPartOf64OctetsIsAcceptedAnd65IsNotAllowed()
    {
        Assert.Equal(ParseStatus.Complete, PathGrammar.TryParseForwardPath(Encoding.ASCII.GetBytes($"<{new string('a', 64)}@b.com>"), out _, out _));
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseForwardPath(Encoding.ASCII.GetBytes($"<{new string('a', 65)}@b.com>"), out _, out PathError e));
        Assert.Equal(PathError.NameTooLong, e);
    }

    [Fact]
    public void APathOver256OctetsIsTooLong()
    {
        string domain = string.Join('.', Enumerable.Repeat(new string('d', 60), 4)); // 243 octets
        string ok = $"<{new string('a', 10)}@{domain}>"; // 1 + 10 + 1 + 243 + 1 = 256
        Assert.Equal(256, ok.Length);
        Assert.Equal(ParseStatus.Complete, PathGrammar.TryParseForwardPath(Encoding.ASCII.GetBytes(ok), out _, out _));
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseForwardPath(Encoding.ASCII.GetBytes($"<{new string('a', 11)}@{domain}>"), out _, out PathError e));
        Assert.Equal(PathError.PathTooLong, e);
    }

    [Fact]
    public void ALabelOver63OctetsIsRefused()
    {
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseForwardPath(Encoding.ASCII.GetBytes($"<a@{new string('d', 64)}.com>"), out _, out _));
    }

    [Theory]
    [InlineData("<用户@例子.广告>")]
    [InlineData("<josé@example.com>")]
    [InlineData("<\"josé\"@example.com>")]
    [InlineData("<user@bücher.de>")]
    public void AUtf8AddressIsValidAndFlaggedForSmtpUtf8(string path)
    {
        Assert.Equal(ParseStatus.Complete, PathGrammar.TryParseForwardPath(Encoding.UTF8.GetBytes(path), out ParsedPath p, out _));
        Assert.True(p.HasUtf8);
    }

    [Fact]
    public void InvalidUtf8InAnAddressIsASyntaxError()
    {
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseForwardPath([(byte)'<', 0xC3, 0x28, (byte)'@', (byte)'b', (byte)'.', (byte)'c', (byte)'>'], out _, out _));
        Assert.Equal(ParseStatus.Error, PathGrammar.TryParseForwardPath([(byte)'<', 0xFF, (byte)'@', (byte)'b', (byte)'>'], out _, out _));
    }

    [Fact]
    public void RandomBytesNeverThrowAndAnAcceptedPathAlwaysMatchesARegexReference()
    {
        // The reference: RFC 5321 §4.1.2 for ASCII dot-string mailboxes, written as a regular expression.
        var reference = new System.Text.RegularExpressions.Regex(
            @"^<(@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?:,@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)*:)?[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*>$");
        var random = new Random(5321);
        string[] pieces = ["<", ">", "@", ".", ",", ":", "a", "b", "-", "x.y", "@c.d", "\"", " ", "[", "]", "1", "!", "\r"];
        for (int i = 0; i < 20000; i++)
        {
            var sb = new StringBuilder();
            int n = random.Next(1, 14);
            for (int k = 0; k < n; k++)
            {
                sb.Append(pieces[random.Next(pieces.Length)]);
            }
            string s = sb.ToString();
            byte[] bytes = Encoding.ASCII.GetBytes(s);
            bool fast = PathGrammar.TryParseForwardPath(bytes, out ParsedPath p, out _) == ParseStatus.Complete && p.End == bytes.Length;
            if (!s.Contains('"') && !s.Contains('['))
            {
                Assert.True(reference.IsMatch(s) == fast, $"'{s}' fast={fast}");
            }
        }
    }
}
