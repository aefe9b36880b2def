// The spool's consumers (docs/DELIVERY.md): whoever delivers what the spool keeps learns of each commit the
// moment it is durable, with no polling and no scan of the segments. The writer thread that made the record
// durable calls OnCommitted once per record, after the session's 250 is on its way, before the writer lets
// go of the message.
// What it does not do: carry the message. The consumer reads the record by its place (segment sequence and
// offset, the names the scanner and recovery use too) when it is ready to deliver it; the call itself must
// not block (no I/O, no lock held long): it runs on a spool writer, and every commit behind it waits.
// A record written whole at its commit whose region fits the message's first chunk (32 KiB: most mail) comes with
// its payload, still in the writer's memory: the consumer may copy it rather than read it back from the disk (the
// commit was a direct write, so a read is a device round trip beside the spool's own commits). Valid during the
// call only.
// How it fails: an exception thrown by the observer is the observer's bug; the spool catches nothing here, as
// a commit already answered 250 must not be taken back for it.
namespace EdgeMta.Spool;

/// <summary>Told of every record the spool makes durable (SpoolOptions.Observer).</summary>
public interface ISpoolObserver
{
    /// <summary>The record of <paramref name="queueId"/> (16 ASCII bytes, valid during the call) is durable at
    /// <paramref name="offset"/> of segment <paramref name="segment"/> (its sequence number, also its file name).</summary>
    void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId);

    /// <summary>The same, with the record's payload (envelope then data, exactly as written and checksummed) still at
    /// hand: <paramref name="payload"/>, of which the first <paramref name="envelopeLength"/> bytes are the envelope,
    /// and the arrival time of slot 1. Valid during the call only. By default the payload is ignored.</summary>
    void OnCommitted(long segment, long offset, ReadOnlySpan<byte> queueId, ReadOnlySpan<byte> payload, int envelopeLength, long arrivalUnixMs)
        => OnCommitted(segment, offset, queueId);
}
