// Contract: one connection's blocklist screening (docs/SCREENING.md "DNS blocklists and allowlists"), the
// ISessionScreening of SessionScreening.cs.
//
// Start, called when the connection opens (before the greeting, which it never delays): a verdict cached for
// the client is known at once; otherwise every zone is asked in parallel and Start returns. Each answer (or
// the resolver's --dns-timeout, which counts as not listed) arrives on the resolver's thread; the last one
// makes the verdict, stores it in the cache for the answers' smallest TTL (60 s, the cache's floor, when a
// zone failed, so a dead resolver is not asked again for every connection of one client), logs
// `dnsbl-listed client=ADDR zones=... score=N` when any site matched, and, if the session was told Pending,
// calls the handler's verdict-ready callback, which resumes the connection so the session asks again.
//
// The session's questions, by --dnsbl-action, for a blocked client:
// - enforce: connect, HELO and MAIL accepted (MAIL is logged by the session as usual); each RCPT waits for
//   the verdict (Pending), then `550 5.7.1 Service unavailable; client [ADDR] blocked using ZONE`
//   (postscreen_early.c's PSC_DNSBL_FORMAT), the session going on.
// - drop: `521 5.7.1 ...` and close at connect when the verdict is already known (from the cache), else at
//   HELO/EHLO, which waits for it; MAIL and RCPT wait too (a client that skips HELO gets no further).
// - ignore: never waits, never refuses; the verdict is logged and counted.
// The first refusal of a connection is logged once (dnsbl-refused) and counted (edgemta_dnsbl_blocked_total).
//
// Memory while waiting: this object (pooled with its handler) and one small entry per zone in the resolver;
// no buffer. Threads: answers and the session's questions meet under one short lock; the callback runs outside
// it. Late answers for an earlier connection are told apart by a generation number in the query token.
using System.Buffers;
using System.Net;
using System.Text;
using EdgeMta.Policy;
using EdgeMta.Protocol;
using EdgeMta.Server.Dns;
using EdgeMta.Server.Logging;

namespace EdgeMta.Server.Screening;

/// <summary>The blocklist verdict of one connection, and the session's answers from it.</summary>
public sealed class DnsblScreening : IConnectionScreening, IDnsAnswerSink
{
    private const int GenerationMask = 0x7F_FFFF; // 23 bits above the 8 of the site index in a token

    private readonly Blocklists _lists;
    private readonly Lock _gate = new();
    private readonly bool[] _matched;
    private int _generation;
    private int _remaining;
    private TimeSpan _ttl;
    private bool _failed;
    private DnsblVerdict? _verdict = DnsblVerdict.Clean;
    private bool _waiting;
    private Action? _ready;
    private IPAddress? _client;
    private byte[]? _refusal;

    private readonly Action? _onVerdictKnown;

    internal DnsblScreening(Blocklists lists, IVerdictListener? listener)
    {
        _lists = lists;
        _matched = new bool[lists.Score.Sites.Count];
        _onVerdictKnown = listener is null ? null : listener.OnVerdictKnown; // one delegate per pooled handler
    }

    /// <summary>IConnectionScreening: the handler's connection opens. No client address (a transport that
    /// knows none): nothing to ask, the client is clean.</summary>
    void IConnectionScreening.Open(IPAddress? client, long connection)
    {
        if (client is null || _onVerdictKnown is null)
        {
            Stop();
            return;
        }
        Start(client, _onVerdictKnown);
    }

    void IConnectionScreening.Close() => Stop();

    /// <summary>The verdict, once every zone has answered or timed out (or from the cache); null before.</summary>
    public DnsblVerdict? Verdict
    {
        get
        {
            lock (_gate) return _verdict;
        }
    }

    /// <summary>Asks every zone about <paramref name="client"/>, or takes the cached verdict. Returns true when
    /// the verdict is known already (then <paramref name="verdictReady"/> is never called for this connection);
    /// otherwise <paramref name="verdictReady"/> is called once, on a resolver thread, after the verdict is known,
    /// if and only if the session was answered Pending meanwhile.</summary>
    public bool Start(IPAddress client, Action verdictReady)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(verdictReady);
        bool cached = _lists.Cache.TryGet(client, out DnsblVerdict known);
        int generation;
        lock (_gate)
        {
            generation = _generation = (_generation + 1) & GenerationMask;
            _client = client;
            _ready = verdictReady;
            _waiting = false;
            _refusal = null;
            _failed = false;
            _ttl = TimeSpan.MaxValue;
            Array.Clear(_matched);
            _verdict = cached ? known : null;
            _remaining = _matched.Length + 1; // one share for Start itself: answers arriving inline cannot finish early
        }
        if (cached)
        {
            Announce(known);
            return true;
        }
        IReadOnlyList<DnsblSite> sites = _lists.Score.Sites;
        for (int i = 0; i < sites.Count; i++)
        {
            _lists.Resolver.Query(DnsblScore.QueryName(client, sites[i].Zone), this, generation << 8 | i);
        }
        return Arrive(generation);
    }

    /// <summary>The connection closed: answers still in flight are ignored, the callback is never called.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _generation = (_generation + 1) & GenerationMask;
            _ready = null;
            _waiting = false;
            _verdict = DnsblVerdict.Clean;
        }
    }

    void IDnsAnswerSink.OnAnswer(int token, DnsAnswer answer)
    {
        int site = token & 0xFF, generation = token >> 8;
        bool listed = false;
        lock (_gate)
        {
            if (generation != _generation || _verdict is not null) return; // an earlier connection's answer
            if (answer.Result is DnsResult.Answered or DnsResult.NoSuchName)
            {
                listed = _lists.Score.Sites[site].MatchesAny(answer.Addresses);
                _matched[site] = listed;
                if (answer.Ttl < _ttl) _ttl = answer.Ttl;
            }
            else
            {
                _failed = true;
            }
        }
        _lists.Counters.CountQuery(listed, answer.Result);
        if (answer.Result is not (DnsResult.Answered or DnsResult.NoSuchName)) _lists.Trouble(site, answer.Result);
        Arrive(generation);
    }

    public ScreeningAnswer OnConnect(IBufferWriter<byte> output)
    {
        if (_lists.Options.Action != DnsblAction.Drop) return ScreeningAnswer.Accept;
        DnsblVerdict? verdict = Verdict; // at connect only a known verdict counts: the greeting never waits
        return verdict is { Blocked: true } ? Refuse(verdict, output) : ScreeningAnswer.Accept;
    }

    public ScreeningAnswer OnHello(IBufferWriter<byte> output) =>
        _lists.Options.Action == DnsblAction.Drop ? Decide(output) : ScreeningAnswer.Accept;

    public ScreeningAnswer OnMail(IBufferWriter<byte> output) =>
        _lists.Options.Action == DnsblAction.Drop ? Decide(output) : ScreeningAnswer.Accept;

    public ScreeningAnswer OnRecipient(IBufferWriter<byte> output) =>
        _lists.Options.Action == DnsblAction.Ignore ? ScreeningAnswer.Accept : Decide(output);

    // Pending until the verdict is known (the callback then resumes the session), then refuse or accept.
    private ScreeningAnswer Decide(IBufferWriter<byte> output)
    {
        DnsblVerdict? verdict;
        lock (_gate)
        {
            verdict = _verdict;
            if (verdict is null)
            {
                _waiting = true;
                return ScreeningAnswer.Pending;
            }
        }
        return verdict.Blocked ? Refuse(verdict, output) : ScreeningAnswer.Accept;
    }

    private ScreeningAnswer Refuse(DnsblVerdict verdict, IBufferWriter<byte> output)
    {
        DnsblAction action = _lists.Options.Action;
        if (_refusal is null)
        {
            string client = _client?.ToString() ?? "unknown";
            _refusal = Encoding.ASCII.GetBytes(
                $"{(action == DnsblAction.Drop ? "521" : "550")} 5.7.1 Service unavailable; client [{client}] blocked using {verdict.ReplyZone}\r\n");
            _lists.Counters.CountBlocked(action);
            _lists.Log.Begin(LogEvent.DnsblRefused).Field("client"u8, client).Field("zone"u8, verdict.ReplyZone)
                .Field("action"u8, action == DnsblAction.Drop ? "drop"u8 : "enforce"u8).End();
        }
        output.Write(_refusal);
        return action == DnsblAction.Drop ? ScreeningAnswer.RefuseAndClose : ScreeningAnswer.Refuse;
    }

    // One share of the verdict done (an answer, or Start's own). True when the verdict is known now.
    private bool Arrive(int generation)
    {
        DnsblVerdict verdict;
        TimeSpan ttl;
        IPAddress client;
        Action? wake = null;
        lock (_gate)
        {
            if (generation != _generation) return false;
            if (--_remaining > 0) return false;
            if (_verdict is not null) return true;
            verdict = _lists.Score.Verdict(_matched);
            _verdict = verdict;
            ttl = _failed ? DnsblVerdictCache.MinTtl : _ttl;
            client = _client!;
            if (_waiting) wake = _ready;
            _waiting = false;
        }
        _lists.Cache.Store(client, verdict, ttl);
        Announce(verdict);
        wake?.Invoke();
        return true;
    }

    // The verdict's log line (listed connections only) and, for ignore, its count.
    private void Announce(DnsblVerdict verdict)
    {
        if (!verdict.Listed) return;
        _lists.Log.Begin(LogEvent.DnsblListed).Field("client"u8, _client?.ToString()).Field("zones"u8, verdict.ListedZones)
            .Field("score"u8, verdict.Score).End();
        if (verdict.Blocked && _lists.Options.Action == DnsblAction.Ignore) _lists.Counters.CountBlocked(DnsblAction.Ignore);
    }
}
