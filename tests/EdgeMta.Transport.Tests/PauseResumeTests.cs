using System.Buffers;

namespace EdgeMta.Transport.Tests;

public sealed class PauseResumeTests
{
    [Fact]
    public async Task ResumeFromAnotherThreadSendsTheReplyAndOffersInputKeptWhilePaused()
    {
        var handler = new CommitHandler(CommitHandler.ResumeMode.Later);
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");

        // "next" is pipelined after "commit": it must wait for the resume, and be answered after it.
        await client.SendAsync("commit\r\nnext\r\n");
        Assert.True(await Bounded.UntilAsync(() => handler.Paused));
        await client.SendAsync("more\r\n");
        await Task.Delay(100);
        Assert.Equal(0, handler.ReceivedWhilePaused);
        handler.Release.Set();

        string replies = await client.ReadUntilAsync("more\r\n");
        Assert.Equal("committed\r\nresumed\r\nnext\r\nmore\r\n", replies);
        Assert.Equal(0, handler.ReceivedWhilePaused);
    }

    [Fact]
    public async Task ResumeCalledInsideTheCallbackBeforeItAnswersPauseIsNotLost()
    {
        var handler = new CommitHandler(CommitHandler.ResumeMode.SameThreadBeforeReturn);
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("commit\r\nnext\r\n");
        Assert.Equal("committed\r\nresumed\r\nnext\r\n", await client.ReadUntilAsync("next\r\n"));
    }

    [Fact]
    public async Task ResumeFromAnotherThreadThatFinishesBeforeTheCallbackReturnsIsNotLost()
    {
        var handler = new CommitHandler(CommitHandler.ResumeMode.OtherThreadBeforeReturn);
        await using var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        for (int i = 0; i < 50; i++)
        {
            await client.SendAsync("commit\r\n");
            Assert.Equal("committed\r\nresumed\r\n", await client.ReadUntilAsync("resumed\r\n"));
        }
    }

    [Fact]
    public async Task PausedConnectionDoesNotTimeOut()
    {
        var handler = new CommitHandler(CommitHandler.ResumeMode.Later);
        // A 1 s timeout on a fake clock, then paused for an hour of it: every sweep of that hour finds the
        // paused connection (it used to take 3 s of real time and a margin against a loaded machine).
        var clock = new EdgeMta.TestKit.FakeClock();
        await using var server = new TestServer(() => handler, o =>
        {
            o.DefaultIdleTimeout = TimeSpan.FromSeconds(1);
            o.TimeProvider = clock;
            o.TimerPeriod = TimeSpan.FromSeconds(1);
        });
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("commit\r\n");
        Assert.True(await Bounded.UntilAsync(() => handler.Paused));
        clock.Advance(TimeSpan.FromHours(1));
        handler.Release.Set();
        // A timeout posted during the pause would be handled before the resume: "421 idle" would come first.
        Assert.Equal("committed\r\nresumed\r\n", await client.ReadUntilAsync("resumed\r\n"));
        Assert.Equal(0, handler.TimedOutCalls);
    }

    [Fact]
    public async Task ResumeAfterTheConnectionClosedIsRefused()
    {
        var handler = new CommitHandler(CommitHandler.ResumeMode.Never);
        await using var server = new TestServer(() => handler);
        using (TestClient client = await server.ConnectAsync())
        {
            await client.ReadUntilAsync("hello\r\n");
            await client.SendAsync("commit\r\n");
            Assert.True(await Bounded.UntilAsync(() => handler.Paused));
        }
        await server.Server.StopAsync(TimeSpan.FromMilliseconds(100)).WaitAsync(Bounded.Wait);
        Assert.Equal(1, handler.ClosedCount);
        Assert.False(handler.Info.Resume());
    }

    [Fact]
    public async Task StopWaitsForAPausedHandlerAndAsksItToShutDownOnlyAfterItResumed()
    {
        var handler = new CommitHandler(CommitHandler.ResumeMode.Later);
        var server = new TestServer(() => handler);
        using TestClient client = await server.ConnectAsync();
        await client.ReadUntilAsync("hello\r\n");
        await client.SendAsync("commit\r\n");
        Assert.True(await Bounded.UntilAsync(() => handler.Paused));

        Task stop = server.Server.StopAsync(Bounded.Wait);
        await Task.Delay(200);
        Assert.Equal(0, handler.ShutdownCalls); // never while paused: the message is not yet durable
        handler.Release.Set();
        Assert.Equal("committed\r\nresumed\r\n421 shutting down\r\n", await client.ReadToEndAsync());
        await stop.WaitAsync(Bounded.Wait);
        Assert.Equal(1, handler.ShutdownCalls);
        Assert.Equal(1, handler.ClosedCount);
        await server.DisposeAsync();
    }

    /// <summary>"commit" answers "committed" and pauses, as a session waits for the spool's durable write.</summary>
    private sealed class CommitHandler(CommitHandler.ResumeMode mode) : EchoLineHandler
    {
        public enum ResumeMode { Later, SameThreadBeforeReturn, OtherThreadBeforeReturn, Never }

        public readonly ManualResetEventSlim Release = new();

        protected override HandlerStatus OnLine(ReadOnlySpan<byte> line, IBufferWriter<byte> output)
        {
            if (!line.SequenceEqual("commit"u8))
            {
                return base.OnLine(line, output);
            }
            output.Write("committed\r\n"u8);
            Paused = true;
            switch (mode)
            {
                case ResumeMode.Later:
                    ConnectionInfo info = Info;
                    _ = Task.Run(() =>
                    {
                        Release.Wait(Bounded.Wait);
                        info.Resume();
                    });
                    break;
                case ResumeMode.SameThreadBeforeReturn:
                    Assert.True(Info.Resume());
                    break;
                case ResumeMode.OtherThreadBeforeReturn:
                    ConnectionInfo other = Info;
                    var thread = new Thread(() => other.Resume());
                    thread.Start();
                    Assert.True(thread.Join(Bounded.Wait));
                    break;
            }
            return HandlerStatus.Pause;
        }
    }
}
