// The recipient directory a session answers RCPT from is the one given at Start (the server passes the one
// current at connect, so a SIGHUP reload reaches new sessions only); after Reset the constructor's stands in.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;

namespace EdgeMta.Protocol.Tests;

public sealed class SessionDirectoryTests
{
    private static readonly RecipientDirectory Before = RecipientDirectory.Parse("kept@foo.com\nremoved@foo.com\n");
    private static readonly RecipientDirectory After = RecipientDirectory.Parse("kept@foo.com\nadded@foo.com\n");

    [Fact]
    public void ASessionAnswersRcptFromTheDirectoryGivenAtStart()
    {
        var session = new SmtpSession(new SmtpSessionOptions { HostName = "foo.com" }, Before, new FixedClock());
        Assert.Equal(["250", "550", "250"], RcptCodes(session, After, "kept", "removed", "added"));
    }

    [Fact]
    public void AfterResetAStartWithoutADirectoryUsesTheConstructorsAgain()
    {
        var session = new SmtpSession(new SmtpSessionOptions { HostName = "foo.com" }, Before, new FixedClock());
        Assert.Equal(["550", "250"], RcptCodes(session, After, "removed", "added"));
        session.Reset();
        Assert.Equal(["250", "550"], RcptCodes(session, null, "removed", "added"));
    }

    // Starts the session (with the directory, or the constructor's when null) and returns the reply code to
    // RCPT for each local part at foo.com.
    private static string[] RcptCodes(SmtpSession session, RecipientDirectory? directory, params string[] localParts)
    {
        var output = new ArrayBufferWriter<byte>();
        var store = new InMemoryMessageStore();
        var client = new ClientInfo("192.0.2.1"u8);
        if (directory is null) session.Start(client, store, output);
        else session.Start(client, store, output, directory);
        Send(session, output, "EHLO client.example\r\n"); // EHLO ends a pipelining group (RFC 2920 §3.1)
        Send(session, output, "MAIL FROM:<a@example.org>\r\n");
        Assert.True(session.State == SmtpState.SenderApproved, Encoding.ASCII.GetString(output.WrittenSpan));
        var codes = new string[localParts.Length];
        for (int i = 0; i < localParts.Length; i++)
        {
            output.ResetWrittenCount();
            Send(session, output, $"RCPT TO:<{localParts[i]}@foo.com>\r\n");
            string reply = Encoding.ASCII.GetString(output.WrittenSpan);
            Assert.True(reply.Length >= 3, $"no reply to RCPT: {session.State} {reply}");
            codes[i] = reply[..3];
        }
        return codes;
    }

    private static void Send(SmtpSession session, ArrayBufferWriter<byte> output, string text)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(text);
        session.Process(bytes, output, out int consumed);
        Assert.Equal(bytes.Length, consumed);
    }
}
