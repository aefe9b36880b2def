using EdgeMta.EndToEnd.Tests.Harness;

namespace EdgeMta.EndToEnd.Tests;

/// <summary>
/// Every golden session under Transcripts/ (format: <see cref="Transcript"/>), replayed against a fresh
/// edgemta. Add a case by adding a .smtp file.
/// </summary>
public sealed class TranscriptTests(ITestOutputHelper output)
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (string f in Directory.EnumerateFiles(Transcript.Directory, "*.smtp").Order(StringComparer.Ordinal)) data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task TheServerAnswersTheGoldenTranscript(string file) => await Transcript.Load(file).ReplayAsync(output);

    [Fact]
    public void TheTranscriptFolderIsNotEmpty() => Assert.True(Files().Count >= 6, $"Transcripts were not copied to {Transcript.Directory}");
}
