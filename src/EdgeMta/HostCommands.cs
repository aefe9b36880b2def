// The command tree of PROTOCOL.md's command-line contract: `edgemta [serve] [flags]`, the `spool`
// operator commands, the `queue` commands (docs/DELIVERY.md, QueueCommand.cs), --help and --version.
// Exit codes: 0 done, 1 failure (or damage found by verify; for queue: an id not found), 2 a bad command line.
using System.CommandLine;
using EdgeMta.Spool;

namespace EdgeMta;

internal static class HostCommands
{
    public const int UsageError = 2;

    public static RootCommand Build()
    {
        var root = new RootCommand("EdgeMta: an edge SMTP server that queues every accepted message durably for the mail system behind it");
        var rootFlags = new ServeFlags();
        rootFlags.AddTo(root);
        root.SetAction((p, ct) => ServeCommand.RunAsync(rootFlags.ToOptions(p), ct));

        var serve = new Command("serve", "Serve SMTP (the default when no command is named)");
        var serveFlags = new ServeFlags();
        serveFlags.AddTo(serve);
        serve.SetAction((p, ct) => ServeCommand.RunAsync(serveFlags.ToOptions(p), ct));
        root.Subcommands.Add(serve);

        root.Subcommands.Add(SpoolCommand());
        root.Subcommands.Add(QueueCommand.Build());
        return root;
    }

    private static Command SpoolCommand()
    {
        var spool = new Command("spool", "Operator commands on a spool directory (run them while the server is stopped, or on a copy)");
        spool.Subcommands.Add(Reading("stats", "Counts: messages, bytes, segments, damaged records",
            (dir, json) => SpoolCommands.Stats(dir, json, Console.Out)));
        spool.Subcommands.Add(Reading("list", "One line a message: id, time, delivery state (from the journal), sender, recipients, size",
            (dir, json) => SpoolCommands.List(dir, json, Console.Out)));
        spool.Subcommands.Add(Writing("export", "One <id>.eml (the exact accepted bytes) and <id>.json (the envelope) a message",
            (dir, outDir) => SpoolCommands.Export(dir, outDir, Console.Out)));
        spool.Subcommands.Add(Writing("drain", "Export each message not yet delivered, then mark it consumed durably; emptied segments are deleted",
            (dir, outDir) => SpoolCommands.Drain(dir, outDir, Console.Out)));

        var verify = new Command("verify", "Check every record; exit 1 on damage");
        Option<DirectoryInfo> verifyDir = SpoolDirectory();
        verify.Options.Add(verifyDir);
        verify.SetAction(p => SpoolCommands.Verify(p.GetValue(verifyDir)!.FullName, Console.Out));
        spool.Subcommands.Add(verify);
        return spool;
    }

    private static Command Reading(string name, string description, Func<string, bool, int> run)
    {
        var command = new Command(name, description);
        Option<DirectoryInfo> dir = SpoolDirectory();
        var json = new Option<bool>("--json") { Description = "JSON instead of text" };
        command.Options.Add(dir);
        command.Options.Add(json);
        command.SetAction(p => run(p.GetValue(dir)!.FullName, p.GetValue(json)));
        return command;
    }

    private static Command Writing(string name, string description, Func<string, string, int> run)
    {
        var command = new Command(name, description);
        Option<DirectoryInfo> dir = SpoolDirectory();
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Directory to write into (created if missing)", Required = true };
        command.Options.Add(dir);
        command.Options.Add(outDir);
        command.SetAction(p => run(p.GetValue(dir)!.FullName, p.GetValue(outDir)!.FullName));
        return command;
    }

    private static Option<DirectoryInfo> SpoolDirectory()
    {
        var option = new Option<DirectoryInfo>("--spool") { Description = "Spool directory", Required = true };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<DirectoryInfo>() is { Exists: false } d) r.AddError($"--spool: no such directory {d.FullName}");
        });
        return option;
    }
}
