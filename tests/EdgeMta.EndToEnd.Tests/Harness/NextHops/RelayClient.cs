namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// Submitting mail to an edgemta under relay test: one whole session per message (greeting, EHLO, the
/// transaction, QUIT), asserting the 250 and returning the queue id. Fails the test on any other reply; it
/// neither retries nor pipelines.
/// </summary>
public static class RelayClient
{
    /// <summary>A small message with a Subject that names it, so a hop's copy can be found by text.</summary>
    public static byte[] Message(string subject, params string[] body) => Mail.Crlf(["Subject: " + subject, "", .. body, "end of " + subject]);

    public static async Task<SentMessage> SendAsync(this EdgeMtaProcess server, string from, IReadOnlyList<string> to, byte[] message)
    {
        await using SmtpConnection c = await server.OpenSessionAsync();
        await c.CommandAsync("EHLO client.example", 250);
        SentMessage sent = await c.SendMessageAsync(from, to, message);
        await c.CommandAsync("QUIT", 221);
        return sent;
    }
}
