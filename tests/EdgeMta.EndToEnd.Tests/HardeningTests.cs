using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// deploy/systemd/edgemta.service sets MemoryDenyWriteExecute=yes: no mapping may be writable and executable,
/// and none may gain execute later. A runtime that made code at run time (a JIT, or NativeAOT's thunk pages
/// for a delegate handed to native code) would die under it in production only. Linux's PR_SET_MDWE
/// (since 6.3) is the same rule, inherited across execve: the binary is started under it here and must serve
/// a whole session, STARTTLS included, and stop cleanly.
/// </summary>
public sealed class HardeningTests(ITestOutputHelper output)
{
    // prctl(PR_SET_MDWE = 65, PR_MDWE_REFUSE_EXEC_GAIN = 1), checked with PR_GET_MDWE = 66, then exec.
    private const string MdweLauncher =
        "import ctypes, os, sys\n" +
        "libc = ctypes.CDLL(None, use_errno=True)\n" +
        "if libc.prctl(65, 1, 0, 0, 0) != 0 or libc.prctl(66, 0, 0, 0, 0) != 1:\n" +
        "    sys.exit('PR_SET_MDWE is not available: errno %d' % ctypes.get_errno())\n" +
        "os.execv(sys.argv[1], sys.argv[1:])\n";

    [Fact]
    public async Task ServesTlsMailWhereMemoryCanNeverBeWritableAndExecutable()
    {
        await using EdgeMtaProcess server = await EdgeMtaProcess.StartAsync(output, TestCertificate.Flags,
            launcher: ["python3", "-c", MdweLauncher]);
        SentMessage sent;
        await using (SmtpConnection c = await server.OpenSessionAsync())
        {
            await c.CommandAsync("EHLO client.example", 250);
            await c.CommandAsync("STARTTLS", 220);
            await c.StartTlsAsync();
            await c.CommandAsync("EHLO client.example", 250);
            sent = await c.SendMessageAsync("wx@example.com", ["b@example.org"], Mail.Crlf("Subject: W^X", "", "body"));
            await c.CommandAsync("QUIT", 221);
        }
        SpoolExport export = await server.StopAndExportAsync();
        Mail.AssertExportedExactly(export, [sent]);
    }
}
