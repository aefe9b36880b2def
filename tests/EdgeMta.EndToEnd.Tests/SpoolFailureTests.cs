using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// The real binary, a real storage fault: the spool's segment file removed while the server runs (an operator's
/// `rm`, a tmp cleaner). The next message is refused at its end (451 4.3.0: durable in a file no longer in
/// the spool is not durable), and from then on, for the failing window (5 s), MAIL itself is answered
/// 451 4.3.0, so no client sends a whole message the spool would refuse (docs/PROTOCOL.md, "spool write
/// fails"). The refusal's log line names the errno. Every wait is bounded by the harness.
/// </summary>
public sealed class SpoolFailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AfterAStorageErrorMailIs451AndTheLogNamesTheErrno()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output);
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        await c.SendMessageAsync("a@example.net", ["b@example.org"], Mail.Crlf("Subject: first", "", "body"));
        foreach (string segment in Directory.GetFiles(server.SpoolDirectory, "*.seg")) File.Delete(segment);

        await c.CommandAsync("MAIL FROM:<a@example.net>", 250);
        await c.CommandAsync("RCPT TO:<b@example.org>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync(Mail.Crlf("Subject: second", "", "body", "."));
        await c.ExpectAsync(451, "4.3.0", "the end of data");

        await c.CommandAsync("MAIL FROM:<a@example.net>", 451, "4.3.0");
        await c.CommandAsync("MAIL FROM:<a@example.net>", 451, "4.3.0");
        await c.CommandAsync("QUIT", 221);
        string[] refused = await server.WaitForLinesAsync("message-refused");
        Assert.Contains("spool=error errno=ENOENT", refused[0]);
    }
}
