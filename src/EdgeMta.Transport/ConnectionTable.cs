// Every live connection in one slot array, and the one timer that checks all their deadlines.
//
// Why a scan and not a wheel: deadlines here are coarse (1 s) and the scan is a read of one long per
// connection: 10,000 connections cost a few tens of microseconds a second, with no per-connection timer
// object and no re-arming cost on the hot path (a connection only writes its _deadline field).
// The table is also how stop reaches every connection. Register and Unregister happen once per
// connection, under a lock shared with the scan; entries carry the generation they were registered
// with, so a signal can never reach the next connection that reuses the pooled object.
namespace EdgeMta.Transport;

internal sealed class ConnectionTable : IDisposable
{
    internal enum Mode { Running, Stopping, Aborting }

    private struct Entry
    {
        public Connection? Connection;
        public int Generation;
    }

    private readonly object _gate = new();
    private readonly ITransportLog _log;
    private readonly TransportClock _clock;
    private readonly ITimer _timer;
    private Entry[] _entries = new Entry[64];
    private int[] _free = new int[64];
    private int _freeCount;
    private int _used;
    private int _count;
    private Mode _mode;
    private TaskCompletionSource? _empty;

    public ConnectionTable(TimeSpan period, ITransportLog log, TransportClock clock)
    {
        _log = log;
        _clock = clock;
        _timer = clock.CreateTimer(static state => ((ConnectionTable)state!).Sweep(), this, period);
    }

    public int Count => Volatile.Read(ref _count);

    public Mode Register(Connection connection, int generation, out int slot)
    {
        lock (_gate)
        {
            if (_freeCount > 0)
            {
                slot = _free[--_freeCount];
            }
            else
            {
                if (_used == _entries.Length)
                {
                    Array.Resize(ref _entries, _entries.Length * 2);
                    Array.Resize(ref _free, _free.Length * 2);
                }
                slot = _used++;
            }
            _entries[slot] = new Entry { Connection = connection, Generation = generation };
            _count++;
            return _mode;
        }
    }

    public void Unregister(int slot)
    {
        TaskCompletionSource? empty = null;
        lock (_gate)
        {
            _entries[slot] = default;
            _free[_freeCount++] = slot;
            if (--_count == 0)
            {
                empty = _empty;
                _empty = null; // a later emptiness gets a fresh task
            }
        }
        empty?.TrySetResult();
    }

    /// <summary>Sends a signal to every connection (stop's shutdown, then abort) and sets the mode that
    /// connections registering from now on start in.</summary>
    public void Broadcast(Mode mode, long signal)
    {
        lock (_gate)
        {
            _mode = mode;
            for (int i = 0; i < _used; i++)
            {
                ref Entry entry = ref _entries[i];
                entry.Connection?.PostFromOutside(entry.Generation, signal);
            }
        }
    }

    /// <summary>Sends a signal to every connection, changing no mode (a stress shortening of request deadlines).</summary>
    public void Signal(long signal)
    {
        lock (_gate)
        {
            for (int i = 0; i < _used; i++)
            {
                ref Entry entry = ref _entries[i];
                entry.Connection?.PostFromOutside(entry.Generation, signal);
            }
        }
    }

    /// <summary>Completes when no connection is left.</summary>
    public Task WhenEmpty()
    {
        lock (_gate)
        {
            if (_count == 0)
            {
                return Task.CompletedTask;
            }
            _empty ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _empty.Task;
        }
    }

    private void Sweep()
    {
        try
        {
            long now = _clock.NowMs;
            lock (_gate)
            {
                for (int i = 0; i < _used; i++)
                {
                    ref Entry entry = ref _entries[i];
                    if (entry.Connection is { } connection && now >= connection.Deadline)
                    {
                        connection.PostFromOutside(entry.Generation, Connection.SignalTimer);
                    }
                }
            }
        }
        catch (Exception exception)
        {
            _log.InternalError(exception);
        }
    }

    public void Dispose() => _timer.Dispose();
}
