namespace EdgeMta.EndToEnd.Tests.Harness;

/// <summary>
/// Where the binary under test lives: $EDGEMTA_BINARY (tests/run.sh sets it to dist/edgemta after
/// publishing), else &lt;repo root&gt;/dist/edgemta. A missing binary FAILS every test that needs it, with a
/// message saying how to build it: a skipped end-to-end suite would read as green in CI.
/// </summary>
public static class EdgeMtaBinary
{
    public const string EnvironmentVariable = "EDGEMTA_BINARY";

    /// <summary>The path the tests will run, whether or not it exists.</summary>
    public static string Path
    {
        get
        {
            string? fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(fromEnvironment)) return System.IO.Path.GetFullPath(fromEnvironment);
            return System.IO.Path.Combine(RepositoryRoot, "dist", "edgemta");
        }
    }

    /// <summary>The path, or a failed assertion explaining how to produce the binary.</summary>
    public static string Require()
    {
        string path = Path;
        if (!File.Exists(path))
        {
            Assert.Fail($"The EdgeMta binary is missing: {path}. Publish it first (`dotnet publish src/EdgeMta -c Release -o dist`, " +
                        $"as tests/run.sh does) or point {EnvironmentVariable} at it.");
        }
        return path;
    }

    /// <summary>The directory holding EdgeMta.sln, found by walking up from the test assembly.</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(System.IO.Path.Combine(dir.FullName, "EdgeMta.sln"))) return dir.FullName;
            }
            return Directory.GetCurrentDirectory();
        }
    }
}
