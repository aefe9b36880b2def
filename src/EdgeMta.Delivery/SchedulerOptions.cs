// The scheduler's settings, from the serve flags (docs/DELIVERY.md "Flags") with Postfix's qmgr defaults
// where the contract is silent (research/delivery.md).
namespace EdgeMta.Delivery;

public sealed record SchedulerOptions
{
    /// <summary>--relay, in order: index 0 is tried first; a later one only while every earlier one is dead.</summary>
    public int Hops { get; init; } = 1;
    /// <summary>--retry-min.</summary>
    public TimeSpan RetryMin { get; init; } = TimeSpan.FromSeconds(300);
    /// <summary>--retry-max.</summary>
    public TimeSpan RetryMax { get; init; } = TimeSpan.FromSeconds(4000);
    /// <summary>--queue-lifetime: a message older than this fails its pending recipients (4.4.7).</summary>
    public TimeSpan QueueLifetime { get; init; } = TimeSpan.FromDays(5);
    /// <summary>--bounce-lifetime: the same for null-sender messages, which are dropped, never bounced.</summary>
    public TimeSpan BounceLifetime { get; init; } = TimeSpan.FromDays(2);
    /// <summary>--delay-warning (zero: off).</summary>
    public TimeSpan DelayWarning { get; init; } = TimeSpan.Zero;
    /// <summary>--relay-concurrency: attempts in flight to one hop.</summary>
    public int Concurrency { get; init; } = 20;
    /// <summary>The concurrency a hop starts from after it was dead, growing by one per success.</summary>
    public int SlowStart { get; init; } = 5;
    /// <summary>Jitter of the retry wait, ±fraction (docs/DELIVERY.md: ±10%).</summary>
    public double Jitter { get; init; } = 0.10;
    /// <summary>One probe per this while a hop is dead: min(60 s, RetryMin).</summary>
    public TimeSpan ProbeInterval => RetryMin < TimeSpan.FromSeconds(60) ? RetryMin : TimeSpan.FromSeconds(60);
    /// <summary>A message found at start is due no earlier than start + this (+ jitter), so a restart does not
    /// send the whole backlog in its first second (FORMAT.md "Recovery").</summary>
    public TimeSpan RecoveredDelay { get; init; } = TimeSpan.FromSeconds(10);
}
