using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// A default start prints nothing on stderr on a machine whose open-file limit is 20,000 (docs/PROTOCOL.md
/// "Command line": the default --max-connections fits the limit); a value given above the limit still warns.
/// Before, the default 20,000 plus 128 reserved descriptors exceeded that limit and warned at every start.
/// </summary>
public sealed class QuietStartTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ADefaultStartUnderAStockOpenFileLimitOf20000PrintsNothingOnStderr()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, openFileLimit: 20_000);
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("QUIT", 221);
        }
        Assert.Equal(0, await server.StopAsync()); // after the exit every line of stderr has been drained
        Assert.DoesNotContain("err| ", server.Log);
    }

    [Fact]
    public async Task AnExplicitMaxConnectionsAboveTheOpenFileLimitIsLoweredWithAWarning()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, ["--max-connections", "30000"], openFileLimit: 20_000);
        Assert.Equal(0, await server.StopAsync());
        Assert.Contains("err| edgemta: warning: --max-connections 30000 lowered to 19872: the open-file limit is 20000", server.Log);
    }
}
