// Junk never crashes the session: random command soup in random chunks, every reply a well-formed line.
using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using EdgeMta.Protocol;
using EdgeMta.Protocol.Data;

namespace EdgeMta.Protocol.Tests;

public partial class SessionFuzzTests
{
    private static readonly string[] Pieces =
    [
        "EHLO bar.com\r\n", "HELO x\r\n", "MAIL FROM:<Smith@bar.com>\r\n", "MAIL FROM:<> SIZE=99999999999999999999999\r\n",
        "MAIL FROM:<a@b.c> BODY=BINARYMIME SMTPUTF8\r\n", "RCPT TO:<Jones@foo.com>\r\n", "RCPT TO:<Green@foo.com>\r\n",
        "RCPT TO:<@a.b:Brown@foo.com> NOTIFY=NEVER\r\n", "RCPT TO:<>\r\n", "DATA\r\n", "BDAT 7\r\n", "BDAT 3 LAST\r\n", "BDAT 0 LAST\r\n",
        "RSET\r\n", "NOOP\r\n", "QUIT\r\n", "VRFY Crispin\r\n", "EXPN staff\r\n", "HELP\r\n", "STARTTLS\r\n", "SEND FROM:<a@b.c>\r\n",
        ".\r\n", "..\r\n", "\r\n", "\n", "\r", "\0", ".\n", "\n.\n", "\r\n.\r\n", "Received: x\r\n", "Subject: y\r\n",
        "GET / HTTP/1.1\r\n", "xyzzy", " ", "<", ">", "@", "\u00e9", "\u00ff",
    ];

    private static readonly string[] Natural =
    [
        "EHLO bar.com\r\n", "MAIL FROM:<Smith@bar.com>\r\n", "RCPT TO:<Jones@foo.com>\r\n", "DATA\r\n", "Subject: y\r\n\r\nbody\r\n",
        ".\r\n", "MAIL FROM:<Smith@bar.com>\r\n", "RCPT TO:<Brown@foo.com>\r\n", "BDAT 7\r\n", "abcdefg", "BDAT 3 LAST\r\n", "xyz", "NOOP\r\n",
    ];

    [GeneratedRegex(@"^[2-5][0-9][0-9][ -][^\r\n]*$")]
    private static partial Regex ReplyLine();

    [Fact]
    public void RandomInputInRandomChunksNeverThrowsAndEveryReplyIsAWellFormedLine()
    {
        var random = new Random(5321_2920);
        int committed = 0, started = 0, chunks = 0;
        for (int iteration = 0; iteration < 1500; iteration++)
        {
            var options = new SmtpSessionOptions
            {
                HostName = "foo.com",
                LegacySend = random.Next(2) == 0,
                Vrfy = (VrfyMode)random.Next(3),
                ExpnEnabled = random.Next(2) == 0,
                TlsAvailable = random.Next(2) == 0,
                RequireTls = random.Next(4) == 0,
                MaxMessageSize = random.Next(2) == 0 ? 64 : 26214400,
                MaxRecipients = random.Next(1, 4),
                LineLimit = random.Next(2) == 0 ? 32 : 512,
                BareNewlines = (BareNewlinePolicy)random.Next(2),
            };
            var session = new SmtpSession(options, TestDirectories.Seed, new FixedClock());
            var store = new InMemoryMessageStore(keepMessages: false);
            var output = new ArrayBufferWriter<byte>();
            // A soup biased toward a real session (so deep states are reached), written in pieces of random
            // size: mostly one piece a write, sometimes a piece split or two pieces merged.
            var writes = new List<byte[]>();
            var input = new StringBuilder();
            int pieces = random.Next(1, 60);
            int step = 0;
            for (int p = 0; p < pieces; p++)
            {
                string piece = random.Next(3) != 0 ? Natural[step++ % Natural.Length]
                    : random.Next(8) == 0 ? ((char)random.Next(256)).ToString() : Pieces[random.Next(Pieces.Length)];
                input.Append(piece);
                byte[] b = Encoding.Latin1.GetBytes(piece);
                int cut = random.Next(5) == 0 && b.Length > 1 ? random.Next(1, b.Length) : b.Length;
                if (random.Next(6) == 0 && writes.Count > 0)
                {
                    writes[^1] = [.. writes[^1], .. b[..cut]];
                }
                else
                {
                    writes.Add(b[..cut]);
                }
                if (cut < b.Length)
                {
                    writes.Add(b[cut..]);
                }
            }
            string context = $"iteration {iteration}: {input.ToString().Replace("\r", "\\r").Replace("\n", "\\n").Replace("\0", "\\0")}";

            SessionStatus status = session.Start(new ClientInfo("192.0.2.7"u8), store, output);
            var pending = new List<byte>();
            int guard = 0;
            foreach (byte[] write in writes)
            {
                if (status == SessionStatus.Close || guard++ > 100_000)
                {
                    break;
                }
                pending.AddRange(write);
                byte[] buffer = [.. pending];
                status = session.Process(buffer, output, out int consumed);
                Assert.True(consumed >= 0 && consumed <= buffer.Length, context);
                pending.RemoveRange(0, consumed);
                while (status == SessionStatus.AwaitingCommit || status == SessionStatus.StartTls)
                {
                    if (status == SessionStatus.StartTls)
                    {
                        session.OnTlsEstablished();
                        pending.Clear();
                        status = SessionStatus.Continue;
                        break;
                    }
                    CommitOutcome outcome = (CommitOutcome)random.Next(3);
                    if (outcome == CommitOutcome.Committed)
                    {
                        committed++;
                        store.Commit();
                    }
                    else
                    {
                        store.Abort();
                    }
                    status = session.CompleteMessage(outcome, output);
                    if (status == SessionStatus.Continue)
                    {
                        buffer = [.. pending];
                        status = session.Process(buffer, output, out consumed);
                        Assert.True(consumed >= 0 && consumed <= buffer.Length, context);
                        pending.RemoveRange(0, consumed);
                    }
                }
            }
            Assert.True(guard < 100_000, context);
            if (status != SessionStatus.Close)
            {
                session.OnTimeout(output);
            }
            Assert.False(store.InProgress, context + " (a message was left open in the store)");

            string text = Encoding.Latin1.GetString(output.WrittenSpan);
            started += Regex.Count(text, "^354 ", RegexOptions.Multiline);
            chunks += Regex.Count(text, "octets received");
            Assert.EndsWith("\r\n", text);
            foreach (string line in text[..^2].Split("\r\n"))
            {
                Assert.True(ReplyLine().IsMatch(line), $"{context}\nreply line '{line}'");
            }
        }
        // The soup reaches deep states, not only 500s: messages were started, chunked and committed.
        Assert.True(committed > 10 && started > 10 && chunks > 10, $"committed {committed}, 354 {started}, chunks {chunks}");
    }
}
