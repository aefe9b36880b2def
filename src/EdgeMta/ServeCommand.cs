// `edgemta serve`: start the server, print where it listens, run until SIGTERM or SIGINT, stop gracefully
// and exit 0 (SIGHUP reloads; every other signal is ServeSignals'). Its first line of stdout is
// `listening on ADDR:PORT` (one per address), which scripts and tests wait for; with --metrics-listen,
// `metrics on ADDR:PORT` follows; every log line comes after them. Under systemd (Systemd/): sockets it
// bound are served beside --listen, and it hears READY=1, WATCHDOG=1 and STOPPING=1.
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using EdgeMta.Metrics;
using EdgeMta.Server;
using EdgeMta.Server.Logging;
using EdgeMta.Systemd;

namespace EdgeMta;

internal static partial class ServeCommand
{
    public static async Task<int> RunAsync(ServerOptions options, CancellationToken cancellation)
    {
        // Socket activation first: the descriptors are ours only while LISTEN_PID says so, and the variables
        // go before anything could pass them on.
        try
        {
            HandedOverSockets handedOver = SocketActivation.TakeFromEnvironment();
            options = options with { ListeningSockets = handedOver.Take("smtp", takesUnnamed: true) };
            handedOver.CloseRest(Console.Error, served: "smtp");
        }
        catch (SocketActivationException e)
        {
            Console.Error.WriteLine($"edgemta: cannot start: socket activation: {e.Message}");
            return 1;
        }
        using ServiceManager systemd = ServiceManager.FromEnvironment(Console.Error);

        // The certificate is read once, before anything listens. A file that cannot be read is a failure to
        // start (exit 1, as for the spool); contents that are no usable certificate and key are a bad
        // command line (exit 2): the operator named the wrong files.
        ServerCertificate? tls = null;
        if (options.TlsCertificateFile is not null && options.TlsKeyFile is not null)
        {
            try
            {
                tls = ServerCertificate.Load(options.TlsCertificateFile, options.TlsKeyFile);
            }
            catch (CryptographicException e)
            {
                Console.Error.WriteLine($"edgemta: --tls-cert/--tls-key: not a usable PEM certificate and matching unencrypted private key ({e.Message})");
                return HostCommands.UsageError;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"edgemta: cannot read the TLS certificate or key: {e.Message}");
                return 1;
            }
            if (tls.Certificate.NotAfter < DateTime.Now)
            {
                Console.Error.WriteLine($"edgemta: warning: the TLS certificate expired on {tls.Certificate.NotAfter:yyyy-MM-dd}");
            }
        }
        using ServerCertificate? ownedTls = tls;
        long openFiles = RaiseOpenFileLimit();
        options = options with { MaxConnections = FitToOpenFiles(options.MaxConnections, openFiles, out string? warning) };
        if (warning is not null) Console.Error.WriteLine(warning);

        Stream stdout = Console.OpenStandardOutput();
        using var log = new ServerLog(stdout, options.Verbose, held: true);
        EdgeMtaServer server;
        try
        {
            server = EdgeMtaServer.Start(options, log, tls);
        }
        // ArgumentException: a socket systemd handed over that is not a listening TCP socket (TransportServer).
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException or InvalidDataException or ArgumentException)
        {
            Console.Error.WriteLine($"edgemta: cannot start: {e.Message}");
            return 1;
        }
        MetricsListener? metrics;
        try
        {
            metrics = StartMetrics(options, server);
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"edgemta: cannot start: --metrics-listen {options.MetricsListen}: {e.Message}");
            await server.StopAsync().ConfigureAwait(false);
            return 1;
        }
        await using MetricsListener? ownedMetrics = metrics;

        // Taken before `listening on` is printed: a script may send SIGTERM the moment it reads that line, and a
        // signal that arrives before these registrations kills the process (exit 143) instead of stopping it.
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using PosixSignalRegistration onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using PosixSignalRegistration onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using ServeSignals others = ServeSignals.Register(server.Reload.Request, log, TimeProvider.System);

        var listening = new StringBuilder();
        foreach (var endpoint in server.BoundEndPoints) listening.Append("listening on ").Append(endpoint).Append('\n');
        if (metrics is not null) listening.Append("metrics on ").Append(metrics.BoundEndPoint).Append('\n');
        log.Open(Encoding.ASCII.GetBytes(listening.ToString()));
        if (options.Spool.Sync == EdgeMta.Spool.SpoolSync.None)
        {
            Console.Error.WriteLine("edgemta: --sync none: accepted mail is NOT flushed to disk before 250; for benchmarks only");
        }
        server.LogRecovery();
        server.LogDelivery();
        systemd.Ready(ReadyStatus(server), () => server.FlusherHeartbeat, server.FlusherHeartbeatPeriod);

        using (cancellation.Register(() => stop.TrySetResult()))
        {
            await stop.Task.ConfigureAwait(false);
        }
        systemd.Stopping($"stopping: {server.Counters.Open} open connections, up to {options.ShutdownDeadline.TotalSeconds:F0} s");
        // The metrics port stays up through the drain (ownedMetrics closes it on return): the 30 s when
        // sessions finish their messages are the ones worth watching.
        await server.StopAsync().ConfigureAwait(false);
        return 0;

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true; // we exit on our own, after the graceful stop
            stop.TrySetResult();
        }
    }

    // `systemctl status` shows it: where mail is taken, and what the spool held at start.
    private static string ReadyStatus(EdgeMtaServer server) =>
        $"serving SMTP on {string.Join(", ", server.BoundEndPoints)}; spool recovered (messages={server.Recovery.Messages})";
    /// <summary>The metrics port of --metrics-listen (null without it); its own socket and accept loop, apart from
    /// the SMTP transport, so nothing a client does there reaches SMTP (MetricsListener's contract).</summary>
    private static MetricsListener? StartMetrics(ServerOptions options, EdgeMtaServer server)
    {
        if (options.MetricsListen is not { } endpoint) return null;
        var series = new ServerMetrics(server);
        return MetricsListener.Start(new MetricsListenerOptions { EndPoint = endpoint }, series.Write);
    }

    /// <summary>Undoes an inherited SIG_IGN on SIGINT, so PosixSignalRegistration can take it.</summary>
    public static void TakeInterruptSignal()
    {
        const int Sigint = 2;
        _ = signal(Sigint, 0 /* SIG_DFL */);
    }

    /// <summary>
    /// The connection limit in force. Past the descriptor limit accept(2) fails and clients wait in the backlog
    /// with no answer; below it the transport's own limit answers 421 4.7.0 at connect (docs/PROTOCOL.md). So
    /// the default (null) is 20,000 or what the open-file limit leaves after <see cref="ReservedDescriptors"/>,
    /// whichever is smaller, quietly: a stock limit is no mistake of the operator's. A value the operator gave
    /// above that is lowered too, with a warning, since it was asked for.
    /// </summary>
    internal static int FitToOpenFiles(int? requested, long openFiles, out string? warning)
    {
        int room = (int)Math.Clamp(openFiles - ReservedDescriptors, 1, int.MaxValue);
        warning = null;
        if (requested is not int given)
        {
            return Math.Min(ServerOptions.DefaultMaxConnections, room);
        }
        if (given > room)
        {
            warning = $"edgemta: warning: --max-connections {given} lowered to {room}: the open-file limit is {openFiles}";
            return room;
        }
        return given;
    }

    /// <summary>Descriptors kept for everything but connections: listeners, spool segments, the runtime's own
    /// (epoll, pipes), the log, and one accept that can still answer 421.</summary>
    private const int ReservedDescriptors = 128;

    // Every connection is a descriptor: 10,000 idle clients need more than the common soft limit of 1024.
    // Raise the soft limit to the hard one; the hard limit is the administrator's to set. Returns the limit now
    // in force (long.MaxValue when it cannot be read).
    private static long RaiseOpenFileLimit()
    {
        const int RlimitNofile = 7;
        if (getrlimit(RlimitNofile, out RLimit limit) != 0)
        {
            return long.MaxValue;
        }
        if (limit.Current < limit.Max)
        {
            RLimit raised = limit with { Current = limit.Max };
            if (setrlimit(RlimitNofile, in raised) == 0)
            {
                limit = raised;
            }
        }
        return limit.Current >= long.MaxValue ? long.MaxValue : (long)limit.Current;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [LibraryImport("libc")]
    private static partial nint signal(int signal, nint handler);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, in RLimit limit);
}
