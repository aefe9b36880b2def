// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every spool header and payload.
// Chosen over CRC32 (IEEE) because x86 SSE4.2 and ARMv8 compute it in hardware, 8 bytes per instruction;
// System.IO.Hashing is not referenced by the solution and has no CRC32C. A slicing table is the fallback.
// Convention: Append(crc, data) continues a running value that starts at 0 (the ~ pre/post conditioning is
// applied inside), so Append(Append(0, a), b) == Append(0, a ++ b) and payloads can be summed in chunks.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace EdgeMta.Spool;

internal static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    public static uint Append(uint crc, ReadOnlySpan<byte> data) => ~Update(~crc, data);

    private static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            ulong c = crc;
            while (data.Length >= 8)
            {
                c = Sse42.X64.Crc32(c, MemoryMarshal.Read<ulong>(data));
                data = data[8..];
            }
            crc = (uint)c;
            foreach (byte b in data) crc = Sse42.Crc32(crc, b);
            return crc;
        }
        if (Crc32.Arm64.IsSupported)
        {
            while (data.Length >= 8)
            {
                crc = Crc32.Arm64.ComputeCrc32C(crc, MemoryMarshal.Read<ulong>(data));
                data = data[8..];
            }
            foreach (byte b in data) crc = Crc32.ComputeCrc32C(crc, b);
            return crc;
        }
        return UpdateScalar(crc, data);
    }

    /// <summary>The table-driven fallback, also the reference the tests check the hardware path against.</summary>
    internal static uint UpdateScalar(uint crc, ReadOnlySpan<byte> data)
    {
        uint[] t = Table;
        foreach (byte b in data) crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    internal static uint ComputeScalar(ReadOnlySpan<byte> data) => ~UpdateScalar(~0u, data);

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            t[i] = c;
        }
        return t;
    }

    /// <summary>Checksum of a fixed-size header field run followed by the values that bind it to its place.</summary>
    public static uint Bound(ReadOnlySpan<byte> fields, ulong salt, long offset)
    {
        Span<byte> tail = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(tail, salt);
        BinaryPrimitives.WriteInt64LittleEndian(tail[8..], offset);
        return Append(Append(0, fields), tail);
    }
}
