// Contract: one SMTP server session (RFC 5321), the one seam the server uses: bytes in, replies out.
//
// The host owns the socket and the buffers. It calls Start once per connection, then Process with the
// bytes it has; Process answers every complete command in order (pipelining, RFC 2920), writes the
// replies into the output, and says how many input bytes it consumed: the host keeps the rest and calls
// again when more arrive (a command split anywhere simply waits). At the end of a message Process stops
// with AwaitingCommit; the host makes the message durable and calls CompleteMessage, then Process again
// with what is left. StartTls asks the host to switch to TLS now (the pipelined plaintext was discarded,
// CVE-2011-0411) and to call OnTlsEstablished. Close means: flush the output, then close.
// It is synchronous and does no I/O, no logging and no allocation per command or per message once warm;
// it reports each command line to an ISessionObserver (SessionObserver.cs), and the host logs.
// A client mistake is a reply, never an exception; an exception means a host bug (calling out of turn).
using System.Buffers;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol;

/// <summary>One SMTP session; pooled per connection by the server (Reset for reuse).</summary>
public sealed partial class SmtpSession
{
    private enum Phase : byte
    {
        Idle,
        AwaitingGreeting,
        // OnConnect answered Pending: the greeting waits for ContinueAfterVerdict (SmtpSession.Screening.cs).
        AwaitingConnectVerdict,
        Commands,
        AwaitingCommit,
        Closed,
    }

    private readonly SmtpSessionOptions _options;
    private readonly PreparedOptions _prepared;
    // The directory of the session in progress, given at Start: the server re-reads --recipients on SIGHUP
    // and each new session takes the one current then, while sessions in flight keep theirs. Between
    // sessions (after Reset) the constructor's stands in, so a pooled session keeps no old one alive.
    private readonly RecipientDirectory _defaultDirectory;
    private RecipientDirectory _directory;
    private readonly TimeProvider _clock;
    private readonly ISessionObserver? _observer;
    private readonly Envelope _envelope = new();
    private readonly DataReader _dataReader;
    private readonly BdatReader _bdatReader;
    private readonly StoreSink _sink = new();
    private readonly byte[] _queueId = new byte[64];
    private readonly int _lineLimit;

    private IMessageStore? _store;
    private ISessionScreening? _screening;
    // Process stopped with AwaitingVerdict: the first line parsed next is the same one, offered again; it is
    // not reported or counted a second time (SmtpSession.Screening.cs).
    private bool _lineReoffered;
    private Phase _phase;
    private SmtpState _state = SmtpState.Closed;
    private int _queueIdLength;
    private int _errors;
    private int _errorLimit;
    private bool _skippingLongLine;
    private bool _tls;
    private bool _storeOpen;
    private bool _recipientTried;
    private int _recipientOvershoot;
    private bool _shuttingDown;
    private ScreenedOut _screenedOut;
    // Set when Process stops for a commit with a whole QUIT line already after the message: a shutdown
    // then lets that QUIT have its 221 (RFC 5321 §4.1.1.10) instead of answering 421 in its place.
    private bool _quitPipelined;
    // BDAT (RFC 3030): a chunk being read, whether it is the LAST one, the octets of a refused chunk to skip.
    private bool _chunkActive;
    private bool _chunkLast;
    private bool _chunking;
    private long _chunkLength;
    private long _discard;

    /// <param name="observer">Hears each command line as it is parsed (null: nobody listens).</param>
    public SmtpSession(SmtpSessionOptions options, RecipientDirectory directory, TimeProvider clock, ISessionObserver? observer = null)
    {
        _options = options;
        _prepared = options.Prepared;
        _defaultDirectory = directory;
        _directory = directory;
        _clock = clock;
        _observer = observer;
        _lineLimit = options.LineLimit;
        _errorLimit = options.ErrorLimit;
        _dataReader = new DataReader(options.MaxMessageSize, options.BareNewlines);
        _bdatReader = new BdatReader(options.MaxMessageSize);
    }

    public SmtpState State => _state;
    public SmtpSessionOptions Options => _options;
    /// <summary>The envelope of the session and its transaction in progress.</summary>
    public Envelope Envelope => _envelope;
    /// <summary>Errors counted toward the limit (Postfix smtpd_hard_error_limit).</summary>
    public int ErrorCount => _errors;
    /// <summary>The idle limit now: the data timeout while message text is expected, else the command timeout (RFC 5321 §4.5.3.2).</summary>
    public TimeSpan CurrentTimeout => _state == SmtpState.WritingMail || _chunkActive || _discard > 0 ? _options.DataTimeout : _options.CommandTimeout;
    /// <summary>Set when the session closed because the client was an early talker or not an SMTP client.</summary>
    public ScreenedOut ScreenedOut => _screenedOut;
    /// <summary>Start waits this long before the greeting (the host calls OnGreetDelayElapsed).</summary>
    public bool AwaitingGreeting => _phase == Phase.AwaitingGreeting;

    /// <summary>
    /// Begins a session: writes the 220 greeting (or nothing while a greet delay runs), or 521 in
    /// --refuse-mail mode (RFC 7504) and Close.
    /// </summary>
    public SessionStatus Start(in ClientInfo client, IMessageStore store, IBufferWriter<byte> output) =>
        Start(client, store, output, _defaultDirectory);

    /// <summary>As <see cref="Start(in ClientInfo, IMessageStore, IBufferWriter{byte})"/>, with the recipient
    /// directory this session uses until Reset (the one current at connect, docs/PROTOCOL.md "Operations").</summary>
    public SessionStatus Start(in ClientInfo client, IMessageStore store, IBufferWriter<byte> output, RecipientDirectory directory) =>
        Start(client, store, output, directory, screening: null);

    /// <summary>As the other Start, asking <paramref name="screening"/> at connect, EHLO/HELO, MAIL and RCPT
    /// (SessionScreening.cs); null asks nothing. Answers AwaitingVerdict when OnConnect is Pending: the host
    /// waits for the verdict, then calls <see cref="ContinueAfterVerdict"/>.</summary>
    public SessionStatus Start(in ClientInfo client, IMessageStore store, IBufferWriter<byte> output, RecipientDirectory directory,
        ISessionScreening? screening)
    {
        if (_phase != Phase.Idle)
        {
            throw new InvalidOperationException("Start on a session in use: call Reset first");
        }
        _directory = directory;
        _store = store;
        _screening = screening;
        _sink.Store = store;
        _envelope.SetClient(client.Address);
        if (_options.RefuseMail)
        {
            output.Write(_prepared.RefuseMail);
            return Close();
        }
        _state = SmtpState.Connected;
        if (_options.GreetDelay > TimeSpan.Zero)
        {
            // postscreen's teaser: a bot that answers the first line of the greeting, not its last (RFC 5321
            // §4.2.1: a multi-line reply ends only with the line whose code is followed by a space), talks
            // before the final line and is caught; a conforming client waits for it.
            _phase = Phase.AwaitingGreeting;
            output.Write(_prepared.GreetingTeaser);
            return SessionStatus.Continue;
        }
        return Greet(output);
    }

    /// <summary>The greet delay ran out with the client silent: send the 220 (once the screening allows it:
    /// AwaitingVerdict while OnConnect is Pending).</summary>
    public SessionStatus OnGreetDelayElapsed(IBufferWriter<byte> output)
    {
        if (_phase == Phase.AwaitingGreeting)
        {
            return Greet(output);
        }
        return _phase == Phase.Closed ? SessionStatus.Close : SessionStatus.Continue;
    }

    /// <summary>
    /// Answers the complete commands in <paramref name="input"/> (and reads message text in DATA/BDAT).
    /// <paramref name="consumed"/>: the bytes used; the host keeps the rest for the next call. One call answers
    /// at most <see cref="MaxCommandsPerPass"/> commands, so a flood of pipelined commands with long replies
    /// (HELP) cannot grow the output without bound: the host sends those replies, then offers the rest again.
    /// </summary>
    public SessionStatus Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output, out int consumed)
    {
        consumed = 0;
        int commands = 0;
        switch (_phase)
        {
            case Phase.Commands:
                _quitPipelined = false; // it spoke of the input before this call, which now starts with it
                break;
            case Phase.AwaitingGreeting:
                if (input.IsEmpty)
                {
                    return SessionStatus.Continue;
                }
                // An early talker (PROTOCOL.md, as Postfix postscreen's pregreet test).
                consumed = input.Length;
                output.Write(Replies.SynchronizationError);
                _screenedOut = ScreenedOut.EarlyTalker;
                return Close();
            case Phase.Closed:
                consumed = input.Length;
                return SessionStatus.Close;
            case Phase.AwaitingConnectVerdict:
                return SessionStatus.AwaitingVerdict; // the host reads nothing until ContinueAfterVerdict
            case Phase.AwaitingCommit:
                throw new InvalidOperationException("Process while a message awaits CompleteMessage");
            default:
                throw new InvalidOperationException("Process before Start");
        }

        while (true)
        {
            ReadOnlySpan<byte> rest = input[consumed..];
            if (_state == SmtpState.WritingMail)
            {
                if (rest.IsEmpty)
                {
                    return SessionStatus.Continue;
                }
                DataStatus data = _dataReader.Read(rest, _sink, out int used);
                consumed += used;
                if (data == DataStatus.NeedMore)
                {
                    return SessionStatus.Continue;
                }
                SessionStatus end = EndOfData(output);
                if (end == SessionStatus.AwaitingCommit)
                {
                    _quitPipelined = QuitIsNext(input[consumed..]);
                }
                if (end != SessionStatus.Continue)
                {
                    return end;
                }
                if (EndsForShutdown(input[consumed..], output))
                {
                    consumed = input.Length;
                    return SessionStatus.Close;
                }
                continue;
            }
            if (_chunkActive || _discard > 0)
            {
                if (!ReadChunk(rest, output, ref consumed, out SessionStatus chunkStatus))
                {
                    if (chunkStatus == SessionStatus.AwaitingCommit)
                    {
                        _quitPipelined = QuitIsNext(input[consumed..]);
                    }
                    return chunkStatus;
                }
                if (EndsForShutdown(input[consumed..], output))
                {
                    consumed = input.Length;
                    return SessionStatus.Close;
                }
                continue;
            }
            if (rest.IsEmpty)
            {
                return SessionStatus.Continue;
            }
            if (_skippingLongLine)
            {
                int lf = rest.IndexOf((byte)'\n');
                if (lf < 0)
                {
                    consumed = input.Length;
                    return SessionStatus.Continue;
                }
                consumed += lf + 1;
                _skippingLongLine = false;
                _options.Commands?.Count(SmtpVerb.Unknown); // metrics: the long line is answered as Execute's are
                if (Refuse(Replies.LineTooLong, output))
                {
                    return SessionStatus.Close;
                }
                continue;
            }

            ParseStatus parsed = CommandParser.TryParse(rest, _lineLimit, out SmtpCommand command);
            if (parsed == ParseStatus.Incomplete)
            {
                return SessionStatus.Continue;
            }
            if (parsed == ParseStatus.Error)
            {
                // Over the limit with its end not yet here: skip to the LF, then answer 500 5.5.6.
                consumed = input.Length;
                _skippingLongLine = true;
                return SessionStatus.Continue;
            }
            consumed += command.Consumed;
            ReadOnlySpan<byte> line = rest[..command.LineLength];
            bool reoffered = _lineReoffered;
            _lineReoffered = false;
            if (!reoffered)
            {
                _observer?.OnCommand(command.Verb, line);
            }
            SessionStatus status = Execute(in command, line, output, count: !reoffered);
            switch (status)
            {
                case SessionStatus.AwaitingVerdict:
                    // The screening has no verdict yet: the line stays in the input, to be offered again.
                    consumed -= command.Consumed;
                    _lineReoffered = true;
                    return status;
                case SessionStatus.Close:
                    consumed = input.Length;
                    return status;
                case SessionStatus.StartTls:
                    consumed = input.Length; // plaintext pipelined after STARTTLS is never executed (CVE-2011-0411)
                    return status;
                case SessionStatus.AwaitingCommit:
                    return status;
            }
            if (consumed < input.Length && VerbTable.Has(command.Verb, VerbFlags.EndsPipelineGroup) && command.Error == LineError.None)
            {
                // RFC 2920 §3.1: this command ends a group; the client had to wait for its reply.
                consumed = input.Length;
                AbortMessage();
                output.Write(Replies.SynchronizationError);
                return Close();
            }
            if (EndsForShutdown(input[consumed..], output))
            {
                // A BDAT transaction let finish by a shutdown ended without its LAST chunk (RSET, say).
                consumed = input.Length;
                return SessionStatus.Close;
            }
            if (++commands == MaxCommandsPerPass)
            {
                return SessionStatus.Continue;
            }
        }
    }

    /// <summary>Commands one Process call answers at most: 64 of the longest reply (HELP, EHLO: under 1 KiB)
    /// stay far below what a host buffers for one send.</summary>
    public const int MaxCommandsPerPass = 64;

    private SessionStatus Close()
    {
        AbortMessage();
        _phase = Phase.Closed;
        _state = SmtpState.Closed;
        return SessionStatus.Close;
    }

    /// <summary>Writes an error reply and counts it; true when the error limit closed the session (421 4.7.0).</summary>
    private bool Refuse(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        output.Write(reply);
        if (++_errors >= _errorLimit)
        {
            output.Write(_prepared.TooManyErrors);
            Close();
            return true;
        }
        return false;
    }

    private SessionStatus RefuseStatus(ReadOnlySpan<byte> reply, IBufferWriter<byte> output) =>
        Refuse(reply, output) ? SessionStatus.Close : SessionStatus.Continue;

    private void AbortMessage()
    {
        if (_storeOpen)
        {
            _storeOpen = false;
            _store?.Abort();
        }
        _chunkActive = false;
    }

    /// <summary>Forgets the transaction: the envelope's paths, BDAT progress, the RCPT attempts.</summary>
    private void EndTransaction()
    {
        _envelope.ResetTransaction();
        _recipientTried = false;
        _recipientOvershoot = 0;
        _chunking = false;
        _chunkActive = false;
        _chunkLast = false;
    }

    /// <summary>Passes message text to the store.</summary>
    private sealed class StoreSink : IMessageBodySink
    {
        public IMessageStore? Store;

        public void Write(ReadOnlySpan<byte> octets) => Store!.Append(octets);
    }
}
