// The edgemta host: parses the command line (PROTOCOL.md's contract), then either serves or runs a spool
// operator command. Everything else lives in the libraries; this file only wires them to a process:
// stdout, exit codes, signals and process limits.
using System.CommandLine;
using EdgeMta;

// PROTOCOL.md: SIGINT stops the server gracefully, like SIGTERM. A shell starts background jobs with SIGINT
// ignored, and .NET leaves an inherited SIG_IGN alone, so a server started from a script would never see
// it. Restore the default before the runtime's signal layer first looks (any Console use does that).
ServeCommand.TakeInterruptSignal();

// Socket completions run inline on the epoll threads instead of hopping to the thread pool: docs/PERF-NOTES.md
// measured 80 µs of CPU per message instead of 249 for one session. Safe because no handler blocks (the
// one wait, the spool flush, is on the spool's own thread). Read by the runtime at the first socket, so it
// is set before anything else; an operator's own setting wins.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

// With inline completions the runtime starts one epoll thread per processor. The spool's writer threads are
// busy too: they send every durable 250 and drive those connections on. One epoll thread fewer leaves them
// a core. On this 2-core machine, one epoll thread instead of two cut server CPU per message by
// 7 to 18% in every cell tried (1 KiB and 64 KiB, 1 to 100 sessions) and kept or raised msg/s (README,
// "Threads"). The same runtime knob, so an operator's own setting wins here too.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT",
        Math.Max(1, Environment.ProcessorCount - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
}

RootCommand root = HostCommands.Build();
ParseResult parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    // One line, whatever the parser's message looks like: scripts read the exit code, people the line.
    string message = string.Join(' ', parse.Errors[0].Message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries));
    Console.Error.WriteLine($"edgemta: {message}");
    return HostCommands.UsageError;
}
// The serve command handles SIGTERM and SIGINT itself (graceful stop, exit 0): no parser-imposed kill timer.
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
