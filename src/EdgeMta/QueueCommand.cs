// `edgemta queue VERB --spool DIR [--json] [--all] [ID...]` (docs/DELIVERY.md "Queue commands"): asks the running
// server over DIR/control.sock; with none there (no socket file, or nothing listening on it) works on the spool
// directly under its lock (OfflineQueue). Prints the output and exits with the code: 0 done, 1 an id not found
// (the others still done), 2 bad usage or no spool.
// Output goes to stdout; an answer with exit 2 (a usage error, a spool in use, a failed journal write) goes to
// stderr, as the other commands' errors do. A bad command line is one stderr line and exit 2 before anything runs.
// What it does not do: decide anything about the queue; the server's IQueueControl or OfflineQueue does.
using System.CommandLine;
using EdgeMta.Delivery;

namespace EdgeMta;

internal static class QueueCommand
{
    public static Command Build()
    {
        var queue = new Command("queue", "The delivery queue: list, show, flush, hold, release, delete, bounce (live over control.sock, or offline)");
        queue.Subcommands.Add(Verb(QueueVerb.List, "A line per message: id, arrival, size, sender, then per recipient its state, attempts, next attempt, last reply"));
        queue.Subcommands.Add(Verb(QueueVerb.Show, "The envelope and each recipient's state and last reply"));
        queue.Subcommands.Add(Verb(QueueVerb.Flush, "Due now (no ID: every deferred message)"));
        queue.Subcommands.Add(Verb(QueueVerb.Hold, "Not delivered until released; survives restarts"));
        queue.Subcommands.Add(Verb(QueueVerb.Release, "Delivered again after a hold"));
        queue.Subcommands.Add(Verb(QueueVerb.Delete, "Gone for good, no bounce"));
        queue.Subcommands.Add(Verb(QueueVerb.Bounce, "Fail the pending recipients now (5.0.0), with a bounce"));
        return queue;
    }

    private static Command Verb(QueueVerb verb, string description)
    {
        var command = new Command(QueueRequestLine.Name(verb), description);
        var dir = new Option<DirectoryInfo>("--spool") { Description = "Spool directory", Required = true };
        dir.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<DirectoryInfo>() is { Exists: false } d) r.AddError($"--spool: no such directory {d.FullName}");
        });
        var json = new Option<bool>("--json") { Description = "One JSON object per line" };
        var all = new Option<bool>("--all") { Description = "Every message in the queue" };
        var ids = new Argument<string[]>("ID") { Description = "Queue ids", Arity = ArgumentArity.ZeroOrMore };
        command.Options.Add(dir);
        command.Options.Add(json);
        command.Options.Add(all);
        command.Arguments.Add(ids);
        command.SetAction((p, ct) =>
        {
            var request = new QueueRequest(verb, p.GetValue(json), p.GetValue(all), p.GetValue(ids) ?? []);
            return RunAsync(p.GetValue(dir)!.FullName, request, p.InvocationConfiguration.Output, p.InvocationConfiguration.Error, ct);
        });
        return command;
    }

    /// <summary>Runs one queue request on the spool of <paramref name="spool"/>, live or offline, and returns the
    /// process exit code.</summary>
    public static async Task<int> RunAsync(string spool, QueueRequest request, TextWriter output, TextWriter error, CancellationToken cancel)
    {
        if (!QueueRequestLine.Check(request, out string usage))
        {
            await error.WriteLineAsync($"edgemta: {usage}").ConfigureAwait(false);
            return HostCommands.UsageError;
        }
        var (served, result) = await QueueClient.TryRunAsync(spool, request, cancel: cancel).ConfigureAwait(false);
        if (!served) result = await new OfflineQueue(spool).RunAsync(request, cancel).ConfigureAwait(false);
        TextWriter to = result.ExitCode == HostCommands.UsageError ? error : output;
        await to.WriteAsync(result.Output).ConfigureAwait(false);
        await to.FlushAsync(cancel).ConfigureAwait(false);
        return result.ExitCode;
    }
}
