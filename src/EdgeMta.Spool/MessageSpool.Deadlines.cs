// Every session waiting for the spool waits at most SpoolOptions.CommitTimeout (FORMAT.md, "Writing"): a
// commit still unanswered then gets 451 4.3.0, and a stream paused for its writer fails (451 at its end)
// and reads on. A stalled disk (a dying drive, an NFS or iSCSI hiccup, dirty-page throttling) then costs the
// waiting clients a 451 each and nobody else anything: no file I/O runs on a socket thread, and this check
// touches only memory. The expired error (ETIMEDOUT) also shuts the MAIL gate for the failing window.
// A timer of the spool's clock (TimeProvider: a fake one in tests) looks every 100 ms; a write that returns
// after its commit expired is taken back (SpoolMessage.Writer.cs), so the 451 is never a lie.
// Cost: a lock and a swap-remove in a small array per waiting message, no allocation.
using EdgeMta.Spool.Native;

namespace EdgeMta.Spool;

public sealed partial class MessageSpool
{
    private readonly Lock _waitingGate = new();
    private SpoolMessage?[] _waiting = new SpoolMessage?[64];
    private int[] _waitingGenerations = new int[64];
    private int _waitingCount;
    private readonly long _timeoutTicks;
    private ITimer? _deadlineTimer;
    private readonly List<(SpoolMessage Message, int Generation)> _expired = new();

    private void StartDeadlines()
    {
        _deadlineTimer = _clock.CreateTimer(_ => ExpireOverdue(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
    }

    private void StopDeadlines() => _deadlineTimer?.Dispose();

    /// <summary>The message waits for the spool from now, at most the commit timeout.</summary>
    internal void WaitWithDeadline(SpoolMessage m)
    {
        lock (_waitingGate)
        {
            m.Deadline = _clock.GetTimestamp() + _timeoutTicks;
            if (m.WaitingIndex >= 0) return;
            if (_waitingCount == _waiting.Length)
            {
                Array.Resize(ref _waiting, _waiting.Length * 2);
                Array.Resize(ref _waitingGenerations, _waiting.Length);
            }
            m.WaitingIndex = _waitingCount;
            _waiting[_waitingCount] = m;
            _waitingGenerations[_waitingCount] = m.Generation;
            _waitingCount++;
        }
    }

    internal void StopWaiting(SpoolMessage m)
    {
        lock (_waitingGate) RemoveLocked(m);
    }

    private void RemoveLocked(SpoolMessage m)
    {
        int i = m.WaitingIndex;
        if (i < 0 || i >= _waitingCount || _waiting[i] != m) return;
        int last = --_waitingCount;
        _waiting[i] = _waiting[last];
        _waitingGenerations[i] = _waitingGenerations[last];
        _waiting[i]!.WaitingIndex = i;
        _waiting[last] = null;
        m.WaitingIndex = -1;
    }

    /// <summary>Answers every wait past its deadline (the timer's thread; tests call it after moving a fake clock).</summary>
    internal void ExpireOverdue()
    {
        lock (_expired)
        {
            long now = _clock.GetTimestamp();
            lock (_waitingGate)
            {
                for (int i = _waitingCount - 1; i >= 0; i--)
                {
                    var m = _waiting[i]!;
                    if (now - m.Deadline < 0) continue;
                    _expired.Add((m, _waitingGenerations[i]));
                    RemoveLocked(m);
                }
            }
            if (_expired.Count == 0) return;
            NoteStorageError(LibC.ETIMEDOUT);
            foreach (var (m, generation) in _expired) m.Expire(generation);
            _expired.Clear();
        }
    }
}
