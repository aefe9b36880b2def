// The queue commands' seam (docs/DELIVERY.md "Queue commands"): one request, one result, the same whether a
// running server answers it over control.sock or the CLI works on the spool directly (offline, under the spool's
// lock). The request is what the command line said; the result is the exact text to print and the exit code.
//
// Wire form on control.sock (a Unix stream socket, mode 0600): the client writes one request line
//   VERB [--json] [--all] [ID ...] LF        (VERB: list, show, flush, hold, release, delete, bounce; at most 4 KiB)
// and half-closes; the server answers with one line "exit N" LF, then the output text, then closes.
// What it is not: a general RPC. Operator actions are durable before the result is written (journal flushed).
namespace EdgeMta.Delivery;

public enum QueueVerb : byte { List, Show, Flush, Hold, Release, Delete, Bounce }

public sealed record QueueRequest(QueueVerb Verb, bool Json, bool All, IReadOnlyList<string> Ids);

/// <summary>Exit code 0 done, 1 an ID not found (the others still done), 2 bad usage or no spool.</summary>
public readonly record struct QueueResult(int ExitCode, string Output);

/// <summary>One message as the list and show commands report it.</summary>
public sealed record QueueItem(
    string QueueId,
    DateTimeOffset Arrival,
    long Size,
    string Sender,
    bool Held,
    IReadOnlyList<QueueItemRecipient> Recipients);

/// <summary>State is one of pending, deferred, delivered, failed, held (docs/DELIVERY.md).</summary>
public sealed record QueueItemRecipient(
    string Address,
    string State,
    int Attempts,
    DateTimeOffset? NextAttempt,
    string? LastReply);

/// <summary>Answers queue requests: the live agent, or the offline spool.</summary>
public interface IQueueControl
{
    /// <summary>Runs <paramref name="request"/>; never throws for bad ids (exit 1) or usage (exit 2).</summary>
    ValueTask<QueueResult> RunAsync(QueueRequest request, CancellationToken cancel);
}
