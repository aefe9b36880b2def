// The thread that pings systemd's watchdog (WATCHDOG=1) every half interval while the spool writers'
// heartbeat is fresh (WatchdogRule). Its own thread, not the thread pool: a pool starved by stuck
// work must not keep the pings going, and pings must not wait behind it either.
// What it does not do: restart anything. It only stops pinging; systemd then kills and restarts
// edgemta (WatchdogSec= and Restart=on-failure in deploy/systemd/edgemta.service).
// How it fails: a ping that cannot be sent is the notifier's one warning; a stale heartbeat is one
// line on stderr when it goes stale and one when it beats again, never one per tick.
namespace EdgeMta.Systemd;

internal sealed class ServiceWatchdog : IDisposable
{
    private readonly ServiceNotifier _notifier;
    private readonly WatchdogRule _rule;
    private readonly Func<long> _heartbeat;
    private readonly TimeProvider _time;
    private readonly TextWriter _errors;
    private readonly ManualResetEventSlim _stop = new();
    private Thread? _thread;
    private bool _stale;

    public ServiceWatchdog(ServiceNotifier notifier, WatchdogRule rule, Func<long> heartbeat, TimeProvider time, TextWriter errors)
    {
        _notifier = notifier;
        _rule = rule;
        _heartbeat = heartbeat;
        _time = time;
        _errors = errors;
    }

    /// <summary>Pings sent so far (for tests and the log).</summary>
    public long Pings { get; private set; }

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "systemd watchdog" };
        _thread.Start();
    }

    private void Run()
    {
        Tick(); // the first ping at once: systemd's timer starts at READY=1
        while (!_stop.Wait(_rule.PingEvery))
        {
            Tick();
        }
    }

    /// <summary>One turn: ping when the heartbeat is fresh; say so once when it goes stale, and once when it
    /// comes back. Returns whether it pinged.</summary>
    internal bool Tick()
    {
        long now = _time.GetTimestamp(), heartbeat = _heartbeat();
        if (_rule.ShouldPing(now, heartbeat, _time.TimestampFrequency))
        {
            if (_stale)
            {
                _stale = false;
                _errors.WriteLine("edgemta: the spool's writes return again; watchdog pings resume");
            }
            _notifier.Send("WATCHDOG=1");
            Pings++;
            return true;
        }
        if (!_stale)
        {
            _stale = true;
            double silent = WatchdogRule.Silence(now, heartbeat, _time.TimestampFrequency).TotalSeconds;
            _errors.WriteLine($"edgemta: warning: a spool write has not returned for {silent:F1} s; withholding WATCHDOG=1 so systemd restarts edgemta");
        }
        return false;
    }

    public void Dispose()
    {
        _stop.Set();
        _thread?.Join();
        _stop.Dispose();
    }
}
