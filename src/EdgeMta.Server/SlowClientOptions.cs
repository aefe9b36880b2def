// Contract: the settings of the slow-client defence (docs/SCREENING.md "Slow clients"), read once at start.
// Defaults defend out of the box and are Postfix's where Postfix has one (postconf(5)): smtpd_min_data_rate
// 500, smtpd_timeout ${stress?{10}:{300}}s, smtpd_hard_error_limit ${stress?{1}:{20}}. The stress marks
// (80% on, 70% off) are this project's choice: Postfix's stress is "all smtpd processes busy", which a
// server with one table of connections has no equivalent for; the 10-point gap is the hysteresis.
// The per-request deadline itself has no setting: it is always on (Postfix's smtpd_per_request_deadline
// defaults to no; here the attack it answers is the reason it exists).
namespace EdgeMta.Server;

/// <summary>How slow clients are bounded: the minimum data rate, and what changes under stress.</summary>
public sealed record SlowClientOptions
{
    /// <summary>--min-data-rate: bytes per second message text must keep up inside DATA and BDAT; each read of
    /// N bytes adds N / rate seconds to the data deadline, never past the data timeout (Postfix smtpd_min_data_rate).</summary>
    public int MinDataRate { get; init; } = 500;

    /// <summary>--stress-threshold: stress begins when open connections exceed this percentage of
    /// --max-connections; 100 never (the table cannot exceed its maximum).</summary>
    public int StressThresholdPercent { get; init; } = 80;

    /// <summary>--stress-timeout: the command and data timeouts under stress (never longer than the normal ones).</summary>
    public TimeSpan StressTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>--stress-error-limit: the error limit under stress (never above the normal one).</summary>
    public int StressErrorLimit { get; init; } = 1;

    /// <summary>Stress ends when open connections fall below this percentage: 10 points under the threshold
    /// (70% for 80%), so a table hovering at the mark does not flap.</summary>
    public int StressReleasePercent => Math.Max(0, StressThresholdPercent - 10);
}
