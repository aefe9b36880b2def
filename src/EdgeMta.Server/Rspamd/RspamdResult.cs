// Contract: what EdgeMta takes from rspamd's `/checkv2` JSON reply (https://rspamd.com/doc/developers/protocol.html):
// `action`, `score`, `required_score` and `messages.smtp_message`, read with System.Text.Json's Utf8JsonReader
// (no serializer, no reflection: AOT-clean). Every other member (symbols, urls, milter, ...) is skipped unread.
// The action names rspamd 3 uses map to RspamdAction; a name it may add later (or a custom action such as
// `discard` or `quarantine`) is Other, which the handler accepts (docs/SCREENING.md: "accepted otherwise").
// How it fails: not an object, invalid JSON, a wrong type for a known member, or no `action` at all: false, with a
// short reason for the log line. Never an exception.
using System.Text.Json;

namespace EdgeMta.Server.Rspamd;

/// <summary>rspamd's verdict on a message (its metric's action).</summary>
public enum RspamdAction : byte
{
    NoAction,
    Greylist,
    AddHeader,
    RewriteSubject,
    SoftReject,
    Reject,
    /// <summary>An action name this build does not know (custom actions): accepted.</summary>
    Other,
}

/// <summary>The members of the reply the server uses; parsed from the body of one reply.</summary>
internal struct RspamdResult
{
    /// <summary>The longest smtp_message kept (the reply text is cut shorter still: RspamdReplies.MaxTextLength).</summary>
    public const int MaxMessageBytes = 512;

    public RspamdAction Action;
    public double Score;
    public double RequiredScore;
    /// <summary>messages.smtp_message, unescaped UTF-8, at most MaxMessageBytes; empty when absent.</summary>
    public byte[] SmtpMessage;
    public int SmtpMessageLength;

    public static ReadOnlySpan<byte> LabelOf(RspamdAction action) => action switch
    {
        RspamdAction.NoAction => "no-action"u8,
        RspamdAction.Greylist => "greylist"u8,
        RspamdAction.AddHeader => "add-header"u8,
        RspamdAction.RewriteSubject => "rewrite-subject"u8,
        RspamdAction.SoftReject => "soft-reject"u8,
        RspamdAction.Reject => "reject"u8,
        _ => "other"u8,
    };

    /// <summary>Reads <paramref name="json"/>; false with <paramref name="reason"/> when it is not a usable reply.</summary>
    public bool TryParse(ReadOnlySpan<byte> json, out string reason)
    {
        SmtpMessage ??= new byte[MaxMessageBytes];
        SmtpMessageLength = 0;
        Score = RequiredScore = 0;
        Action = RspamdAction.Other;
        bool sawAction = false;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                reason = "not-an-object";
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("action"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String)
                    {
                        reason = "action-type";
                        return false;
                    }
                    Action = ActionOf(ref reader);
                    sawAction = true;
                }
                else if (reader.ValueTextEquals("score"u8) || reader.ValueTextEquals("required_score"u8))
                {
                    bool required = reader.ValueTextEquals("required_score"u8);
                    if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out double value))
                    {
                        reason = "score-type";
                        return false;
                    }
                    if (required) RequiredScore = value;
                    else Score = value;
                }
                else if (reader.ValueTextEquals("messages"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject) ReadMessages(ref reader);
                    else reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip(); // a whole object or array (symbols, urls); a no-op on a scalar
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                reason = "trailing-data"; // Read() past the end of the top-level value throws for anything but whitespace
                return false;
            }
        }
        catch (JsonException)
        {
            reason = "invalid-json";
            return false;
        }
        if (!sawAction)
        {
            reason = "no-action";
            return false;
        }
        reason = "";
        return true;
    }

    private static RspamdAction ActionOf(ref Utf8JsonReader reader)
    {
        if (reader.ValueTextEquals("no action"u8)) return RspamdAction.NoAction;
        if (reader.ValueTextEquals("greylist"u8)) return RspamdAction.Greylist;
        if (reader.ValueTextEquals("add header"u8)) return RspamdAction.AddHeader;
        if (reader.ValueTextEquals("rewrite subject"u8)) return RspamdAction.RewriteSubject;
        if (reader.ValueTextEquals("soft reject"u8)) return RspamdAction.SoftReject;
        if (reader.ValueTextEquals("reject"u8)) return RspamdAction.Reject;
        return RspamdAction.Other;
    }

    // messages = { "smtp_message": "...", ... }: the one member kept; others skipped.
    private void ReadMessages(ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool wanted = reader.ValueTextEquals("smtp_message"u8);
            reader.Read();
            if (wanted && reader.TokenType == JsonTokenType.String)
            {
                // The escaped form is never shorter than the text: a value this long may not fit; keep none then
                // (the reply falls back to its default text) rather than throw from CopyString.
                if (reader.HasValueSequence || reader.ValueSpan.Length > MaxMessageBytes) continue;
                SmtpMessageLength = reader.CopyString(SmtpMessage);
            }
            else
            {
                reader.Skip();
            }
        }
    }
}
