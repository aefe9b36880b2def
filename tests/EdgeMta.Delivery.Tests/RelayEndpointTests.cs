// --relay URLs exactly as docs/DELIVERY.md's flag table states them, and a clear error for everything else.
using System.Net;
using EdgeMta.Delivery;

namespace EdgeMta.Delivery.Tests;

public class RelayEndpointTests
{
    [Theory]
    [InlineData("smtp://mx.example.net", RelayKind.Smtp, "mx.example.net", 25, "mx.example.net:25")]
    [InlineData("smtp://mx.example.net:2525", RelayKind.Smtp, "mx.example.net", 2525, "mx.example.net:2525")]
    [InlineData("lmtp://dovecot", RelayKind.Lmtp, "dovecot", 24, "dovecot:24")]
    [InlineData("lmtp://dovecot:10024", RelayKind.Lmtp, "dovecot", 10024, "dovecot:10024")]
    [InlineData("smtp://192.0.2.1", RelayKind.Smtp, "192.0.2.1", 25, "192.0.2.1:25")]
    [InlineData("smtp://0.0.0.0:1", RelayKind.Smtp, "0.0.0.0", 1, "0.0.0.0:1")]
    [InlineData("smtp://255.255.255.255:65535", RelayKind.Smtp, "255.255.255.255", 65535, "255.255.255.255:65535")]
    [InlineData("smtp://[2001:db8::1]", RelayKind.Smtp, "2001:db8::1", 25, "[2001:db8::1]:25")]
    [InlineData("lmtp://[::1]:2424", RelayKind.Lmtp, "::1", 2424, "[::1]:2424")]
    [InlineData("smtp://[::ffff:192.0.2.1]:25", RelayKind.Smtp, "::ffff:192.0.2.1", 25, "[::ffff:192.0.2.1]:25")]
    [InlineData("SMTP://MX.Example.NET", RelayKind.Smtp, "MX.Example.NET", 25, "MX.Example.NET:25")]
    [InlineData("smtp://mx.example.net.", RelayKind.Smtp, "mx.example.net.", 25, "mx.example.net.:25")]
    [InlineData("smtp://mail_relay:25", RelayKind.Smtp, "mail_relay", 25, "mail_relay:25")]
    [InlineData("smtp://1.2.3.4.example", RelayKind.Smtp, "1.2.3.4.example", 25, "1.2.3.4.example:25")]
    public void ReadsTcpRelays(string url, RelayKind kind, string host, int port, string shown)
    {
        Assert.True(RelayEndpoint.TryParse(url, out var relay, out string error), error);
        Assert.Equal(kind, relay.Kind);
        Assert.Equal(kind == RelayKind.Lmtp, relay.IsLmtp);
        Assert.Equal(host, relay.Host);
        Assert.Equal(port, relay.Port);
        Assert.Equal(string.Empty, relay.Path);
        Assert.Equal(shown, relay.ToString());
    }

    [Fact]
    public void GivesTheAddressOfLiteralsAndNoneForNames()
    {
        Assert.True(RelayEndpoint.TryParse("smtp://192.0.2.7", out var v4, out _));
        Assert.Equal(IPAddress.Parse("192.0.2.7"), v4.Address);
        Assert.True(RelayEndpoint.TryParse("smtp://[2001:db8::7]", out var v6, out _));
        Assert.Equal(IPAddress.Parse("2001:db8::7"), v6.Address);
        Assert.True(RelayEndpoint.TryParse("smtp://mx.example.net", out var name, out _));
        Assert.Null(name.Address);
    }

    [Theory]
    [InlineData("lmtp+unix:/var/run/dovecot/lmtp")]
    [InlineData("LMTP+UNIX:/run/lmtp.sock")]
    [InlineData("lmtp+unix:/a")]
    public void ReadsUnixSocketRelays(string url)
    {
        Assert.True(RelayEndpoint.TryParse(url, out var relay, out string error), error);
        Assert.Equal(RelayKind.LmtpUnix, relay.Kind);
        Assert.True(relay.IsLmtp);
        Assert.Equal(url[(url.IndexOf(':') + 1)..], relay.Path);
        Assert.Equal(relay.Path, relay.ToString());
        Assert.Equal(string.Empty, relay.Host);
        Assert.Equal(0, relay.Port);
    }

    [Fact]
    public void AcceptsASocketPathOf107BytesAndNotOf108()
    {
        string fits = "/" + new string('s', RelayEndpoint.MaxSocketPathBytes - 1);
        Assert.True(RelayEndpoint.TryParse("lmtp+unix:" + fits, out _, out _));
        Assert.False(RelayEndpoint.TryParse("lmtp+unix:" + fits + "s", out _, out string error));
        Assert.Contains("107 bytes", error);
        // Counted in UTF-8 octets, as the kernel counts them: 54 two-octet characters are 108 with the slash.
        Assert.False(RelayEndpoint.TryParse("lmtp+unix:/" + new string('\u00e9', 54), out _, out _));
    }

    [Theory]
    [InlineData(null, "empty")]
    [InlineData("", "empty")]
    [InlineData("mx.example.net", "no scheme")]
    [InlineData("mx.example.net:25", "unknown scheme 'mx.example.net'")]
    [InlineData(":25", "no scheme")]
    [InlineData("//mx.example.net", "no scheme")]
    [InlineData("http://mx.example.net", "unknown scheme 'http'")]
    [InlineData("smtps://mx.example.net", "unknown scheme 'smtps'")]
    [InlineData("lmtp+tcp://mx", "unknown scheme")]
    [InlineData("smtp:mx.example.net", "needs '//'")]
    [InlineData("smtp:/mx.example.net", "needs '//'")]
    [InlineData("smtp://", "no host")]
    [InlineData("smtp://:25", "no host")]
    [InlineData("smtp://mx.example.net:0", "out of range")]
    [InlineData("smtp://mx.example.net:65536", "out of range")]
    [InlineData("smtp://mx.example.net:99999999999", "out of range")]
    [InlineData("smtp://mx.example.net:", "port after ':' is empty")]
    [InlineData("smtp://mx.example.net:-1", "not a number")]
    [InlineData("smtp://mx.example.net:+25", "not a number")]
    [InlineData("smtp://mx.example.net:2x", "not a number")]
    [InlineData("smtp://mx.example.net:smtp", "not a number")]
    [InlineData("smtp://2001:db8::1", "must be in brackets")]
    [InlineData("smtp://::1", "must be in brackets")]
    [InlineData("smtp://[2001:db8::1", "no ']'")]
    [InlineData("smtp://[2001:db8::1]25", "after ']'")]
    [InlineData("smtp://[192.0.2.1]", "not an IPv6 address")]
    [InlineData("smtp://[mx.example.net]", "not an IPv6 address")]
    [InlineData("smtp://[]", "not an IPv6 address")]
    [InlineData("smtp://[::1]:0", "out of range")]
    [InlineData("smtp://mx.example.net/", "has a path")]
    [InlineData("smtp://mx.example.net:25/relay", "has a path")]
    [InlineData("lmtp://dovecot/var/run/lmtp", "has a path")]
    [InlineData("smtp://user@mx.example.net", "user information")]
    [InlineData("smtp://user:secret@mx.example.net:25", "user information")]
    [InlineData("smtp://mx.example.net?tls=require", "query or fragment")]
    [InlineData("smtp://mx.example.net:25#x", "query or fragment")]
    [InlineData("smtp://mx.example.net /", "space or control")]
    [InlineData(" smtp://mx.example.net", "space or control")]
    [InlineData("smtp://mx.example.net\n", "space or control")]
    [InlineData("smtp://mx\0.example.net", "space or control")]
    [InlineData("smtp://256.0.0.1", "not an IPv4 address")]
    [InlineData("smtp://1.2.3", "not an IPv4 address")]
    [InlineData("smtp://1.2.3.4.5", "not an IPv4 address")]
    [InlineData("smtp://010.0.0.1", "not an IPv4 address")]
    [InlineData("smtp://1..2.3", "not an IPv4 address")]
    [InlineData("smtp://12345", "not an IPv4 address")]
    [InlineData("smtp://-mx.example.net", "starts or ends with '-'")]
    [InlineData("smtp://mx-.example.net", "starts or ends with '-'")]
    [InlineData("smtp://mx..example.net", "empty label")]
    [InlineData("smtp://.", "empty label")]
    [InlineData("smtp://mx.exa$mple.net", "has '$'")]
    [InlineData("smtp://m\u00e9.example", "has '\u00e9'")]
    [InlineData("lmtp+unix:run/lmtp", "absolute socket path")]
    [InlineData("lmtp+unix:", "absolute socket path")]
    [InlineData("lmtp+unix:/", "names no socket")]
    [InlineData("lmtp+unix://run/lmtp", "one slash")]
    [InlineData("lmtp+unix:///run/lmtp", "one slash")]
    [InlineData("lmtp+unix:/run/lmtp?x=1", "query or fragment")]
    public void RefusesEverythingElseWithAReason(string? url, string reason)
    {
        Assert.False(RelayEndpoint.TryParse(url, out var relay, out string error));
        Assert.Null(relay);
        Assert.Contains(reason, error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public void RefusesOverlongNamesAndLabels()
    {
        string label63 = new('a', 63);
        Assert.True(RelayEndpoint.TryParse($"smtp://{label63}.example", out _, out _));
        Assert.False(RelayEndpoint.TryParse($"smtp://{label63}a.example", out _, out string error));
        Assert.Contains("over 63", error);

        // Four labels of 63 and three dots are 255 characters: past the 253 of RFC 1123 §2.1 with RFC 1035 §2.3.4.
        string name = string.Join('.', label63, label63, label63, label63);
        Assert.False(RelayEndpoint.TryParse($"smtp://{name}", out _, out error));
        Assert.Contains("253", error);
        Assert.True(RelayEndpoint.TryParse($"smtp://{name[..253]}", out _, out error), error);
    }

    [Fact]
    public void NamesTheOffendingValueInTheError()
    {
        Assert.False(RelayEndpoint.TryParse("smtp://mx.example.net:70000", out _, out string error));
        Assert.Contains("smtp://mx.example.net:70000", error);
        Assert.Contains("70000", error);
        Assert.False(RelayEndpoint.TryParse("smtp://a\tb", out _, out error));
        Assert.Contains("\\u0009", error);
    }
}
