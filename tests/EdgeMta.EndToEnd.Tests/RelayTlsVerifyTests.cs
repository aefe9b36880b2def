using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// `--relay-tls verify` (docs/DELIVERY.md): the next hop's certificate chain and name are checked, with `--relay-ca`
/// as an extra trust anchor. The next hop is a second edgemta serving STARTTLS with a self-signed certificate for
/// localhost (Harness/TestCertificate.cs): trusted through --relay-ca it takes the mail; without it the handshake
/// fails, the hop is marked dead with the reason, and the message is deferred, never sent in clear.
/// </summary>
public sealed class RelayTlsVerifyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AHopTrustedThroughRelayCaTakesTheMailAndAnUntrustedOneIsNeverSentTo()
    {
        string dir = Directory.CreateTempSubdirectory("edgemta-e2e-verify-").FullName;
        try
        {
            string[] tls = TestCertificate.Write(dir);
            string ca = tls[1];   // the self-signed certificate is its own anchor
            await using EdgeMtaProcess hop = await EdgeMtaProcess.StartAsync(output, ["--hostname", "hop.test", .. tls]);

            await using (EdgeMtaProcess trusting = await EdgeMtaProcess.StartAsync(output,
                ["--hostname", "edge.test", "--relay", $"smtp://localhost:{hop.Port}", "--relay-tls", "verify", "--relay-ca", ca]))
            {
                SentMessage m = await trusting.SendAsync("s@example.org", ["a@example.test"], RelayClient.Message("verified"));
                DeliveryLine delivered = Assert.Single(await trusting.WaitForEventsAsync("delivered", where: l => l["id"] == m.QueueId));
                Assert.StartsWith("250", delivered["reply"]);
            }

            await using EdgeMtaProcess doubting = await EdgeMtaProcess.StartAsync(output,
                ["--hostname", "edge.test", "--relay", $"smtp://localhost:{hop.Port}", "--relay-tls", "verify"]);
            SentMessage refused = await doubting.SendAsync("s@example.org", ["b@example.test"], RelayClient.Message("not verified"));
            DeliveryLine dead = Assert.Single(await doubting.WaitForEventsAsync("relay-dead"));
            Assert.Contains("TLS handshake", dead["reason"]);
            DeliveryLine deferred = Assert.Single(await doubting.WaitForEventsAsync("deferred", where: l => l["id"] == refused.QueueId));
            Assert.Contains("TLS handshake", deferred["reply"]);
            Assert.Empty(doubting.Events("delivered"));
            // The hop accepted exactly one message: the verified one.
            Assert.Single(hop.Events("message-accepted"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
