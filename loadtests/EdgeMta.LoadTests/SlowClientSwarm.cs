using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeMta.LoadTests;

/// <summary>
/// The slow-client attack (docs/SCREENING.md "Slow clients"): N connections that read the greeting and then
/// send one byte of a command line every interval, never its end, for as long as the server keeps them. They
/// are spread over source addresses 127.0.0.2 and up when the target is loopback (IP_BIND_ADDRESS_NO_PORT, so
/// each source has its own 28,000 ephemeral ports), connected a bounded number at a time, and watched: greeted,
/// refused at connect (a 421 for the greeting: the table was full), cut later by the server, or still open.
/// What it does not do: reconnect after a cut (an attacker might; per-client connection rates answer that), or
/// send mail. Costs: one socket, one 64-byte buffer and one pending receive per connection; one timer loop sends.
/// </summary>
public sealed class SlowClientSwarm : IAsyncDisposable
{
    private const int ConnectsInFlight = 256;
    private static readonly byte[] Line = "EHLO slow-client.example"u8.ToArray(); // never followed by CRLF

    private readonly IPEndPoint _target;
    private readonly int _count;
    private readonly TimeSpan _interval;
    private readonly int _sources;
    private readonly Socket?[] _sockets;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _watchers = [];
    private long _startTimestamp;
    private int _greeted, _refused, _failed, _cut;
    private long _cutTicks;
    private Task? _trickle;

    public SlowClientSwarm(IPEndPoint target, int count, TimeSpan interval, int sources)
    {
        _target = target;
        _count = count;
        _interval = interval;
        _sources = IPAddress.IsLoopback(target.Address) && target.AddressFamily == AddressFamily.InterNetwork ? Math.Max(1, sources) : 0;
        _sockets = new Socket?[count];
    }

    public int Greeted => Volatile.Read(ref _greeted);
    public int Refused => Volatile.Read(ref _refused);
    public int Failed => Volatile.Read(ref _failed);
    public int Cut => Volatile.Read(ref _cut);

    /// <summary>Connects every client (at most 256 connects at a time) and starts the trickle; returns once all
    /// have been greeted, refused or failed, or after <paramref name="bound"/>.</summary>
    public async Task ConnectAsync(TimeSpan bound, bool quiet)
    {
        _startTimestamp = Stopwatch.GetTimestamp();
        using var gate = new SemaphoreSlim(ConnectsInFlight);
        long end = _startTimestamp + (long)(bound.TotalSeconds * Stopwatch.Frequency);
        long lastReport = _startTimestamp;
        for (int i = 0; i < _count && Stopwatch.GetTimestamp() < end; i++)
        {
            await gate.WaitAsync(_stop.Token).ConfigureAwait(false);
            int index = i;
            _watchers.Add(Task.Run(() => WatchAsync(index, gate)));
            long now = Stopwatch.GetTimestamp();
            if (!quiet && now - lastReport >= Stopwatch.Frequency)
            {
                Console.Error.WriteLine($"  slow clients: {i + 1} connecting, {Greeted} greeted, {Refused} refused, {Failed} failed");
                lastReport = now;
            }
        }
        while (Greeted + Refused + Failed < _watchers.Count && Stopwatch.GetTimestamp() < end)
        {
            await Task.Delay(100).ConfigureAwait(false);
        }
        _trickle = Task.Run(TrickleAsync);
        if (!quiet) Console.Error.WriteLine($"  slow clients: {Greeted} greeted, {Refused} refused, {Failed} failed; one byte every {_interval.TotalSeconds:0} s each");
    }

    /// <summary>One line for the report: what became of the slow clients.</summary>
    public string Describe()
    {
        int cut = Cut;
        double meanCut = cut == 0 ? 0 : (double)Interlocked.Read(ref _cutTicks) / cut / Stopwatch.Frequency;
        int open = Greeted - cut;
        return FormattableString.Invariant(
            $"slow clients: {_count} tried, {Greeted} greeted, {Refused} refused at connect (421), {Failed} not connected or not greeted in 30 s, {cut} cut by the server (mean {meanCut:0.0} s after the first connect), {open} still open");
    }

    private async Task WatchAsync(int index, SemaphoreSlim gate)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        byte[] buffer = new byte[64];
        bool released = false;
        try
        {
            if (_sources > 0)
            {
                socket.SetRawSocketOption(0 /* SOL_IP */, 24 /* IP_BIND_ADDRESS_NO_PORT */, BitConverter.GetBytes(1));
                socket.Bind(new IPEndPoint(new IPAddress(new byte[] { 127, 0, 0, (byte)(2 + index % _sources) }), 0));
            }
            using (var connect = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                await socket.ConnectAsync(_target, connect.Token).ConfigureAwait(false);
            }
            int n;
            using (var greeting = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
            {
                // A server out of descriptors leaves connections in its backlog unanswered: counted, not waited for.
                greeting.CancelAfter(TimeSpan.FromSeconds(30));
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, greeting.Token).ConfigureAwait(false);
            }
            gate.Release();
            released = true;
            if (n < 4 || buffer[0] != (byte)'2')
            {
                Interlocked.Increment(ref _refused); // 421 4.7.0 too many connections, or nothing
                return;
            }
            Interlocked.Increment(ref _greeted);
            Volatile.Write(ref _sockets[index], socket);
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false) > 0)
            {
                // the 421 4.4.2 of the cut, then the FIN
            }
            Interlocked.Increment(ref _cut);
            Interlocked.Add(ref _cutTicks, Stopwatch.GetTimestamp() - _startTimestamp);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // the run is over: still open
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            if (!released) Interlocked.Increment(ref _failed); // no connection, or no greeting within 30 s
            else Interlocked.Increment(ref _cut); // reset after the greeting: the server let go
        }
        finally
        {
            if (!released) gate.Release();
            Volatile.Write(ref _sockets[index], null);
            socket.Dispose();
        }
    }

    // One byte to each open socket per interval, spread evenly over it (a tick every 100 ms).
    private async Task TrickleAsync()
    {
        var tick = TimeSpan.FromMilliseconds(100);
        int perTick = Math.Max(1, (int)Math.Ceiling(_count * tick.TotalSeconds / _interval.TotalSeconds));
        int next = 0;
        long round = 0;
        byte[] one = new byte[1];
        while (!_stop.IsCancellationRequested)
        {
            for (int k = 0; k < perTick; k++, next++)
            {
                if (next == _count)
                {
                    next = 0;
                    round++;
                }
                if (Volatile.Read(ref _sockets[next]) is not { } s) continue;
                one[0] = Line[(int)(round % Line.Length)];
                try
                {
                    s.Send(one, SocketFlags.None, out _); // one byte into an empty send buffer: never waits
                }
                catch (Exception e) when (e is ObjectDisposedException or SocketException)
                {
                    // cut meanwhile
                }
            }
            try
            {
                await Task.Delay(tick, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_trickle is not null) await _trickle.ConfigureAwait(false);
        await Task.WhenAll(_watchers).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        _stop.Dispose();
    }
}
