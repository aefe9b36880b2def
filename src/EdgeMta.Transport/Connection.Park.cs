// Parking: a paused connection gives its pooled input buffer back.
//
// What it does: when the drive loop finds the connection paused and waiting for Resume (the spool's durable
// write, or a screening verdict: docs/SCREENING.md, "a session waiting for a verdict holds no buffer"), the
// bytes it still keeps (typically one unconsumed command line, at most 512 octets by RFC 5321 §4.5.3.1.4)
// are copied into a small array owned by this Connection object, and the pooled receive buffer (16 KiB by
// default) goes back to the pool. On Resume, before the handler hears OnResumed and is offered input again,
// the bytes are copied back into a pooled buffer, in the same order, so the handler sees exactly what it
// would have seen without parking. perf/dnsbl-idle.sh (10,000 connections paused at EHLO for a blocklist
// verdict): 8.04 KiB each before this, 4.07 KiB after; 3.16 KiB for a connection idle between commands.
//
// What it deliberately does not do: park more than MaxParkedBytes (a handler that keeps more is mid-data
// and keeps its buffer as before), or park while a real receive is in flight (the socket engine, or the
// SslStream, is writing into the buffer; a zero-byte wait holds none). The small array is allocated at
// most a few times per Connection object (64 bytes, doubled up to MaxParkedBytes when needed), never
// shrinks, and is reused by every later connection on the object: no allocation per pause once warm.
//
// How it fails: it does not; a Rent that cannot be served is impossible here (the receive size is within
// the pool's range). Closing or draining a parked connection drops the parked bytes with the input
// (ReturnInput), as it drops kept input today.
using System.Numerics;

namespace EdgeMta.Transport;

internal sealed partial class Connection
{
    /// <summary>The most a paused connection parks; more than this and it keeps its pooled buffer. Twice a
    /// command line (RFC 5321 §4.5.3.1.4: 512 octets) so a line and a pipelined follower fit.</summary>
    internal const int MaxParkedBytes = 1024;

    private const int MinParkedBytes = 64;

    private byte[]? _parked;
    private int _parkedLength;

    /// <summary>Called where the drive loop waits for Resume: moves the kept bytes out of the pooled buffer.</summary>
    private void ParkInput()
    {
        if (_input is null || _parkedLength != 0 || (_receivePending && !_receiveZeroByte))
        {
            return; // nothing to give back, already parked, or a receive is writing into the buffer
        }
        int kept = _inputEnd - _inputStart;
        if (kept > MaxParkedBytes)
        {
            return;
        }
        if (kept > 0)
        {
            if (_parked is null || _parked.Length < kept)
            {
                _parked = new byte[Math.Max(MinParkedBytes, (int)BitOperations.RoundUpToPowerOf2((uint)kept))];
            }
            Buffer.BlockCopy(_input, _inputStart, _parked, 0, kept);
        }
        ReturnInput(); // clears _parkedLength: set it after
        _parkedLength = kept;
    }

    /// <summary>Called on Resume, before OnResumed: the parked bytes go back into a pooled buffer, ahead of
    /// anything received later.</summary>
    private void UnparkInput()
    {
        if (_parkedLength == 0)
        {
            return;
        }
        _input = _server.Buffers.Rent(Math.Max(_server.ReceiveBufferSize, _parkedLength))!;
        Buffer.BlockCopy(_parked!, 0, _input, 0, _parkedLength);
        _inputStart = 0;
        _inputEnd = _parkedLength;
        _parkedLength = 0;
    }
}
