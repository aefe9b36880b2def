// Shared with EdgeMta.Spool.Tests (linked): the data of crash-test message `seed`, a pure function of it.
// Sizes: mostly small (the first-buffer path), some tens of KiB (streamed, grown), a few over 1 MiB
// (bigger than the crash tests' segments: a segment of their own).
internal static partial class CrashContent
{
    public static int Size(long seed)
    {
        uint h = (uint)(seed * 2654435761L >> 7);
        return (h % 100) switch
        {
            < 70 => 1 + (int)(h % 6000),
            < 97 => 6000 + (int)(h % 120_000),
            _ => 1_000_000 + (int)(h % 1_500_000),
        };
    }

    public static byte[] Data(long seed)
    {
        var b = new byte[Size(seed)];
        new Random((int)(seed ^ (seed >> 32))).NextBytes(b);
        return b;
    }
}
