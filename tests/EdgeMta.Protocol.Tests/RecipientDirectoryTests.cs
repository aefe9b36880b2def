// The recipient directory of PROTOCOL.md: file format, verdicts, VRFY/EXPN lookups, sink mode.
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public class RecipientDirectoryTests
{
    private static RecipientVerdict Look(RecipientDirectory d, string mailbox, out string target)
    {
        byte[] b = Encoding.UTF8.GetBytes(mailbox);
        RecipientVerdict v = d.Lookup(b, mailbox.LastIndexOf('@'), out ReadOnlySpan<byte> t);
        target = Encoding.UTF8.GetString(t);
        return v;
    }

    [Theory]
    [InlineData("Jones@foo.com", RecipientVerdict.Accept)]
    [InlineData("JONES@FOO.COM", RecipientVerdict.Accept)]
    [InlineData("admin.mrc@Foo.Com", RecipientVerdict.Accept)]
    [InlineData("staff@foo.com", RecipientVerdict.Accept)]
    [InlineData("Green@foo.com", RecipientVerdict.Unknown)]
    [InlineData("anyone@bar.org", RecipientVerdict.Accept)]
    [InlineData("Jones@elsewhere.org", RecipientVerdict.RelayDenied)]
    [InlineData("postmaster@foo.com", RecipientVerdict.Accept)]
    [InlineData("Postmaster", RecipientVerdict.Accept)]
    [InlineData("old@foo.com", RecipientVerdict.Moved)]
    [InlineData("fwd@foo.com", RecipientVerdict.Forward)]
    [InlineData("\"Jones\"@foo.com", RecipientVerdict.Accept)]          // audit finding: quoting it needs not is the same mailbox
    [InlineData("\"admin.mrc\"@foo.com", RecipientVerdict.Accept)]
    [InlineData("\"Jo\\nes\"@foo.com", RecipientVerdict.Accept)]        // a quoted-pair of an atext octet
    [InlineData("\"\"@foo.com", RecipientVerdict.Unknown)]
    [InlineData("\"Jo nes\"@foo.com", RecipientVerdict.Unknown)]       // a space: only the quoted form names it
    [InlineData("\"Jones.\"@foo.com", RecipientVerdict.Unknown)]
    [InlineData("\"old\"@foo.com", RecipientVerdict.Moved)]
    [InlineData("\"postmaster\"@foo.com", RecipientVerdict.Accept)]
    public void LookupGivesEachAddressItsVerdict(string mailbox, RecipientVerdict verdict)
    {
        Assert.Equal(verdict, Look(TestDirectories.Seed, mailbox, out _));
    }

    [Fact]
    public void MovedAndForwardEntriesGiveTheirTarget()
    {
        Look(TestDirectories.Seed, "old@foo.com", out string moved);
        Look(TestDirectories.Seed, "fwd@foo.com", out string forward);
        Assert.Equal("new@elsewhere.org", moved);
        Assert.Equal("x@elsewhere.org", forward);
    }

    [Fact]
    public void WithNoEntriesAndNoDomainsEveryRecipientIsAccepted()
    {
        RecipientDirectory sink = RecipientDirectory.Parse("# nothing here\n\n");
        Assert.True(sink.IsSink);
        Assert.Equal(RecipientVerdict.Accept, Look(sink, "anyone@anywhere.example", out _));
    }

    [Fact]
    public void ADomainGivenOnlyAsAnExtraDomainTakesAnyLocalPart()
    {
        RecipientDirectory d = RecipientDirectory.Parse("jones@foo.com\n", ["extra.org", "foo.com"]);
        Assert.False(d.IsSink);
        Assert.Equal(RecipientVerdict.Accept, Look(d, "whoever@extra.org", out _));
        Assert.Equal(RecipientVerdict.Unknown, Look(d, "whoever@foo.com", out _));
        Assert.Equal(RecipientVerdict.RelayDenied, Look(d, "whoever@other.org", out _));
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("a@b@c")]
    [InlineData("user@")]
    [InlineData("@bar.org extra words")]
    [InlineData("a@foo.com moved:")]
    [InlineData("a@foo.com list:")]
    [InlineData("a@foo.com list: notanaddress")]
    [InlineData("a@foo.com\nA@FOO.COM")]
    public void AMalformedFileIsAFormatErrorNamingTheLine(string text)
    {
        var e = Assert.Throws<FormatException>(() => RecipientDirectory.Parse(text));
        Assert.Contains("line", e.Message);
    }

    [Fact]
    public void CommentsAndBlankLinesAreIgnored()
    {
        RecipientDirectory d = RecipientDirectory.Parse("# header\n\n  jones@foo.com   # the one\n");
        Assert.Equal(1, d.EntryCount);
    }

    [Fact]
    public void VerifyFindsByNameWordLocalPartOrAddress()
    {
        foreach (string q in new[] { "Crispin", "Mark", "mark crispin", "Admin.MRC", "<admin.mrc@foo.com>", "Admin.MRC@foo.com" })
        {
            Assert.Equal(DirectoryMatch.One, TestDirectories.Seed.Verify(Encoding.ASCII.GetBytes(q), out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> address));
            Assert.Equal("Mark Crispin", Encoding.ASCII.GetString(name));
            Assert.Equal("Admin.MRC@foo.com", Encoding.ASCII.GetString(address));
        }
        Assert.Equal(DirectoryMatch.None, TestDirectories.Seed.Verify("Green"u8, out _, out _));
        Assert.Equal(DirectoryMatch.Ambiguous, TestDirectories.Seed.Verify("Jones"u8, out _, out _)); // Jones@foo.com and Jones@XYZ.COM
    }

    [Fact]
    public void ExpandListsTheMembersOfAList()
    {
        Assert.Equal(DirectoryMatch.One, TestDirectories.Seed.Expand("staff"u8, out bool isList, out int list, out int count));
        Assert.True(isList);
        Assert.Equal(2, count);
        Assert.Equal("Jones@foo.com", Encoding.ASCII.GetString(TestDirectories.Seed.ListMember(list, 0, out ReadOnlySpan<byte> n0)));
        Assert.True(n0.IsEmpty);
        Assert.Equal("Admin.MRC@foo.com", Encoding.ASCII.GetString(TestDirectories.Seed.ListMember(list, 1, out ReadOnlySpan<byte> n1)));
        Assert.Equal("Mark Crispin", Encoding.ASCII.GetString(n1));
    }

    [Fact]
    public void ALargeDirectoryFindsEveryEntry()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < 5000; i++)
        {
            sb.Append("user").Append(i).Append("@d").Append(i % 7).Append(".example\n");
        }
        RecipientDirectory d = RecipientDirectory.Parse(sb.ToString());
        for (int i = 0; i < 5000; i += 37)
        {
            Assert.Equal(RecipientVerdict.Accept, Look(d, $"USER{i}@D{i % 7}.EXAMPLE", out _));
            Assert.Equal(RecipientVerdict.Unknown, Look(d, $"user{i}x@d{i % 7}.example", out _));
        }
    }
}
