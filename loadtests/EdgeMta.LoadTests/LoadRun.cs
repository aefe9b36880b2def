using System.Diagnostics;

namespace EdgeMta.LoadTests;

/// <summary>
/// Runs one scenario: starts the sessions, hands out message numbers until the count or the duration
/// is spent (whichever comes first), watches for stuck sockets, prints progress, and returns the
/// metrics. A message number taken is a message attempted: it ends delivered or failed, never lost,
/// so attempted = delivered + failed in every report.
/// </summary>
public sealed class LoadRun
{
    readonly LoadOptions _options;
    readonly CancellationTokenSource _stop = new();
    long _next;
    long _attempted;
    long _endTimestamp;

    public LoadRun(LoadOptions options)
    {
        _options = options;
    }

    public long StartTimestamp { get; private set; }
    public CancellationToken Stopping => _stop.Token;

    /// <summary>Stops handing out messages (Ctrl+C); messages in flight finish.</summary>
    public void Stop() => _stop.Cancel();

    public async Task<RunResult> RunAsync(CancellationToken cancel = default)
    {
        using CancellationTokenRegistration reg = cancel.Register(Stop);
        var body = new MessageBody(_options.Helo, _options.From, _options.To, _options.Sizes.Sizes);
        StartTimestamp = Stopwatch.GetTimestamp();
        if (_options.Duration is TimeSpan d)
            _endTimestamp = StartTimestamp + (long)(d.TotalSeconds * Stopwatch.Frequency);
        var metrics = new RunMetrics(StartTimestamp, _options.Interval);
        var sessions = new LoadSession[_options.Sessions];
        var tasks = new Task[sessions.Length];
        for (int i = 0; i < sessions.Length; i++)
        {
            sessions[i] = new LoadSession(this, _options, body, metrics);
            tasks[i] = sessions[i].RunAsync();
        }

        long timeoutTicks = (long)(_options.Timeout.TotalSeconds * Stopwatch.Frequency);
        Task all = Task.WhenAll(tasks);
        long lastReport = StartTimestamp;
        long lastDelivered = 0;
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(250)).ConfigureAwait(false);
            long now = Stopwatch.GetTimestamp();
            foreach (LoadSession s in sessions) s.CheckTimeout(now, timeoutTicks);
            if (_endTimestamp != 0 && now >= _endTimestamp) _stop.Cancel();
            if (!_options.Quiet && now - lastReport >= Stopwatch.Frequency)
            {
                long delivered = metrics.Delivered;
                double secs = (double)(now - lastReport) / Stopwatch.Frequency;
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"  {(double)(now - StartTimestamp) / Stopwatch.Frequency,6:0.0}s  delivered {delivered,9}  failed {metrics.Failed,7}  {(delivered - lastDelivered) / secs,9:0} msg/s"));
                lastReport = now;
                lastDelivered = delivered;
            }
        }
        await all.ConfigureAwait(false);
        long end = Stopwatch.GetTimestamp();
        return new RunResult(_options, metrics, (double)(end - StartTimestamp) / Stopwatch.Frequency, Volatile.Read(ref _attempted));
    }

    /// <summary>The next message number, or false when the run is over.</summary>
    public bool TryTakeMessage(out long index)
    {
        index = -1;
        if (_stop.IsCancellationRequested) return false;
        if (_endTimestamp != 0 && Stopwatch.GetTimestamp() >= _endTimestamp) { _stop.Cancel(); return false; }
        index = Interlocked.Increment(ref _next) - 1;
        return index < _options.MessageLimit;
    }

    /// <summary>True when a message due at <paramref name="timestamp"/> falls at or after the end of --duration.</summary>
    public bool IsPastEnd(long timestamp) => _endTimestamp != 0 && timestamp >= _endTimestamp;

    /// <summary>A session starts sending a message it took: from here it ends delivered or failed.</summary>
    public void MessageAttempted() => Interlocked.Increment(ref _attempted);
}

/// <summary>What a run produced: the options it ran with, the metrics, and wall time.</summary>
public sealed record RunResult(LoadOptions Options, RunMetrics Metrics, double ElapsedSeconds, long Attempted)
{
    public double DeliveredPerSecond => ElapsedSeconds > 0 ? Metrics.Delivered / ElapsedSeconds : 0;
    public double MegabytesPerSecond => ElapsedSeconds > 0 ? Metrics.BytesDelivered / ElapsedSeconds / 1e6 : 0;
}
