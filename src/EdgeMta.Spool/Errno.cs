// Names of the errno values a spool write, segment creation or flush can meet on Linux (asm-generic/errno-base.h,
// errno.h), for the log: `errno=EROFS` tells an operator what `errno=30` makes them look up.
// What it does not do: it is no strerror; a value not listed has no name, and the caller logs the number.
namespace EdgeMta.Spool;

public static class Errno
{
    /// <summary>The symbolic name of <paramref name="errno"/> (ASCII), or empty when it is not one listed here.</summary>
    public static ReadOnlySpan<byte> Name(int errno) => errno switch
    {
        1 => "EPERM"u8,
        2 => "ENOENT"u8,
        5 => "EIO"u8,
        6 => "ENXIO"u8,
        9 => "EBADF"u8,
        12 => "ENOMEM"u8,
        13 => "EACCES"u8,
        16 => "EBUSY"u8,
        19 => "ENODEV"u8,
        22 => "EINVAL"u8,
        23 => "ENFILE"u8,
        24 => "EMFILE"u8,
        27 => "EFBIG"u8,
        28 => "ENOSPC"u8,
        30 => "EROFS"u8,
        95 => "EOPNOTSUPP"u8,
        110 => "ETIMEDOUT"u8,
        116 => "ESTALE"u8,
        117 => "EUCLEAN"u8,
        122 => "EDQUOT"u8,
        _ => default,
    };
}
