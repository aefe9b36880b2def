using System.Net.Sockets;
using System.Text;

namespace EdgeMta.EndToEnd.Tests.Harness;

public sealed partial class ScriptedHop
{
    /// <summary>
    /// One accepted connection: reads command lines (RFC 5321 §2.3.8, CRLF-terminated), answers each at once
    /// (pipelined commands are answered in order, RFC 2920 §3.1), and reads DATA line by line until the lone dot
    /// (§4.1.1.4), undoing the dot-stuffing (§4.5.2). Throws IOException on a line past its bound; the caller
    /// closes the connection.
    /// </summary>
    private sealed class Session(ScriptedHop hop, Socket socket, int connection)
    {
        private readonly NetworkStream _stream = new(socket, ownsSocket: false);
        private byte[] _buffer = new byte[16 * 1024];
        private int _start, _end;
        private HopTransaction? _current;

        public async Task RunAsync(CancellationToken stop)
        {
            string greeting = hop.Ask(new HopEvent(HopStep.Connect, connection, -1, "")) ??
                              $"220 {hop.HostName} {(hop.Lmtp ? "LMTP" : "ESMTP")} ScriptedHop";
            if (greeting == Drop) return;
            await WriteAsync(greeting, stop);
            // 421: the server closes the channel after it (RFC 5321 §3.8).
            if (greeting.StartsWith("421", StringComparison.Ordinal)) return;
            while (true)
            {
                (int offset, int length)? read = await ReadLineAsync(MaxCommandLine, stop);
                if (read is not (int offset, int length)) return;
                string line = Encoding.UTF8.GetString(_buffer, offset, length).TrimEnd('\r', '\n');
                string reply = Answer(line);
                if (reply == Drop) return;
                await WriteAsync(reply, stop);
                if (reply.StartsWith("421", StringComparison.Ordinal) || Verb(line) == "QUIT") return;
                if (reply.StartsWith("354", StringComparison.Ordinal) && !await ReadDataAsync(stop)) return;
            }
        }

        /// <summary>The reply to one command line (never for data).</summary>
        private string Answer(string line)
        {
            string verb = Verb(line);
            int next = Volatile.Read(ref hop._transactionCount);
            switch (verb)
            {
                case "EHLO" or "HELO" or "LHLO":
                    _current = null;
                    string? hello = hop.Ask(new HopEvent(HopStep.Hello, connection, next, line));
                    if (hello is not null) return hello;
                    // LMTP has only LHLO; SMTP has no LHLO (RFC 2033 §4.1).
                    if (hop.Lmtp != (verb == "LHLO")) return "500 5.5.1 Command unrecognized";
                    if (verb == "HELO") return $"250 {hop.HostName}";
                    return $"250-{hop.HostName}\n250-PIPELINING\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250 SIZE {MaxData}";
                case "MAIL":
                    if (_current is not null) return "503 5.5.1 Error: nested MAIL command";
                    string mail = hop.Ask(new HopEvent(HopStep.Mail, connection, next, line)) ?? "250 2.1.0 Ok";
                    if (mail.StartsWith('2')) _current = hop.BeginTransaction(connection, line, AddressOf(line[4..]));
                    return mail;
                case "RCPT":
                    if (_current is not { } t) return "503 5.5.1 Error: need MAIL command";
                    string address = AddressOf(line[4..]);
                    string rcpt = hop.Ask(new HopEvent(HopStep.Rcpt, connection, t.Index, line, t.Recipients.Count, address)) ?? "250 2.1.5 Ok";
                    if (rcpt != Drop) hop.Record(() => t.Recipients.Add(new HopRecipient(address, Code(rcpt))));
                    return rcpt;
                case "DATA":
                    if (_current is not { } d) return "503 5.5.1 Error: need RCPT command";
                    string? data = hop.Ask(new HopEvent(HopStep.Data, connection, d.Index, line));
                    if (data is not null) return data;
                    return d.AcceptedRecipients.Any() ? "354 End data with <CR><LF>.<CR><LF>" : "554 5.5.1 Error: no valid recipients";
                default:
                    if (verb == "RSET") _current = null;
                    return hop.Ask(new HopEvent(HopStep.Other, connection, _current?.Index ?? next, line)) ?? verb switch
                    {
                        "RSET" or "NOOP" => "250 2.0.0 Ok",
                        "QUIT" => "221 2.0.0 Bye",
                        _ => "502 5.5.2 Error: command not recognized",
                    };
            }
        }

        /// <summary>Reads the message through the final dot and replies; false when the connection is to close.</summary>
        private async Task<bool> ReadDataAsync(CancellationToken stop)
        {
            HopTransaction t = _current!;
            using var body = new MemoryStream();
            bool askedMidData = false;
            long received = 0;
            while (true)
            {
                (int offset, int length)? read = await ReadLineAsync(MaxDataLine, stop);
                if (read is not (int offset, int length)) return false;   // Abandon marks the transaction
                if (length == 3 && _buffer[offset] == '.' && _buffer[offset + 1] == '\r') break;
                received += length;
                int skip = _buffer[offset] == '.' ? 1 : 0;
                body.Write(_buffer, offset + skip, length - skip);
                if (body.Length > MaxData) throw new IOException($"more than {MaxData} bytes of data");
                if (!askedMidData && received >= hop.MidDataBytes)
                {
                    askedMidData = true;
                    if (hop.Ask(new HopEvent(HopStep.MidData, connection, t.Index, "")) == Drop)
                    {
                        // RST, not FIN: the client's next write fails instead of filling a buffer nobody reads.
                        socket.LingerState = new LingerOption(true, 0);
                        return false;
                    }
                }
            }
            byte[] message = body.ToArray();
            hop.Record(() => t.Data = message);
            _current = null;
            if (!hop.Lmtp)
            {
                string reply = hop.Ask(new HopEvent(HopStep.EndOfData, connection, t.Index, ".")) ?? $"250 2.0.0 Ok: queued as H{t.Index}";
                if (reply == Drop) return false;
                if (reply.StartsWith('2')) hop.Record(() => t.DeliveredTo.AddRange(t.AcceptedRecipients));
                await WriteAsync(reply, stop);
                return !reply.StartsWith("421", StringComparison.Ordinal);
            }
            // LMTP: one reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
            string[] accepted = [.. t.AcceptedRecipients];
            for (int i = 0; i < accepted.Length; i++)
            {
                string reply = hop.Ask(new HopEvent(HopStep.EndOfData, connection, t.Index, ".", i, accepted[i])) ??
                               $"250 2.1.5 <{accepted[i]}> delivered";
                if (reply == Drop) return false;
                if (reply.StartsWith('2')) hop.Record(() => t.DeliveredTo.Add(accepted[i]));
                await WriteAsync(reply, stop);
            }
            return true;
        }

        /// <summary>Marks a transaction cut off in its data (the connection ended between the 354 and the dot).</summary>
        public void Abandon()
        {
            if (_current is { Data: null } t && t.AcceptedRecipients.Any()) hop.Record(() => t.AbortedInData = true);
        }

        /// <summary>The next line, CRLF included, as (offset, length) in <see cref="_buffer"/> until the next call;
        /// null at end of stream.</summary>
        private async Task<(int, int)?> ReadLineAsync(int maxLine, CancellationToken stop)
        {
            int scanned = _start;
            while (true)
            {
                int lf = Array.IndexOf(_buffer, (byte)'\n', scanned, _end - scanned);
                if (lf >= 0)
                {
                    int offset = _start;
                    _start = lf + 1;
                    return (offset, lf + 1 - offset);
                }
                if (_end - _start > maxLine) throw new IOException($"a line longer than {maxLine} bytes");
                if (_start == _end) _start = _end = 0;
                if (_end == _buffer.Length)
                {
                    if (_start > 0)
                    {
                        Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                        _end -= _start;
                        _start = 0;
                    }
                    else
                    {
                        Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, maxLine + 2));
                    }
                }
                scanned = _end;
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(stop);
                idle.CancelAfter(IdleTimeout);
                int n = await _stream.ReadAsync(_buffer.AsMemory(_end), idle.Token);
                if (n == 0) return null;
                _end += n;
            }
        }

        private async Task WriteAsync(string reply, CancellationToken stop)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(stop);
            idle.CancelAfter(IdleTimeout);
            await _stream.WriteAsync(Reply(reply), idle.Token);
        }

        private static string Verb(string line)
        {
            int space = line.IndexOf(' ');
            return (space < 0 ? line : line[..space]).ToUpperInvariant();
        }

        private static int Code(string reply) =>
            reply.Length >= 3 && int.TryParse(reply.AsSpan(0, 3), out int code) ? code : 0;
    }
}
