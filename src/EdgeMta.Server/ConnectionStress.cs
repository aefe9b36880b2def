// Contract: whether the server is under stress, from the number of open SMTP sessions against
// --max-connections, with hysteresis (SlowClientOptions: on above 80%, off below 70%), as Postfix's master
// sets stress=yes when its smtpd processes are all busy. Under stress new requests get the short timeouts
// and the low error limit (the handlers read Active when they arm a deadline), and at the moment stress
// begins every session already waiting for a command line is given at most the stress timeout from then
// (the Shorten callback, the transport's ShortenRequestDeadlines): the slow clients that filled the table
// are cut within seconds, not minutes, which is what frees slots for real clients.
// Each transition is one log line (`stress-on open=N max=M`, `stress-off open=N max=M`) and counted.
// What it does not do: refuse connections (the transport's --max-connections does), or judge any client.
// Cost: one interlocked add per session open and close; the lock is taken only when a mark is crossed.
using EdgeMta.Server.Logging;

namespace EdgeMta.Server;

/// <summary>The stress state of one server, and the counts the metrics publish.</summary>
public sealed class ConnectionStress
{
    private readonly Lock _gate = new();
    private readonly ServerLog? _log;
    private readonly int _max;
    private readonly int _onAbove;
    private readonly int _offBelow;
    private int _open;
    private int _active;
    private long _entered;
    private long _commandTimeouts;
    private long _dataTimeouts;

    /// <param name="maxConnections">The server's --max-connections; 0 or less: stress never begins.</param>
    public ConnectionStress(int maxConnections, SlowClientOptions options, ServerLog? log)
    {
        Options = options;
        _log = log;
        _max = maxConnections;
        // Integer marks: stress when open > 80% of max (33 of 40), off when open < 70% (27 of 40).
        _onAbove = maxConnections <= 0 ? int.MaxValue : (int)((long)maxConnections * options.StressThresholdPercent / 100);
        _offBelow = maxConnections <= 0 ? 0 : (int)((long)maxConnections * options.StressReleasePercent / 100);
    }

    public SlowClientOptions Options { get; }

    /// <summary>Called once, as stress begins, with the stress timeout: shortens the waits of sessions
    /// already open. Set by the server before it listens.</summary>
    public Action<TimeSpan>? Shorten { get; set; }

    /// <summary>Under stress now.</summary>
    public bool Active => Volatile.Read(ref _active) != 0;

    /// <summary>Times stress has begun since start.</summary>
    public long Entered => Interlocked.Read(ref _entered);

    /// <summary>SMTP sessions open now, as counted here.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Sessions cut because a command line was not complete in time (421 4.4.2).</summary>
    public long CommandTimeouts => Interlocked.Read(ref _commandTimeouts);

    /// <summary>Sessions cut inside DATA or BDAT: message text too slow or stopped (421 4.4.2).</summary>
    public long DataTimeouts => Interlocked.Read(ref _dataTimeouts);

    /// <summary>A session opened. Returns whether the server is under stress (after counting it).</summary>
    public bool Opened()
    {
        int open = Interlocked.Increment(ref _open);
        if (open > _onAbove && !Active)
        {
            Transition();
        }
        return Active;
    }

    /// <summary>A session closed.</summary>
    public void Closed()
    {
        int open = Interlocked.Decrement(ref _open);
        if (open < _offBelow && Active)
        {
            Transition();
        }
    }

    internal void CountTimeout(bool data)
    {
        if (data) Interlocked.Increment(ref _dataTimeouts);
        else Interlocked.Increment(ref _commandTimeouts);
    }

    // Under the lock, from the count as it is now (not as the caller saw it), so that racing opens and closes
    // leave the state agreeing with the count; each transition is logged exactly once.
    private void Transition()
    {
        bool began = false;
        int open;
        lock (_gate)
        {
            open = Volatile.Read(ref _open);
            if (!Active && open > _onAbove)
            {
                Interlocked.Increment(ref _entered);
                Volatile.Write(ref _active, 1);
                began = true;
                _log?.Begin(LogEvent.StressOn).Field("open"u8, open).Field("max"u8, _max).End();
            }
            else if (Active && open < _offBelow)
            {
                Volatile.Write(ref _active, 0);
                _log?.Begin(LogEvent.StressOff).Field("open"u8, open).Field("max"u8, _max).End();
            }
        }
        if (began)
        {
            Shorten?.Invoke(Options.StressTimeout); // outside the lock: it posts to every connection
        }
    }
}
