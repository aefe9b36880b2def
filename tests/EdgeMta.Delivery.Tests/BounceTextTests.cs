// Contract: the byte-level pieces of a notice against the RFCs' own examples where they exist: the
// RFC 5322 date-time, RFC 3461 xtext decoding, and folding that unfolds (RFC 5322 §2.2.3) to the same text.

using System.Buffers;
using System.Text;

namespace EdgeMta.Delivery.Tests;

public sealed class BounceTextTests
{
    private static string Date(DateTimeOffset when)
    {
        var output = new ArrayBufferWriter<byte>();
        BounceText.Date(output, when);
        return Encoding.ASCII.GetString(output.WrittenSpan);
    }

    [Fact]
    public void DateMatchesTheRfc5322AppendixExample()
    {
        // RFC 5322 Appendix A.1.1: "Date: Fri, 21 Nov 1997 09:55:06 -0600".
        Assert.Equal("Fri, 21 Nov 1997 09:55:06 -0600", Date(new(1997, 11, 21, 9, 55, 6, TimeSpan.FromHours(-6))));
    }

    [Fact]
    public void DateWritesHalfHourOffsetsAndSingleDigitDays()
    {
        Assert.Equal(
            "Tue, 01 Jan 2030 00:00:09 +0530", Date(new(2030, 1, 1, 0, 0, 9, new TimeSpan(5, 30, 0))));
        Assert.Equal(
            "Mon, 31 Dec 2029 23:59:59 -0930", Date(new(2029, 12, 31, 23, 59, 59, -new TimeSpan(9, 30, 0))));
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a+2Bb", "a+b")]
    [InlineData("a+3Db", "a=b")]
    [InlineData("+2B+3D+20", "+= ")]
    [InlineData("", "")]
    public void XtextDecodes(string xtext, string expected)
    {
        Assert.True(BounceText.TryDecodeXtext(xtext, utf8: false, out string decoded));
        Assert.Equal(expected, decoded);
    }

    [Theory]
    [InlineData("a+2b")] // RFC 3461 §4: the hex digits are upper case.
    [InlineData("a+2")]
    [InlineData("a+")]
    [InlineData("a=b")] // "=" must be encoded.
    [InlineData("a b")]
    [InlineData("a+0Db")] // decodes to CR
    [InlineData("a+C3+A9")] // UTF-8 "é" where only ASCII is allowed
    public void BadXtextIsRefused(string xtext)
    {
        Assert.False(BounceText.TryDecodeXtext(xtext, utf8: false, out _));
    }

    [Fact]
    public void XtextMayCarryUtf8WhenAllowedButNotBrokenUtf8()
    {
        Assert.True(BounceText.TryDecodeXtext("jos+C3+A9@x", utf8: true, out string decoded));
        Assert.Equal("josé@x", decoded);
        Assert.False(BounceText.TryDecodeXtext("jos+C3@x", utf8: true, out _));
    }

    [Fact]
    public void FoldingBreaksBeforeSpacesAndUnfoldsBack()
    {
        string text = string.Join(' ', Enumerable.Range(0, 200).Select(i => "w" + i));
        var output = new ArrayBufferWriter<byte>();
        BounceText.Folded(output, 10, text, utf8: false, " "u8);
        string written = Encoding.ASCII.GetString(output.WrittenSpan);
        string[] lines = written.Split("\r\n");
        Assert.True(10 + lines[0].Length <= BounceText.FoldAt);
        Assert.All(lines, line => Assert.True(line.Length <= BounceText.FoldAt));
        Assert.All(lines[1..], line => Assert.StartsWith(" ", line));
        Assert.Equal(text, written.Replace("\r\n", ""));
    }

    [Fact]
    public void FoldingCountsUtf8Octets()
    {
        // Two-octet characters: a line of 78 characters would be 156 octets.
        string text = string.Join(' ', Enumerable.Repeat("éééééééééé", 40));
        var output = new ArrayBufferWriter<byte>();
        BounceText.Folded(output, 0, text, utf8: true, " "u8);
        foreach (string line in Encoding.UTF8.GetString(output.WrittenSpan).Split("\r\n"))
        {
            Assert.True(Encoding.UTF8.GetByteCount(line) <= BounceText.FoldAt, line);
        }
    }
}
