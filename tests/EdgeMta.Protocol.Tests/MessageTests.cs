// The rows of PROTOCOL.md about message data: commit outcomes, size, loops, bare newlines, BDAT, shutdown mid-DATA.
using System.Buffers;
using System.Text;
using EdgeMta.Protocol;
using EdgeMta.Protocol.Data;
using static EdgeMta.Protocol.Tests.StateTableTests;

namespace EdgeMta.Protocol.Tests;

public class MessageTests
{
    private static string Text(byte[] data) => Encoding.Latin1.GetString(data);

    [Fact]
    public void TheStoredMessageStartsWithTheReceivedHeaderAndIsUnstuffed()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        d.Send("Subject: x\r\n\r\n..leading dot\r\n.\r\n");
        Assert.Equal("Received: from bar.com ([192.0.2.1])\r\n\tby foo.com with ESMTP id Q00000001\r\n\tfor <Jones@foo.com>; Sun, 22 Nov 2026 07:30:15 +0000\r\n"
            + "Subject: x\r\n\r\n.leading dot\r\n", Text(d.Store.Messages[0].Data));
        Assert.Equal("Smith@bar.com", d.Store.Messages[0].ReversePath);
    }

    [Fact]
    public void NoReplyIsSentUntilTheHostSaysTheMessageIsDurable()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        var output = new ArrayBufferWriter<byte>();
        byte[] input = "body\r\n.\r\nQUIT\r\n"u8.ToArray();
        Assert.Equal(SessionStatus.AwaitingCommit, d.Session.Process(input, output, out int consumed));
        Assert.Equal(9, consumed); // just after the dot line: QUIT is still the host's
        Assert.Equal(0, output.WrittenCount);
        Assert.Throws<InvalidOperationException>(() => d.Session.Process(input.AsSpan(consumed), output, out _));
        Assert.Equal(SessionStatus.Continue, d.Session.CompleteMessage(d.Store.Commit(), output));
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Theory]
    [InlineData(CommitOutcome.Failed451, "451 4.3.0 Error: queue file write error\r\n")]
    [InlineData(CommitOutcome.Full452, "452 4.3.1 Insufficient system storage\r\n")]
    public void AFailedSpoolWriteIs451AndAFullSpoolIs452AndTheSessionGoesBackTo3(CommitOutcome outcome, string reply)
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.AwaitingCommit, d.Session.Process("body\r\n.\r\n"u8, output, out _));
        d.Store.Abort();
        Assert.Equal(SessionStatus.Continue, d.Session.CompleteMessage(outcome, output));
        Assert.Equal(reply, Encoding.ASCII.GetString(output.WrittenSpan));
        Assert.Equal(SmtpState.Wait, d.Session.State);
    }

    [Theory]
    [InlineData(StoreBeginStatus.Failed, "451 4.3.0")]
    [InlineData(StoreBeginStatus.Full, "452 4.3.1")]
    public void AStoreThatCannotBeginAMessageAnswersDataWith451Or452(StoreBeginStatus status, string reply)
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Store.NextBegin = status;
        Assert.StartsWith(reply, d.Send("DATA\r\n"));
        Assert.Equal(SmtpState.RecipientApproved, d.Session.State);
    }

    // Audit finding: twenty 451s on one connection closed it with 421 "too many errors", as if the client erred.
    [Fact]
    public void StorageTroubleDoesNotCountTowardTheClientErrorLimit()
    {
        var options = new SmtpSessionOptions { HostName = "foo.com", ErrorLimit = 2 };
        SessionDriver d = InState(SmtpState.Wait, options);
        for (int i = 0; i < 3; i++)
        {
            d.Send("MAIL FROM:<a@bar.com>\r\n");
            d.Send("RCPT TO:<Jones@foo.com>\r\n");
            d.Store.NextBegin = StoreBeginStatus.Failed;
            Assert.Equal("451 4.3.0 Error: queue file write error\r\n", d.Send("DATA\r\n"));
            d.Send("RSET\r\n");
        }
        for (int i = 0; i < 3; i++)
        {
            d.Send("MAIL FROM:<a@bar.com>\r\n");
            d.Send("RCPT TO:<Jones@foo.com>\r\n");
            d.Send("DATA\r\n");
            var output = new ArrayBufferWriter<byte>();
            Assert.Equal(SessionStatus.AwaitingCommit, d.Session.Process("body\r\n.\r\n"u8, output, out _));
            d.Store.Abort();
            Assert.Equal(SessionStatus.Continue, d.Session.CompleteMessage(CommitOutcome.Failed451, output));
        }
        Assert.False(d.Closed);
        Assert.Equal("250 2.0.0 Ok\r\n", d.Send("NOOP\r\n"));
    }

    [Fact]
    public void AMessageOverTheSizeLimitIsReadToTheEndDiscardedAndAnswered552()
    {
        SessionDriver d = InState(SmtpState.WritingMail, new SmtpSessionOptions { HostName = "foo.com", MaxMessageSize = 100 });
        Assert.Equal("", d.Send(new string('x', 98) + "\r\n" + new string('y', 500) + "\r\n"));
        Assert.Equal("552 5.3.4 Message size exceeds fixed limit\r\n", d.Send(".\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
        Assert.Empty(d.Store.Messages);
        Assert.Equal(1, d.Store.Aborted);
    }

    [Fact]
    public void AMessageWithMoreThan100ReceivedHeadersIs554MailLoop()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        var text = new StringBuilder();
        for (int i = 0; i < 101; i++)
        {
            text.Append("Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n");
        }
        Assert.Equal("554 5.4.6 Too many Received headers: mail loop\r\n", d.Send(text + "\r\nx\r\n.\r\n"));
        Assert.Equal(SmtpState.Wait, d.Session.State);
        Assert.Empty(d.Store.Messages);
    }

    [Theory]
    [InlineData("bare\nLF\r\n.\r\n")]
    [InlineData("bare\rCR\r\n.\r\n")]
    [InlineData("smuggle\n.\nMAIL FROM:<x@y.z>\r\n.\r\n")]
    [InlineData("smuggle\r\n.\nRSET\r\n.\r\n")]
    public void AMessageWithABareNewlineIsRefused550AndNothingInItIsACommand(string body)
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        Assert.Equal("550 5.6.0 Message contains bare CR or LF\r\n", d.Send(body));
        Assert.Equal(SmtpState.Wait, d.Session.State);
        Assert.Empty(d.Store.Messages);
    }

    [Fact]
    public void UnderNormalizeABareNewlineBecomesCrlfAndTheMessageIsAccepted()
    {
        SessionDriver d = InState(SmtpState.WritingMail, new SmtpSessionOptions { HostName = "foo.com", BareNewlines = BareNewlinePolicy.Normalize });
        Assert.StartsWith("250 2.0.0", d.Send("a\nb\r\n.\r\n"));
        Assert.EndsWith("a\r\nb\r\n", Text(d.Store.Messages[0].Data));
    }

    [Fact]
    public void TheDataTimeoutAppliesWhileMessageTextIsExpected()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        Assert.Equal(TimeSpan.FromSeconds(600), d.Session.CurrentTimeout);
    }

    [Fact]
    public void ShutdownMidDataLetsTheMessageFinishThenSends421()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Continue, d.Session.OnShutdown(output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n421 4.3.2 foo.com Service shutting down\r\n", d.Send("body\r\n.\r\n"));
        Assert.True(d.Closed);
        Assert.Single(d.Store.Messages);
    }

    // Audit finding: a client between BDAT chunks got 421 at once, while a DATA transaction may finish.
    [Fact]
    public void ShutdownBetweenBdatChunksLetsTheMessageFinishThenSends421()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Send("BDAT 5\r\nhello");
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(SessionStatus.Continue, d.Session.OnShutdown(output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal("250 2.0.0 Ok: 6 octets received\r\n", d.Send("BDAT 6\r\n world"));
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n421 4.3.2 foo.com Service shutting down\r\n", d.Send("BDAT 1 LAST\r\n!"));
        Assert.True(d.Closed);
        Assert.EndsWith("hello world!", Text(d.Store.Messages[0].Data));
    }

    // Found with real senders: during a shutdown, a QUIT pipelined right after `BDAT ... LAST` got 421 4.3.2;
    // RFC 5321 §4.1.1.10 wants 221, as outside a shutdown.
    [Fact]
    public void ShutdownBetweenBdatChunksThenLastChunkWithQuitPipelinedAnswersQuit221()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Send("BDAT 5\r\nhello");
        d.Session.OnShutdown(new ArrayBufferWriter<byte>());
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n221 2.0.0 foo.com closing connection\r\n", d.Send("BDAT 1 LAST\r\n!QUIT\r\n"));
        Assert.True(d.Closed);
        Assert.Single(d.Store.Messages);
    }

    [Fact]
    public void ShutdownMidDataThenTheDotWithQuitPipelinedAnswersQuit221()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        d.Session.OnShutdown(new ArrayBufferWriter<byte>());
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n221 2.0.0 foo.com closing connection\r\n", d.Send("body\r\n.\r\nQUIT\r\n"));
        Assert.True(d.Closed);
    }

    [Fact]
    public void AShutdownThatArrivesDuringTheCommitStillLetsThePipelinedQuitHave221()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        var output = new ArrayBufferWriter<byte>();
        byte[] input = "body\r\n.\r\nQUIT\r\n"u8.ToArray();
        Assert.Equal(SessionStatus.AwaitingCommit, d.Session.Process(input, output, out int consumed));
        Assert.Equal(SessionStatus.Continue, d.Session.CompleteMessage(d.Store.Commit(), output));
        // The transport delivers a shutdown that came while paused only after OnResumed, before the kept input.
        Assert.Equal(SessionStatus.Continue, d.Session.OnShutdown(output));
        Assert.Equal(SessionStatus.Close, d.Session.Process(input.AsSpan(consumed), output, out _));
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n221 2.0.0 foo.com closing connection\r\n", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Theory]
    [InlineData("MAIL FROM:<Smith@bar.com>\r\n")] // a next transaction is not started during a shutdown
    [InlineData("QUIT now\r\n")]                   // not a QUIT that would be answered 221
    [InlineData("QUI")]                              // not whole yet: nothing to wait for during a shutdown
    public void ShutdownMidDataThenTheDotWithAnythingButQuitPipelinedSends421(string next)
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        d.Session.OnShutdown(new ArrayBufferWriter<byte>());
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n421 4.3.2 foo.com Service shutting down\r\n", d.Send("body\r\n.\r\n" + next));
        Assert.True(d.Closed);
    }

    [Fact]
    public void ShutdownMidDataThenAnOversizeMessageWithQuitPipelinedAnswers552Then221()
    {
        SessionDriver d = InState(SmtpState.WritingMail, new SmtpSessionOptions { HostName = "foo.com", MaxMessageSize = 16 });
        d.Session.OnShutdown(new ArrayBufferWriter<byte>());
        string replies = d.Send(new string('x', 40) + "\r\n.\r\nQUIT\r\n");
        Assert.StartsWith("552 5.3.4", replies);
        Assert.EndsWith("\r\n221 2.0.0 foo.com closing connection\r\n", replies);
        Assert.True(d.Closed);
    }

    [Fact]
    public void ShutdownBetweenBdatChunksThenRsetAnswersItThenSends421()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Send("BDAT 5\r\nhello");
        d.Session.OnShutdown(new ArrayBufferWriter<byte>());
        Assert.Equal("250 2.0.0 Ok\r\n421 4.3.2 foo.com Service shutting down\r\n", d.Send("RSET\r\n"));
        Assert.True(d.Closed);
        Assert.Empty(d.Store.Messages);
    }

    [Fact]
    public void BdatChunksAre250EachAndTheLastEndsTheMessage()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        Assert.Equal("250 2.0.0 Ok: 5 octets received\r\n", d.Send("BDAT 5\r\nhello"));
        Assert.Equal(SmtpState.RecipientApproved, d.Session.State);
        Assert.Equal(TimeSpan.FromSeconds(300), d.Session.CurrentTimeout);
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n", d.Send("BDAT 8 LAST\r\n\r\n.\r\nbye"));
        Assert.EndsWith("hello\r\n.\r\nbye", Text(d.Store.Messages[0].Data));
        Assert.Equal(SmtpState.ReadyToDeliver, d.Session.State);
    }

    [Fact]
    public void ABdatChunkSplitAtEveryByteGivesTheSameMessage()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        string reply = d.Feed("BDAT 10 LAST\r\nab\r\n.\r\n\0\r\nQUIT\r\n"u8.ToArray(), "bytes");
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n221 2.0.0 foo.com closing connection\r\n", reply);
        Assert.EndsWith("ab\r\n.\r\n\0\r\n", Text(d.Store.Messages[0].Data));
    }

    [Fact]
    public void ARefusedBdatChunkBeingSkippedWaitsUnderTheDataTimeout()
    {
        // Audit finding: the octets of a refused chunk were awaited under the command timeout (300 s, not 600 s).
        SessionDriver d = InState(SmtpState.Wait);
        Assert.StartsWith("503", d.Send("BDAT 100\r\nsome"));
        Assert.Equal(TimeSpan.FromSeconds(600), d.Session.CurrentTimeout);
        d.Send(new string('x', 96));
        Assert.Equal(TimeSpan.FromSeconds(300), d.Session.CurrentTimeout);
    }

    [Fact]
    public void ARefusedBdatHasItsOctetsSkippedNotExecuted()
    {
        SessionDriver d = InState(SmtpState.Wait);
        Assert.Equal("503 5.5.1 Error: bad sequence of commands\r\n250 2.0.0 Ok\r\n", d.Send("BDAT 6\r\nQUIT\r\nNOOP\r\n"));
        Assert.False(d.Closed);
    }

    [Fact]
    public void DataAfterBdatAndBinaryMimeWithDataAre503()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Send("BDAT 2\r\nab");
        Assert.StartsWith("503 5.5.1", d.Send("DATA\r\n"));
        d.Send("RSET\r\n");
        d.Send("MAIL FROM:<a@bar.com> BODY=BINARYMIME\r\n");
        d.Send("RCPT TO:<Jones@foo.com>\r\n");
        Assert.StartsWith("503 5.5.1", d.Send("DATA\r\n"));
        Assert.StartsWith("250 2.0.0 OK queued", d.Send("BDAT 3 LAST\r\n\0\u00ff\n"));
    }

    [Fact]
    public void RsetBetweenBdatChunksAbandonsTheMessage()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Send("BDAT 2\r\nab");
        Assert.True(d.Store.InProgress);
        Assert.Equal("250 2.0.0 Ok\r\n", d.Send("RSET\r\n"));
        Assert.False(d.Store.InProgress);
        Assert.Equal(1, d.Store.Aborted);
    }

    [Theory]
    [InlineData("BDAT\r\n")]
    [InlineData("BDAT x\r\n")]
    [InlineData("BDAT 5 FIRST\r\n")]
    [InlineData("BDAT -5\r\n")]
    [InlineData("BDAT 99999999999999999999\r\n")]
    public void ABdatWithABadSizeIs501(string line)
    {
        Assert.StartsWith("501 5.5.4", InState(SmtpState.RecipientApproved).Send(line));
    }

    [Theory]
    [InlineData("BDAT 20 LASTX")]
    [InlineData("BDAT 20 LAST\tX")]
    [InlineData("BDAT 20  LAST")]
    [InlineData("BDAT 20 FIRST")]
    public void AMalformedBdatWhoseCountReadsHasItsOctetsSkippedNotExecuted(string line)
    {
        // The chunk is 20 octets of commands: run, they would open a forged transaction (audit finding).
        SessionDriver d = InState(SmtpState.RecipientApproved);
        string reply = d.Send(line + "\r\nRSET\r\nRCPT TO:<xy>\r\nNOOP\r\n");
        Assert.Equal("501 5.5.4 Syntax: BDAT count [LAST]\r\n250 2.0.0 Ok\r\n", reply);
        Assert.False(d.Closed);
    }

    [Fact]
    public void AMalformedBdatBetweenChunksEndsTheMessageSoNoChunkGoesMissing()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        d.Send("BDAT 2\r\nab");
        Assert.True(d.Store.InProgress);
        Assert.StartsWith("501 5.5.4", d.Send("BDAT 2 LAS\r\ncd"));
        Assert.False(d.Store.InProgress);
        Assert.Equal(1, d.Store.Aborted);
        Assert.Equal(SmtpState.Wait, d.Session.State);
        Assert.StartsWith("503 5.5.1", d.Send("BDAT 2 LAST\r\nef"));
        Assert.Empty(d.Store.Messages);
    }

    [Fact]
    public void LeadingZerosInABdatCountAreNotDigitsOfItsSize()
    {
        SessionDriver d = InState(SmtpState.RecipientApproved);
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n", d.Send("BDAT 0000000000000000000005 LAST\r\nhello"));
        Assert.EndsWith("hello", Text(d.Store.Messages[0].Data));
    }

    [Fact]
    public void ABdatCountNobodyCanSendIs501AndTheConnectionCloses()
    {
        // Its octets can be neither skipped nor read as commands.
        SessionDriver d = InState(SmtpState.RecipientApproved);
        Assert.Equal("501 5.5.4 Syntax: BDAT count [LAST]\r\n", d.Send("BDAT 1000000000000000000 LAST\r\nRSET\r\n"));
        Assert.True(d.Closed);
    }

    [Fact]
    public void BdatToStateWithOnlyRefusedRecipientsIs554AndSkipsTheChunk()
    {
        SessionDriver d = InState(SmtpState.SenderApproved);
        d.Send("RCPT TO:<Green@foo.com>\r\n");
        Assert.Equal("554 5.5.1 Error: no valid recipients\r\n250 2.0.0 Ok\r\n", d.Send("BDAT 6 LAST\r\nRSET\r\nNOOP\r\n"));
    }

    [Fact]
    public void AQuitPipelinedAfterTheEndOfDataDotIsFine()
    {
        SessionDriver d = InState(SmtpState.WritingMail);
        Assert.Equal("250 2.0.0 OK queued as Q00000001\r\n221 2.0.0 foo.com closing connection\r\n", d.Send("x\r\n.\r\nQUIT\r\n"));
    }
}
