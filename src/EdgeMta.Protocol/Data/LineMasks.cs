// Classifies 64 octets at once into three bit masks: where the CRs, the LFs and the dots are (bit k is
// octet k). Everything the DATA reader must notice is a pattern over those three masks and their shifts,
// so one load and three compares per 64 octets find the end of data, line-leading dots, bare CR/LF and
// line ends. Uses Vector512 where the hardware has it (AVX-512: one load), else two Vector256 (AVX2), else
// four Vector128 (SSE2, Arm64 AdvSimd: what a default Native AOT binary gets); without any of them the
// reader runs its scalar state machine only.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EdgeMta.Protocol.Data;

internal static class LineMasks
{
    /// <summary>Octets classified per call.</summary>
    public const int BlockSize = 64;

    public static bool IsSupported => Vector128.IsHardwareAccelerated;

    /// <summary>Sets bit k of each mask when octet k of the 64 at <paramref name="block"/> is CR, LF or '.'.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Classify(ref byte block, out ulong cr, out ulong lf, out ulong dot)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<byte> v = Vector512.LoadUnsafe(ref block);
            cr = Vector512.Equals(v, Vector512.Create((byte)'\r')).ExtractMostSignificantBits();
            lf = Vector512.Equals(v, Vector512.Create((byte)'\n')).ExtractMostSignificantBits();
            dot = Vector512.Equals(v, Vector512.Create((byte)'.')).ExtractMostSignificantBits();
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<byte> lo = Vector256.LoadUnsafe(ref block);
            Vector256<byte> hi = Vector256.LoadUnsafe(ref block, 32);
            cr = Mask256(lo, hi, (byte)'\r');
            lf = Mask256(lo, hi, (byte)'\n');
            dot = Mask256(lo, hi, (byte)'.');
        }
        else
        {
            Vector128<byte> v0 = Vector128.LoadUnsafe(ref block);
            Vector128<byte> v1 = Vector128.LoadUnsafe(ref block, 16);
            Vector128<byte> v2 = Vector128.LoadUnsafe(ref block, 32);
            Vector128<byte> v3 = Vector128.LoadUnsafe(ref block, 48);
            cr = Mask128(v0, v1, v2, v3, (byte)'\r');
            lf = Mask128(v0, v1, v2, v3, (byte)'\n');
            dot = Mask128(v0, v1, v2, v3, (byte)'.');
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mask256(Vector256<byte> lo, Vector256<byte> hi, byte value)
    {
        Vector256<byte> x = Vector256.Create(value);
        return Vector256.Equals(lo, x).ExtractMostSignificantBits()
            | ((ulong)Vector256.Equals(hi, x).ExtractMostSignificantBits() << 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mask128(Vector128<byte> v0, Vector128<byte> v1, Vector128<byte> v2, Vector128<byte> v3, byte value)
    {
        Vector128<byte> x = Vector128.Create(value);
        return Vector128.Equals(v0, x).ExtractMostSignificantBits()
            | ((ulong)Vector128.Equals(v1, x).ExtractMostSignificantBits() << 16)
            | ((ulong)Vector128.Equals(v2, x).ExtractMostSignificantBits() << 32)
            | ((ulong)Vector128.Equals(v3, x).ExtractMostSignificantBits() << 48);
    }
}
