// The edgemta host. Command-line parsing and the serve/spool subcommands arrive with the binary's issue.
return 0;
