using System.Diagnostics;

namespace EdgeMta.LoadTests;

/// <summary>The steps of an SMTP conversation whose latency is measured (the command sent → its reply),
/// plus Message: MAIL sent → the 250 after the end-of-data dot, the latency a sender feels.</summary>
public enum SmtpStep : byte { Connect, Greeting, Ehlo, Mail, Rcpt, Data, EndOfData, Rset, Quit, Message }

/// <summary>
/// Codes in the failure table that are not SMTP reply codes (real ones are 200-599): what happened when
/// no reply came. Keeping them in the same table as 4xx/5xx lets one sum say how many messages failed.
/// </summary>
public static class FailureCode
{
    public const int Closed = 0;        // the server closed the connection (or reset it) while a reply was due
    public const int Malformed = 1;     // the bytes were not an SMTP reply (RFC 5321 §4.2)
    public const int Timeout = 2;       // no reply within --timeout
    public const int ConnectError = 3;  // connect() failed: refused, unreachable, or timed out

    public static string Name(int code) => code switch
    {
        Closed => "closed",
        Malformed => "malformed",
        Timeout => "timeout",
        ConnectError => "connect-error",
        _ => code.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// Everything a run measures, shared by all sessions and safe to record into concurrently: one latency
/// histogram per step, the failed messages by (step, code), the reply codes seen by (step, code), counts
/// of delivered and failed messages, and a timeline of 1-interval buckets for the picture.
/// A message counts as delivered only on 250 after its dot; every other ending is one failure, filed
/// under the first unexpected reply of that message.
/// </summary>
public sealed class RunMetrics
{
    public const int StepCount = (int)SmtpStep.Message + 1;
    const int CodeSlots = 600;

    readonly LatencyHistogram[] _steps = new LatencyHistogram[StepCount];
    readonly long[] _failures = new long[StepCount * CodeSlots];
    readonly long[] _replies = new long[StepCount * CodeSlots];
    long _delivered, _failed, _bytesDelivered, _connections;

    public RunMetrics(long startTimestamp, TimeSpan interval)
    {
        for (int i = 0; i < StepCount; i++) _steps[i] = new LatencyHistogram();
        StartTimestamp = startTimestamp;
        Timeline = new Timeline(startTimestamp, (long)(interval.TotalSeconds * Stopwatch.Frequency));
    }

    public long StartTimestamp { get; }
    public Timeline Timeline { get; }
    public long Delivered => Volatile.Read(ref _delivered);
    public long Failed => Volatile.Read(ref _failed);
    public long BytesDelivered => Volatile.Read(ref _bytesDelivered);
    public long Connections => Volatile.Read(ref _connections);

    public LatencyHistogram Step(SmtpStep step) => _steps[(int)step];

    public void RecordLatency(SmtpStep step, long ticks) => _steps[(int)step].Record(ticks);

    public void CountReply(SmtpStep step, int code) =>
        Interlocked.Increment(ref _replies[(int)step * CodeSlots + Slot(code)]);

    public void CountConnection() => Interlocked.Increment(ref _connections);

    public void MessageDelivered(long now, long latencyTicks)
    {
        Interlocked.Increment(ref _delivered);
        _steps[(int)SmtpStep.Message].Record(latencyTicks);
        Timeline.At(now).Delivered(latencyTicks);
    }

    public void MessageFailed(long now, SmtpStep step, int code)
    {
        Interlocked.Increment(ref _failed);
        Interlocked.Increment(ref _failures[(int)step * CodeSlots + Slot(code)]);
        Timeline.At(now).Failed();
    }

    public void AddBytes(long bytes) => Interlocked.Add(ref _bytesDelivered, bytes);

    public long FailuresAt(SmtpStep step, int code) => Volatile.Read(ref _failures[(int)step * CodeSlots + Slot(code)]);
    public long RepliesAt(SmtpStep step, int code) => Volatile.Read(ref _replies[(int)step * CodeSlots + Slot(code)]);

    /// <summary>The non-empty failure cells, in step then code order.</summary>
    public IEnumerable<(SmtpStep Step, int Code, long Count)> FailureCells()
    {
        for (int s = 0; s < StepCount; s++)
            for (int c = 0; c < CodeSlots; c++)
            {
                long n = Volatile.Read(ref _failures[s * CodeSlots + c]);
                if (n != 0) yield return ((SmtpStep)s, c, n);
            }
    }

    static int Slot(int code) => (uint)code < CodeSlots ? code : FailureCode.Malformed;
}

/// <summary>Throughput and latency per interval since the start, for the over-time picture. Buckets are
/// created on first use, in chunks, so a long run costs memory only for the intervals it lived through.</summary>
public sealed class Timeline
{
    const int ChunkSize = 256;
    readonly long _start;
    readonly long _intervalTicks;
    readonly TimelineBucket?[]?[] _chunks = new TimelineBucket?[]?[4096];
    int _highest = -1;

    public Timeline(long startTimestamp, long intervalTicks)
    {
        _start = startTimestamp;
        _intervalTicks = Math.Max(1, intervalTicks);
    }

    public double IntervalSeconds => (double)_intervalTicks / Stopwatch.Frequency;
    public int Length => Volatile.Read(ref _highest) + 1;

    public TimelineBucket At(long timestamp)
    {
        long i = (timestamp - _start) / _intervalTicks;
        int index = (int)Math.Clamp(i, 0, (long)ChunkSize * _chunks.Length - 1);
        TimelineBucket?[] chunk = _chunks[index / ChunkSize] ?? Create(ref _chunks[index / ChunkSize]);
        TimelineBucket bucket = chunk[index % ChunkSize] ?? Create(ref chunk[index % ChunkSize]);
        int highest = Volatile.Read(ref _highest);
        while (index > highest)
        {
            int seen = Interlocked.CompareExchange(ref _highest, index, highest);
            if (seen == highest) break;
            highest = seen;
        }
        return bucket;
    }

    /// <summary>The bucket for interval <paramref name="index"/>, or null when nothing happened then.</summary>
    public TimelineBucket? Get(int index)
    {
        TimelineBucket?[]? chunk = _chunks[index / ChunkSize];
        return chunk?[index % ChunkSize];
    }

    static T Create<T>(ref T? slot) where T : class, new()
    {
        Interlocked.CompareExchange(ref slot, new T(), null);
        return slot!;
    }

    static TimelineBucket?[] Create(ref TimelineBucket?[]? slot)
    {
        Interlocked.CompareExchange(ref slot, new TimelineBucket?[ChunkSize], null);
        return slot!;
    }
}

public sealed class TimelineBucket
{
    long _delivered, _failed;
    public LatencyHistogram Latency { get; } = new(6);   // 3 % precision is plenty for a picture
    public long DeliveredCount => Volatile.Read(ref _delivered);
    public long FailedCount => Volatile.Read(ref _failed);

    public void Delivered(long latencyTicks)
    {
        Interlocked.Increment(ref _delivered);
        Latency.Record(latencyTicks);
    }

    public void Failed() => Interlocked.Increment(ref _failed);
}
