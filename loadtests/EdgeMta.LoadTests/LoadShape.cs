using System.Diagnostics;
using System.Globalization;

namespace EdgeMta.LoadTests;

/// <summary>
/// When message number i (0-based, across all sessions) becomes due, relative to the start of the run:
/// the open-model load simulations of NBomber reduced to what an SMTP race needs.
/// <list type="bullet">
/// <item>Closed: every message is due at once; sessions send as fast as the server answers.</item>
/// <item>Steady(rate): message i is due at i / rate seconds.</item>
/// <item>Ramp(from, to, over): the rate grows linearly from <c>from</c> to <c>to</c> over <c>over</c>,
///   then stays at <c>to</c>; due(i) inverts the cumulative count N(t) = from·t + (to-from)·t²/(2·over).</item>
/// <item>Burst(size, every): <c>size</c> messages become due together at the start of each period.</item>
/// </list>
/// Sessions take numbers in order and wait until theirs is due; a session that falls behind sends at
/// once, so the latency it then reports is the server's, not the schedule's (no coordinated-omission
/// correction: the report shows achieved rate next to the wanted one instead).
/// </summary>
public abstract record LoadShape
{
    public abstract double DueSeconds(long index);
    public abstract string Describe();

    public long DueTicks(long index) => (long)(DueSeconds(index) * Stopwatch.Frequency);

    public sealed record Closed : LoadShape
    {
        public override double DueSeconds(long index) => 0;
        public override string Describe() => "closed loop (as fast as the server answers)";
    }

    public sealed record Steady(double Rate) : LoadShape
    {
        public override double DueSeconds(long index) => index / Rate;
        public override string Describe() => string.Create(CultureInfo.InvariantCulture, $"steady {Rate:0.##} msg/s");
    }

    public sealed record Ramp(double From, double To, double OverSeconds) : LoadShape
    {
        public override double DueSeconds(long index)
        {
            double slope = (To - From) / OverSeconds;
            double atEnd = From * OverSeconds + slope * OverSeconds * OverSeconds / 2;
            if (index >= atEnd) return OverSeconds + (index - atEnd) / To;
            if (Math.Abs(slope) < 1e-12) return index / From;
            // slope/2·t² + from·t - i = 0, the positive root.
            return (-From + Math.Sqrt(From * From + 2 * slope * index)) / slope;
        }
        public override string Describe() =>
            string.Create(CultureInfo.InvariantCulture, $"ramp {From:0.##} → {To:0.##} msg/s over {OverSeconds:0.##} s");
    }

    public sealed record Burst(int Size, double EverySeconds) : LoadShape
    {
        public override double DueSeconds(long index) => index / Size * EverySeconds;
        public override string Describe() =>
            string.Create(CultureInfo.InvariantCulture, $"bursts of {Size} every {EverySeconds:0.###} s");
    }

    /// <summary>"100:5000" (from:to msg/s, over the run's duration).</summary>
    public static bool TryParseRamp(string text, double overSeconds, out LoadShape? shape, out string error)
    {
        shape = null;
        string[] parts = text.Split(':', '-');
        if (parts.Length != 2 || !TryRate(parts[0], out double from) || !TryRate(parts[1], out double to)
            || from < 0 || to <= 0 || (from == 0 && to == 0))
        {
            error = $"--ramp '{text}': expected FROM:TO in msg/s, e.g. 100:5000";
            return false;
        }
        if (overSeconds <= 0)
        {
            error = "--ramp needs --duration (the ramp spans it)";
            return false;
        }
        shape = new Ramp(Math.Max(from, 0.001), to, overSeconds);
        error = "";
        return true;
    }

    /// <summary>"500/1s" or "500@2s": SIZE messages every PERIOD.</summary>
    public static bool TryParseBurst(string text, out LoadShape? shape, out string error)
    {
        shape = null;
        int sep = text.IndexOfAny(['/', '@']);
        if (sep <= 0 || !int.TryParse(text[..sep], NumberStyles.None, CultureInfo.InvariantCulture, out int size) || size <= 0
            || !Durations.TryParse(text[(sep + 1)..], out TimeSpan every) || every <= TimeSpan.Zero)
        {
            error = $"--burst '{text}': expected SIZE/PERIOD, e.g. 500/1s";
            return false;
        }
        shape = new Burst(size, every.TotalSeconds);
        error = "";
        return true;
    }

    static bool TryRate(string s, out double rate) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out rate);
}

/// <summary>Durations as people type them: 30s, 2m, 1h, 500ms, or bare seconds.</summary>
public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        text = text.Trim();
        double scale = 1;
        if (text.EndsWith("ms", StringComparison.Ordinal)) { scale = 0.001; text = text[..^2]; }
        else if (text.EndsWith('s')) text = text[..^1];
        else if (text.EndsWith('m')) { scale = 60; text = text[..^1]; }
        else if (text.EndsWith('h')) { scale = 3600; text = text[..^1]; }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || n < 0) return false;
        value = TimeSpan.FromSeconds(n * scale);
        return true;
    }
}

/// <summary>
/// Message sizes with weights, "1024:80,65536:20": 80 % of messages are 1 KiB, 20 % are 64 KiB. Message
/// i gets its size from a fixed interleaving (not a random draw), so two runs with the same mix send
/// the same bytes in the same order and the mix holds exactly over every 100-ish messages.
/// Sizes accept k/K (1024) and m/M (1048576) suffixes.
/// </summary>
public sealed class SizeMix
{
    readonly int[] _sizes;
    readonly int[] _pattern;   // indexes into _sizes, one per slot, weights spread evenly

    public SizeMix(IReadOnlyList<(int Size, int Weight)> entries)
    {
        if (entries.Count == 0) throw new ArgumentException("empty size mix", nameof(entries));
        _sizes = new int[entries.Count];
        int total = 0;
        for (int i = 0; i < entries.Count; i++) { _sizes[i] = entries[i].Size; total += entries[i].Weight; }
        Entries = entries;
        // Smooth weighted round robin: each slot picks the entry furthest behind its share.
        _pattern = new int[total];
        int[] current = new int[entries.Count];
        for (int slot = 0; slot < total; slot++)
        {
            int best = 0;
            for (int i = 0; i < entries.Count; i++)
            {
                current[i] += entries[i].Weight;
                if (current[i] > current[best]) best = i;
            }
            current[best] -= total;
            _pattern[slot] = best;
        }
    }

    public IReadOnlyList<(int Size, int Weight)> Entries { get; }
    public IReadOnlyList<int> Sizes => _sizes;

    /// <summary>Which entry message <paramref name="index"/> uses.</summary>
    public int EntryFor(long index) => _pattern[(int)(index % _pattern.Length)];

    public static SizeMix Single(int size) => new([(size, 1)]);

    public static bool TryParse(string text, out SizeMix? mix, out string error)
    {
        mix = null;
        var entries = new List<(int, int)>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] kv = part.Split(':');
            int weight = 1;
            if (kv.Length > 2 || !TryParseSize(kv[0], out int size)
                || (kv.Length == 2 && (!int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out weight) || weight <= 0)))
            {
                error = $"--size-mix '{text}': expected SIZE:WEIGHT[,SIZE:WEIGHT...], e.g. 1024:80,65536:20";
                return false;
            }
            entries.Add((size, weight));
        }
        if (entries.Count == 0) { error = "--size-mix is empty"; return false; }
        mix = new SizeMix(entries);
        error = "";
        return true;
    }

    public static bool TryParseSize(string text, out int size)
    {
        size = 0;
        text = text.Trim();
        long scale = 1;
        if (text.EndsWith('k') || text.EndsWith('K')) { scale = 1024; text = text[..^1]; }
        else if (text.EndsWith('m') || text.EndsWith('M')) { scale = 1024 * 1024; text = text[..^1]; }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n)) return false;
        n *= scale;
        if (n < MessageBody.MinimumSize || n > 256L * 1024 * 1024) return false;
        size = (int)n;
        return true;
    }

    public string Describe() => string.Join(", ", Entries.Select(e => Entries.Count == 1
        ? $"{e.Size} B"
        : $"{e.Size} B × {e.Weight}"));
}
