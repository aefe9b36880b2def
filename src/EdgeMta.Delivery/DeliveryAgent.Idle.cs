// Idle connections (docs/DELIVERY.md "What a delivery attempt does": connections are reused, idle at most 10 s).
// A session with nothing to send parks (IRelayWork.Park); new work wakes the one parked last before any new
// connection is opened; the pump ends those idle past the limit, and a stop ends them all at once (a paused
// connection hears no OnShutdown from the transport, so the agent must wake it first).
namespace EdgeMta.Delivery;

public sealed partial class DeliveryAgent
{
    /// <summary>Longest idle wait between transactions on one connection.</summary>
    internal static readonly TimeSpan IdleReuse = TimeSpan.FromSeconds(10);

    /// <summary>Ends idle connections past the limit; returns when the next one will be, if any is parked.</summary>
    private TimeSpan? EndIdleLocked()
    {
        TimeSpan? next = null;
        long now = NowMs, limit = (long)IdleReuse.TotalMilliseconds;
        foreach (var hop in _hops)
        {
            for (int i = hop.Parked.Count - 1; i >= 0; i--)
            {
                var parked = hop.Parked[i];
                long left = parked.ParkedAtMs + limit - now;
                if (left > 0 && !_stopping)
                {
                    next = Min(next, TimeSpan.FromMilliseconds(left));
                    continue;
                }
                hop.Parked.RemoveAt(i);
                parked.WakeLocked(expired: true);
            }
        }
        return next;
    }

    /// <summary>First step of a stop, before the transport's: no attempt starts, idle connections say QUIT, and
    /// sessions in flight finish their transaction and then QUIT (TryNext answers false).</summary>
    public void BeginStop()
    {
        lock (_gate)
        {
            _stopping = true;
            EndIdleLocked();
            Monitor.PulseAll(_gate);
        }
    }
}
