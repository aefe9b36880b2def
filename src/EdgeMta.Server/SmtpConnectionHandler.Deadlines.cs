// The handler's side of the request deadline (src/EdgeMta.Transport/ConnectionHandler.cs, "Time"): when a
// new request begins to be awaited, and how long it may take (docs/SCREENING.md "Slow clients").
//
// When: the server speaks exactly when a request is complete (RFC 5321 §4.2: every command gets a reply; the
// 354 opens message text, a BDAT chunk is answered once read), so a reply written since the last arming means a
// new request is awaited now; so does the session moving between command lines and message text (a BDAT
// chunk starts with no reply). Bytes that complete nothing (half a line, a long line being skipped) write no
// reply and so never re-arm: one byte every 20 s is cut at the command timeout of when its line began.
// How long: the command timeout for a command line; for message text the data timeout with the minimum rate
// (each read of N bytes earns N / rate seconds, Postfix smtpd_min_data_rate). Under stress (ConnectionStress)
// both are at most the stress timeout and the error limit drops to the stress limit, for new sessions and for
// every request armed while it lasts (Postfix smtpd_timeout ${stress?{10}:{300}}s, smtpd_hard_error_limit
// ${stress?{1}:{20}}).
// What it does not do: measure time itself; the transport keeps the clock, credits the bytes, stops it during a
// pause (a spool commit is the server's wait) and calls OnTimedOut. A timeout is one log line and counted.
using EdgeMta.Protocol;
using EdgeMta.Server.Logging;
using EdgeMta.Transport;

namespace EdgeMta.Server;

internal sealed partial class SmtpConnectionHandler
{
    private long _repliesWhenArmed = -1;
    private bool _armedForText;

    /// <summary>Nothing armed: the next callback that goes on arms a request from now. At open (the greeting arms the
    /// first request), and after a TLS handshake (RFC 3207 §4.2: the session starts over, and the client's EHLO is
    /// awaited from now, not from before the handshake).</summary>
    private void ForgetRequestDeadline()
    {
        _repliesWhenArmed = -1;
        _armedForText = false;
    }

    /// <summary>After a callback that goes on: arms the deadline of the request now awaited, if a new one is.</summary>
    private void ArmRequestDeadline()
    {
        bool text = _session.ReadingMessageText;
        long replies = _replies.Written;
        if (replies == _repliesWhenArmed && text == _armedForText)
        {
            return; // the same request, still arriving: its deadline stands
        }
        _repliesWhenArmed = replies;
        _armedForText = text;
        SmtpSessionOptions options = _context.SessionOptions;
        SlowClientOptions slow = _context.Stress.Options;
        bool stressed = ApplyStressErrorLimit();
        TimeSpan timeout = text ? options.DataTimeout : options.CommandTimeout;
        if (stressed && slow.StressTimeout < timeout)
        {
            timeout = slow.StressTimeout;
        }
        _connection.SetRequestDeadline(text ? RequestDeadline.Transfer(timeout, slow.MinDataRate) : RequestDeadline.Request(timeout));
    }

    /// <summary>Sets the session's error limit for the stress state now; true when under stress.</summary>
    private bool ApplyStressErrorLimit()
    {
        bool stressed = _context.Stress.Active;
        int normal = _context.SessionOptions.ErrorLimit;
        _session.ErrorLimit = stressed ? Math.Min(normal, _context.Stress.Options.StressErrorLimit) : normal;
        return stressed;
    }

    /// <summary>A request ran out of time (or the idle timeout passed): one line, counted by phase.</summary>
    private void LogRequestTimeout()
    {
        _context.Stress.CountTimeout(_armedForText);
        _context.Log.Begin(LogEvent.RequestTimeout)
            .Field("conn"u8, _connection.Id)
            .Field("client"u8, ClientAddress)
            .Field("phase"u8, _armedForText ? "data"u8 : "command"u8)
            .Field("stress"u8, _context.Stress.Active ? 1 : 0)
            .End();
    }
}
