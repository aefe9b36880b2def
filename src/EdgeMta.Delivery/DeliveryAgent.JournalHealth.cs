// A journal that cannot be written (a disk where every write fails: ENOSPC on a copy-on-write filesystem, EIO, a
// read-only remount). Its preallocated files let it go on through an ordinary full disk; when even those writes
// fail, every delivery made would be one the journal cannot hold, to be sent again (docs/DELIVERY.md: "re-send,
// never assume done"), and a retry every --retry-min would send the same messages again and again. So the agent
// stops starting attempts, says so once, and tries one small write every 5 s; the first that succeeds resumes.
using EdgeMta.Spool;

namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    private static readonly TimeSpan JournalProbeInterval = TimeSpan.FromSeconds(5);
    private bool _journalFailing;
    private long _journalProbeAt;
    private bool _journalProbing;

    /// <summary>Under the lock: a journal write failed; no attempt starts until a probe write succeeds.</summary>
    private void JournalFailedLocked(int errno)
    {
        if (_journalFailing) return;
        _journalFailing = true;
        _journalProbeAt = NowMs + (long)JournalProbeInterval.TotalMilliseconds;
        _events.Trouble($"delivery: the journal cannot be written (errno {errno}): no delivery starts until it can, tried every {JournalProbeInterval.TotalSeconds:0} s");
    }

    /// <summary>True while attempts must wait for the journal; posts the probe write when it is due.</summary>
    private bool JournalBlocked(out TimeSpan? probeIn)
    {
        probeIn = null;
        QueueEntry? any;
        lock (_gate)
        {
            if (!_journalFailing) return false;
            long left = _journalProbeAt - NowMs;
            if (_journalProbing) return true;
            if (left > 0)
            {
                probeIn = TimeSpan.FromMilliseconds(left);
                return true;
            }
            _journalProbing = true;
            any = _entries.Values.FirstOrDefault();
        }
        // The probe restates a live message's whole-message deferral (the fold takes it as it is): a write that says
        // nothing new, so it is harmless whenever it lands. With nothing live, any write would do: none is needed.
        JournalRecord[] probe = any is null ? [] : [Record(JournalRecordType.Deferred, any, JournalRecord.WholeMessage, any.Attempts, 0, default, false, NowMs, any.NextAttemptUnixMs)];
        _journal!.Post(probe, err =>
        {
            lock (_gate)
            {
                _journalProbing = false;
                if (err == 0)
                {
                    _journalFailing = false;
                    _events.Trouble("delivery: the journal is writable again; deliveries resume");
                }
                else
                {
                    _journalProbeAt = NowMs + (long)JournalProbeInterval.TotalMilliseconds;
                }
                _wake = true;
                Monitor.Pulse(_gate);
            }
        });
        return true;
    }
}
