// Contract: what each signal does to `edgemta serve` (docs/PROTOCOL.md "Operations"), besides SIGTERM and
// SIGINT, which ServeCommand takes for the graceful stop. SIGHUP asks the server to reload (ServerReload:
// coalesced, off this thread). Every other signal whose default action ends the process and that can only
// come from outside is caught and ignored with one `signal-ignored` line, at most one line a second (the
// next line counts those left out), so a storm cannot flood the log. Afterwards only SIGTERM, SIGINT and
// SIGKILL stop the server: a logrotate postrotate or a closed terminal no longer takes the MX down.
//
// Ignored, and why each would otherwise hurt:
//   SIGQUIT      Ctrl-\ on a terminal: a core dump (with message text in it) and every session dropped.
//   SIGUSR1/2    no meaning here; maddy-style "reopen logs" does not apply (the log is stdout).
//   SIGALRM, SIGVTALRM, SIGPROF   timers nothing in this process sets.
//   SIGIO (SIGPOLL), SIGPWR, SIGSTKFLT   async I/O we do not request, a UPS daemon's notice, unused on Linux.
//   SIGXCPU      the soft CPU limit's notice; the hard limit still ends the process (SIGKILL, setrlimit(2)).
//   SIGXFSZ      ignored, a write past RLIMIT_FSIZE fails with EFBIG instead, which the spool already
//                answers as a storage error (451, nothing acknowledged lost) rather than dying mid-commit.
//   SIGRTMIN+1 .. SIGRTMAX   real-time signals, unused here.
// Left alone on purpose:
//   SIGKILL, SIGSTOP                    cannot be caught.
//   SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS   faults: the runtime's to turn into an exception
//                                       or a crash; ignoring one would hide a bug (SIGSYS: a seccomp refusal).
//   SIGRTMIN                            the runtime's own: it sends it to its threads to suspend them for the GC
//                                       (INJECT_ACTIVATION_SIGNAL); a handler here would log every collection.
//   32 and 33                           glibc's (thread cancellation, set*id); sigaction(2) refuses them there.
//   SIGPIPE                             the runtime ignores it at start: a closed socket is EPIPE, a value.
//   SIGCHLD, SIGCONT, SIGWINCH, SIGURG  their default is to ignore or continue; the runtime uses the first three.
//   SIGTSTP, SIGTTIN, SIGTTOU           they stop, not end, the process: job control is the operator's.
// How it fails: a signal that cannot be registered (an exotic libc) is skipped with a line on stderr; the
// server still runs, with that signal's default action.
using System.Runtime.InteropServices;
using EdgeMta.Server.Logging;

namespace EdgeMta;

internal sealed partial class ServeSignals : IDisposable
{
    private const int Sighup = 1;

    private static readonly (int Number, string Name)[] Ignored =
    [
        (3, "QUIT"), (10, "USR1"), (12, "USR2"), (14, "ALRM"), (16, "STKFLT"), (24, "XCPU"), (25, "XFSZ"),
        (26, "VTALRM"), (27, "PROF"), (29, "IO"), (30, "PWR"),
    ];

    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly SignalLogLimit _limit;
    private readonly ServerLog _log;
    private readonly Action _reload;

    private ServeSignals(Action reload, ServerLog log, TimeProvider clock)
    {
        _reload = reload;
        _log = log;
        _limit = new SignalLogLimit(clock, TimeSpan.FromSeconds(1));
    }

    /// <summary>Takes SIGHUP (calls <paramref name="reload"/>, which must return at once) and the ignored signals.</summary>
    public static ServeSignals Register(Action reload, ServerLog log, TimeProvider clock)
    {
        var signals = new ServeSignals(reload, log, clock);
        // An inherited SIG_IGN (nohup) would keep SIGHUP from reaching the handler (the runtime respects it);
        // since SIGHUP no longer ends the process, taking it back only makes reload work under nohup.
        _ = signal(Sighup, 0 /* SIG_DFL */);
        signals.Add(Sighup, context =>
        {
            context.Cancel = true;
            signals._reload();
        });
        foreach ((int number, string name) in Ignored) signals.AddIgnored(number, name);
        int first = __libc_current_sigrtmin(), last = __libc_current_sigrtmax();
        for (int number = first + 1; number <= last && number - first <= 64; number++)
        {
            signals.AddIgnored(number, $"RTMIN+{number - first}");
        }
        return signals;
    }

    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations) registration.Dispose();
        _registrations.Clear();
    }

    private void AddIgnored(int number, string name) => Add(number, context =>
    {
        context.Cancel = true; // the runtime would otherwise restore the default action and re-raise it
        if (_limit.TryTake(out long suppressed))
        {
            _log.Begin(LogEvent.SignalIgnored)
                .Field("signal"u8, name)
                .Field("number"u8, number)
                .Field("suppressed"u8, suppressed)
                .End();
        }
    });

    private void Add(int number, Action<PosixSignalContext> handler)
    {
        try
        {
            // PosixSignal names only the portable signals; on Linux the runtime takes any raw number up to SIGRTMAX.
            _registrations.Add(PosixSignalRegistration.Create((PosixSignal)number, handler));
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"edgemta: warning: signal {number} keeps its default action: {e.Message}");
        }
    }

    [LibraryImport("libc")]
    private static partial nint signal(int signal, nint handler);

    [LibraryImport("libc")]
    private static partial int __libc_current_sigrtmin();

    [LibraryImport("libc")]
    private static partial int __libc_current_sigrtmax();
}

/// <summary>At most one log line per period for ignored signals; counts the ones it holds back.</summary>
internal sealed class SignalLogLimit(TimeProvider clock, TimeSpan period)
{
    private readonly Lock _lock = new();
    private long _next = long.MinValue;
    private long _suppressed;

    /// <summary>True when a line may be written now; <paramref name="suppressed"/> is how many were held back since the last.</summary>
    public bool TryTake(out long suppressed)
    {
        long now = clock.GetTimestamp();
        lock (_lock)
        {
            if (now < _next)
            {
                _suppressed++;
                suppressed = 0;
                return false;
            }
            _next = now + (long)(period.TotalSeconds * clock.TimestampFrequency);
            suppressed = _suppressed;
            _suppressed = 0;
            return true;
        }
    }
}
