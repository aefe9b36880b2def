// The queue commands' request, as words and as the control.sock line (QueueControl.cs, docs/DELIVERY.md "Queue
// commands"): one grammar for the command line, the socket and every IQueueControl, so the running server and the
// offline spool refuse the same requests with the same words.
//
//   line  = verb *( SP word ) LF             ; at most MaxLineBytes, LF included
//   verb  = "list" / "show" / "flush" / "hold" / "release" / "delete" / "bounce"
//   word  = "--json" / "--all" / id           ; id: 1 to 16 ASCII letters and digits (the spool's queue ids)
//
// Which verb takes what: list no ids; show one or more ids; flush ids or none (every deferred message); hold,
// release, delete, bounce ids or --all, never both, never neither (an operator's "delete" with nothing named
// must not mean everything).
// What it does not do: look anything up (an unknown id is the control's exit 1, not a usage error).
// How it fails: TryParse and Check say false with one line of error; nothing here throws on bytes from a socket.
using System.Text;

namespace EdgeMta.Delivery;

public static class QueueRequestLine
{
    /// <summary>The most a request line may take, LF included (QueueControl.cs).</summary>
    public const int MaxLineBytes = 4096;

    /// <summary>More ids than this in one request is a usage error (4 KiB holds about 240 anyway).</summary>
    public const int MaxIds = 1000;

    /// <summary>The verb's word on the command line and on the socket.</summary>
    public static string Name(QueueVerb verb) => verb switch
    {
        QueueVerb.List => "list",
        QueueVerb.Show => "show",
        QueueVerb.Flush => "flush",
        QueueVerb.Hold => "hold",
        QueueVerb.Release => "release",
        QueueVerb.Delete => "delete",
        _ => "bounce",
    };

    public static bool TryVerb(ReadOnlySpan<char> word, out QueueVerb verb)
    {
        for (var v = QueueVerb.List; v <= QueueVerb.Bounce; v++)
        {
            if (word.SequenceEqual(Name(v)))
            {
                verb = v;
                return true;
            }
        }
        verb = default;
        return false;
    }

    /// <summary>A queue id as the spool writes them: 1 to 16 ASCII letters and digits.</summary>
    public static bool IsQueueId(ReadOnlySpan<char> word)
    {
        if (word.IsEmpty || word.Length > Spool.SpoolFormat.QueueIdSize) return false;
        foreach (char c in word)
        {
            if (!char.IsAsciiLetterOrDigit(c)) return false;
        }
        return true;
    }

    /// <summary>The line a client writes for <paramref name="request"/> (LF-terminated).</summary>
    public static string Format(QueueRequest request)
    {
        var line = new StringBuilder(Name(request.Verb));
        if (request.Json) line.Append(" --json");
        if (request.All) line.Append(" --all");
        foreach (string id in request.Ids) line.Append(' ').Append(id);
        return line.Append('\n').ToString();
    }

    /// <summary>Parses one request line (its LF, and a CR before it, already removed or not).</summary>
    public static bool TryParse(ReadOnlySpan<byte> line, out QueueRequest request, out string error)
    {
        request = null!;
        if (line.Length > MaxLineBytes) return Fail($"a request is at most {MaxLineBytes} bytes", out error);
        if (!line.IsEmpty && line[^1] == (byte)'\n') line = line[..^1];
        if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
        foreach (byte b in line)
        {
            // Only printable ASCII and spaces: ids, verbs and flags are all ASCII; anything else is not a request.
            if (b is < 0x20 or > 0x7E) return Fail("a request holds printable ASCII only", out error);
        }
        string[] words = Encoding.ASCII.GetString(line).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return TryParse(words, out request, out error);
    }

    /// <summary>Parses the words after `queue` on a command line, or a request line split at spaces: the verb,
    /// then --json, --all and ids in any order. --spool is the caller's, not a word here.</summary>
    public static bool TryParse(IReadOnlyList<string> words, out QueueRequest request, out string error)
    {
        request = null!;
        if (words.Count == 0) return Fail("name a queue command: list, show, flush, hold, release, delete or bounce", out error);
        if (!TryVerb(words[0], out var verb))
            return Fail($"unknown queue command '{Shorten(words[0])}' (list, show, flush, hold, release, delete, bounce)", out error);
        bool json = false, all = false;
        var ids = new List<string>();
        for (int i = 1; i < words.Count; i++)
        {
            string w = words[i];
            if (w == "--json") json = true;
            else if (w == "--all") all = true;
            else if (IsQueueId(w))
            {
                if (ids.Count == MaxIds) return Fail($"at most {MaxIds} ids in one request", out error);
                ids.Add(w);
            }
            else if (w.StartsWith('-')) return Fail($"queue {Name(verb)}: unknown option '{Shorten(w)}'", out error);
            else return Fail($"queue {Name(verb)}: '{Shorten(w)}' is not a queue id (1 to 16 letters and digits)", out error);
        }
        request = new QueueRequest(verb, json, all, ids);
        return Check(request, out error);
    }

    /// <summary>Whether the verb takes what the request gives it; a control checks this before acting.</summary>
    public static bool Check(QueueRequest request, out string error)
    {
        string name = Name(request.Verb);
        int n = request.Ids.Count;
        foreach (string id in request.Ids)
        {
            if (!IsQueueId(id)) return Fail($"queue {name}: '{Shorten(id)}' is not a queue id", out error);
        }
        switch (request.Verb)
        {
            case QueueVerb.List when n > 0 || request.All:
                return Fail("queue list takes no ids and no --all", out error);
            case QueueVerb.Show when n == 0 || request.All:
                return Fail("queue show needs one or more ids (and no --all)", out error);
            case QueueVerb.Flush when request.All:
                return Fail("queue flush takes ids or none (none: every deferred message), not --all", out error);
            case QueueVerb.Hold or QueueVerb.Release or QueueVerb.Delete or QueueVerb.Bounce when n > 0 == request.All:
                return Fail($"queue {name} needs ids or --all (one of them)", out error);
        }
        error = "";
        return true;
    }

    private static string Shorten(string word) => word.Length <= 40 ? word : word[..40] + "...";

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
