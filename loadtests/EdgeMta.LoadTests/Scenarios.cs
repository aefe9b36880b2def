namespace EdgeMta.LoadTests;

/// <summary>
/// Named scenarios (NBomber's word): a preset of options that the command line can still override one by
/// one. `--scenario NAME` with a name not listed here only names the run in its reports.
/// </summary>
public static class Scenarios
{
    public sealed record Preset(string Name, string What, int Sessions, long? Messages = null, string? Duration = null,
        string Size = "1024", string? SizeMix = null, double? Rate = null, string? Ramp = null, string? Burst = null,
        bool PerMessage = false, bool Pipelining = false);

    public static readonly Preset[] All =
    [
        new("smoke", "2 sessions, 100 messages of 1 KiB: is the server answering right?", 2, Messages: 100),
        new("throughput", "10 sessions, 20,000 × 1 KiB, closed loop, connections reused", 10, Messages: 20_000),
        new("pipelined", "as throughput, with PIPELINING", 10, Messages: 20_000, Pipelining: true),
        new("churn", "10 sessions, 5,000 × 1 KiB, one connection per message", 10, Messages: 5_000, PerMessage: true),
        new("mix", "10 sessions, 10,000 messages: 80 % 1 KiB, 20 % 64 KiB", 10, Messages: 10_000, SizeMix: "1024:80,65536:20"),
        new("steady", "20 sessions at a steady 2,000 msg/s for 30 s", 20, Duration: "30s", Rate: 2_000),
        new("ramp", "50 sessions, rate ramping 100 → 20,000 msg/s over 30 s", 50, Duration: "30s", Ramp: "100:20000"),
        new("burst", "100 sessions, bursts of 2,000 messages every 2 s for 20 s", 100, Duration: "20s", Burst: "2000/2s"),
    ];

    public static Preset? Find(string? name)
    {
        foreach (Preset p in All)
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p;
        return null;
    }
}
