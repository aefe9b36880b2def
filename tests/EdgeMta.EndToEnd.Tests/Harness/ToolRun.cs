using System.Diagnostics;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>What a finished external program left behind.</summary>
public sealed record ToolResult(string Command, int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Everything, for assertion messages and test output.</summary>
    public override string ToString() =>
        $"$ {Command}\n[exit {ExitCode}]\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
}

/// <summary>
/// Runs a peer program (swaks, smtp-source, python3, `edgemta spool ...`) to completion with a hard
/// deadline: past it the whole process tree is killed and the test fails, so a hung peer cannot block CI.
/// </summary>
public static class ToolRun
{
    public static async Task<ToolResult> RunAsync(string file, IReadOnlyList<string> arguments, TimeSpan timeout,
        ITestOutputHelper? output = null, byte[]? standardInput = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        string command = file + " " + string.Join(' ', arguments.Select(Quote));

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"Cannot start {file} ({e.Message}); tests/run.sh installs the SMTP peers (swaks, postfix, python3-aiosmtpd).");
        }
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (standardInput is not null)
        {
            await process.StandardInput.BaseStream.WriteAsync(standardInput);
            process.StandardInput.Close();
        }

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync();
            var hung = new ToolResult(command, -1, await stdout, await stderr);
            output?.WriteLine(hung.ToString());
            Assert.Fail($"{file} did not finish within {timeout.TotalSeconds} s and was killed.\n{hung}");
        }
        // A grandchild holding the pipes open must not hang the test either.
        var result = new ToolResult(command, process.ExitCode, await stdout.WaitAsync(TimeSpan.FromSeconds(10)), await stderr.WaitAsync(TimeSpan.FromSeconds(10)));
        output?.WriteLine(result.ToString());
        return result;
    }

    private static string Quote(string a) => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=@,".Contains(c)) ? a : "'" + a + "'";
}
