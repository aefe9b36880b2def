// What edgemta tells systemd, and when (sd_notify(3) states, docs/PROTOCOL.md "Operations"):
// - READY=1 with a STATUS= line, once the spool is recovered and every listener is bound (the host calls
//   Ready right after its `listening on` lines), so `systemctl start` returns when mail can be taken;
// - WATCHDOG=1 from then on, when WatchdogSec= asks for it, while the spool's writers live (ServiceWatchdog);
// - STOPPING=1 when a SIGTERM or SIGINT starts the graceful stop, and the pings end there (the spool writers
//   stop with the spool, and systemd stops watching at STOPPING=1 anyway).
// What it does not do: socket activation (SocketActivation.cs) or signals (the host's).
// How it fails: never fatally; with no NOTIFY_SOCKET it does nothing at all.
namespace EdgeMta.Systemd;

internal sealed class ServiceManager : IDisposable
{
    private readonly ServiceNotifier _notifier;
    private readonly TimeSpan? _watchdogInterval;
    private readonly TextWriter _errors;
    private ServiceWatchdog? _watchdog;

    private ServiceManager(ServiceNotifier notifier, TimeSpan? watchdogInterval, TextWriter errors)
    {
        _notifier = notifier;
        _watchdogInterval = watchdogInterval;
        _errors = errors;
    }

    /// <summary>From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID.</summary>
    public static ServiceManager FromEnvironment(TextWriter errors)
    {
        ServiceNotifier notifier = ServiceNotifier.FromEnvironment(errors);
        TimeSpan? interval = WatchdogRule.Requested(Environment.GetEnvironmentVariable("WATCHDOG_USEC"),
            Environment.GetEnvironmentVariable("WATCHDOG_PID"), Environment.ProcessId, out string? problem);
        if (problem is not null) errors.WriteLine($"edgemta: warning: {problem}; no watchdog pings");
        return new ServiceManager(notifier, notifier.Enabled ? interval : null, errors);
    }

    /// <summary>READY=1 and <paramref name="status"/>; then the watchdog, fed by <paramref name="heartbeat"/>.</summary>
    public void Ready(string status, Func<long> heartbeat, TimeSpan heartbeatPeriod)
    {
        if (!_notifier.Enabled) return;
        _notifier.Send("READY=1\nSTATUS=" + status);
        if (_watchdogInterval is { } interval)
        {
            _watchdog = new ServiceWatchdog(_notifier, new WatchdogRule(interval, heartbeatPeriod), heartbeat, TimeProvider.System, _errors);
            _watchdog.Start();
        }
    }

    /// <summary>STOPPING=1 and <paramref name="status"/>; no more watchdog pings.</summary>
    public void Stopping(string status)
    {
        _watchdog?.Dispose();
        _watchdog = null;
        _notifier.Send("STOPPING=1\nSTATUS=" + status);
    }

    public void Dispose()
    {
        _watchdog?.Dispose();
        _notifier.Dispose();
    }
}
