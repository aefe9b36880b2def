#!/usr/bin/python3
# faultfs: a FUSE passthrough over a backing directory that fails or stalls storage calls on command, so
# the end-to-end tests can put the spool on a disk that misbehaves the way real ones do (EIO on write or
# fsync, ENOSPC, a filesystem remounted read-only, a device that stops answering) and watch what the
# server answers its clients (docs/PROTOCOL.md, "spool write fails").
#
# Usage: faultfs.py BACKING MOUNTPOINT CONTROL_SOCKET  (foreground, multithreaded; Debian python3-fusepy,
# which drives libfuse 2.9 and mounts directly as root). The mount is live once the control socket answers
# (it is opened from FUSE's init callback, after the kernel's FUSE_INIT). Stop: `fusermount3 -u MOUNTPOINT`,
# then the process exits by itself; killing it instead aborts the connection (calls fail with ENOTCONN).
#
# Control: a Unix stream socket, one command per line, one reply line each:
#   mode ok|stall|eio-write|eio-fsync|enospc|erofs  -> "ok MODE" once every call that starts later obeys it
#   stats                                           -> "creates=N unlinks=N writes=N ... stalled=N mode=M"
#   ping                                            -> "pong"
# Modes: stall blocks every write, fsync, fallocate, create, mkdir, unlink, rename, truncate and statfs
# until the mode changes (reads, getattr and readdir go on: a hung device still serves the page cache),
# bounded by --max-stall seconds after which the call fails EIO, so a test that forgets to release cannot
# wedge a process forever. eio-write fails writes (creates and fallocate succeed: the churn case);
# eio-fsync fails fsync and fsyncdir; enospc fails writes, fallocate mode 0, creates and mkdir, and statfs
# reports no free blocks; erofs fails every call that modifies (and opens for writing) with EROFS.
#
# What it supports: open/create (O_EXCL honoured), pread/pwrite at offsets, fallocate mode 0 and
# PUNCH_HOLE|KEEP_SIZE (passed to the backing fd by the fallocate syscall), fsync/fdatasync, fsyncdir,
# statfs, unlink, rename, readdir, getattr, truncate, utimens, chmod, mkdir/rmdir, and read-only shared
# mmap (files are not opened direct_io, so the page cache serves mappings). O_DIRECT is accepted and
# dropped on the backing fd: FUSE hands us the caller's aligned data but Python's buffers are not aligned.
# flock is left to the kernel (no flock op: the kernel then locks locally, which is exact for one mount).
# What it does not: xattrs, POSIX byte-range locks, O_TMPFILE (libfuse 2.9 has no tmpfile op), ioctl.
import argparse
import ctypes
import ctypes.util
import errno
import os
import socket
import threading
import time

import fusepy

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
FALLOC_FL_KEEP_SIZE = 1
MODES = ("ok", "stall", "eio-write", "eio-fsync", "enospc", "erofs")


# libfuse 2.9's struct fuse_operations goes on after ioctl with poll, write_buf, read_buf, flock and
# fallocate; fusepy 3.0.1 stops at ioctl, so the kernel would be told fallocate is not there (EOPNOTSUPP,
# and glibc's posix_fallocate would then write a byte per block through us). The struct is extended here.
class Operations29(ctypes.Structure):
    _fields_ = fusepy.fuse_operations._fields_ + [
        ("poll", ctypes.c_voidp),
        ("write_buf", ctypes.c_voidp),
        ("read_buf", ctypes.c_voidp),
        ("flock", ctypes.c_voidp),
        ("fallocate", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int, fusepy.c_off_t,
                                       fusepy.c_off_t, ctypes.POINTER(fusepy.fuse_file_info))),
    ]


fusepy.fuse_operations = Operations29


class Fuse29(fusepy.FUSE):
    """fusepy's FUSE with fallocate, and create told the open flags (O_EXCL, O_RDWR) it otherwise drops."""

    def fallocate(self, path, mode, offset, length, fip):
        return self.operations("fallocate", self._decode_optional_path(path), mode, offset, length, fip.contents.fh)

    def create(self, path, mode, fip):
        fi = fip.contents
        fi.fh = self.operations("create", path.decode(self.encoding), mode, fi.flags)
        return 0


class FaultFs:
    use_ns = True
    # Calls on a file unlinked while open (hard_remove below) come with no path: they go by the fd.
    flag_nullpath_ok = True

    def __init__(self, backing, control, max_stall):
        self.backing = os.path.realpath(backing)
        self.control = control
        self.max_stall = max_stall
        self.mode = "ok"
        self.cond = threading.Condition()
        self.counts = {k: 0 for k in ("creates", "unlinks", "renames", "writes", "write_bytes", "fsyncs",
                                      "fsyncdirs", "fallocates", "punches", "statfs", "faults", "stalled")}

    def __call__(self, op, *args):
        handler = getattr(self, op, None)
        if handler is None:
            raise fusepy.FuseOSError(errno.ENOSYS)
        return handler(*args)

    def real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def count(self, key, n=1):
        with self.cond:
            self.counts[key] += n

    # The fault gate: every storage call names its kind; the mode decides. Holding the condition's lock
    # while the mode is read is what makes "ok MODE" mean that every later call sees MODE.
    def gate(self, kind):
        with self.cond:
            if self.mode == "stall":
                self.counts["stalled"] += 1
                deadline = time.monotonic() + self.max_stall
                try:
                    while self.mode == "stall":
                        left = deadline - time.monotonic()
                        if left <= 0:
                            self.counts["faults"] += 1
                            raise fusepy.FuseOSError(errno.EIO)
                        self.cond.wait(left)
                finally:
                    self.counts["stalled"] -= 1
            err = self.fault(kind)
            if err:
                self.counts["faults"] += 1
                raise fusepy.FuseOSError(err)

    def fault(self, kind):
        m = self.mode
        if m == "eio-write" and kind == "write":
            return errno.EIO
        if m == "eio-fsync" and kind == "fsync":
            return errno.EIO
        if m == "enospc" and kind in ("write", "fallocate", "create", "mkdir"):
            return errno.ENOSPC
        if m == "erofs" and kind != "statfs" and kind != "fsync":
            return errno.EROFS
        return 0

    # --- control channel ---
    def init(self, path):
        try:
            os.unlink(self.control)
        except FileNotFoundError:
            pass
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.control)
        server.listen(8)
        threading.Thread(target=self.serve_control, args=(server,), daemon=True).start()

    def serve_control(self, server):
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self.control_session, args=(conn,), daemon=True).start()

    def control_session(self, conn):
        with conn, conn.makefile("rwb", buffering=0) as f:
            for raw in f:
                words = raw.decode("ascii", "replace").split()
                f.write((self.command(words) + "\n").encode("ascii"))

    def command(self, words):
        if words == ["ping"]:
            return "pong"
        if words == ["stats"]:
            with self.cond:
                return " ".join(f"{k}={v}" for k, v in self.counts.items()) + f" mode={self.mode}"
        if len(words) == 2 and words[0] == "mode" and words[1] in MODES:
            with self.cond:
                self.mode = words[1]
                self.cond.notify_all()
            return "ok " + words[1]
        return "error unknown command: " + " ".join(words)

    # --- metadata ---
    def getattr(self, path, fh=None):
        st = os.fstat(fh) if fh is not None else os.lstat(self.real(path))
        out = {k: getattr(st, k) for k in ("st_ino", "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")}
        return out | {"st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns}

    def access(self, path, amode):
        if not os.access(self.real(path), amode):
            raise fusepy.FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self.real(path))

    def opendir(self, path):
        return 0

    def releasedir(self, path, fh):
        return 0

    def readlink(self, path):
        return os.readlink(self.real(path))

    def statfs(self, path):
        self.gate("statfs")
        self.count("statfs")
        sv = os.statvfs(self.real(path))
        out = {k: getattr(sv, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                                           "f_ffree", "f_favail", "f_flag", "f_namemax")}
        if self.mode == "enospc":
            out["f_bfree"] = out["f_bavail"] = 0
        return out

    def chmod(self, path, mode):
        self.gate("meta")
        os.chmod(self.real(path), mode)

    def chown(self, path, uid, gid):
        self.gate("meta")
        os.chown(self.real(path), uid, gid)

    def utimens(self, path, times=None):
        self.gate("meta")
        os.utime(self.real(path), ns=times)

    def mknod(self, path, mode, dev):
        # A Unix socket bound in the spool (control.sock) is made with mknod(S_IFSOCK).
        self.gate("create")
        os.mknod(self.real(path), mode, dev)

    def mkdir(self, path, mode):
        self.gate("mkdir")
        os.mkdir(self.real(path), mode)

    def rmdir(self, path):
        self.gate("unlink")
        os.rmdir(self.real(path))

    def unlink(self, path):
        self.gate("unlink")
        os.unlink(self.real(path))
        self.count("unlinks")

    def rename(self, old, new):
        self.gate("rename")
        os.rename(self.real(old), self.real(new))
        self.count("renames")

    def truncate(self, path, length, fh=None):
        self.gate("truncate")
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self.real(path), length)

    # --- files ---
    def open(self, path, flags):
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
            err = self.fault("open-write")
            if err:
                self.count("faults")
                raise fusepy.FuseOSError(err)
        return os.open(self.real(path), flags & ~os.O_DIRECT & ~os.O_CREAT & ~os.O_EXCL)

    def create(self, path, mode, flags):
        self.gate("create")
        fd = os.open(self.real(path), (flags & ~os.O_DIRECT) | os.O_CREAT, mode)
        self.count("creates")
        return fd

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        self.gate("write")
        n = os.pwrite(fh, data, offset)
        with self.cond:
            self.counts["writes"] += 1
            self.counts["write_bytes"] += n
        return n

    def fallocate(self, path, mode, offset, length, fh):
        self.gate("fallocate" if mode & ~FALLOC_FL_KEEP_SIZE == 0 else "punch")
        if libc.fallocate(fh, mode, offset, length) != 0:
            raise fusepy.FuseOSError(ctypes.get_errno())
        self.count("fallocates" if mode & ~FALLOC_FL_KEEP_SIZE == 0 else "punches")
        return 0

    def fsync(self, path, datasync, fh):
        self.gate("fsync")
        (os.fdatasync if datasync else os.fsync)(fh)
        self.count("fsyncs")

    def fsyncdir(self, path, datasync, fh):
        self.gate("fsync")
        fd = os.open(self.real(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.count("fsyncdirs")

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)


def main():
    p = argparse.ArgumentParser(description="FUSE passthrough that injects storage faults on command")
    p.add_argument("backing")
    p.add_argument("mountpoint")
    p.add_argument("control", help="Unix socket path for the control channel (outside the mount)")
    p.add_argument("--max-stall", type=float, default=120.0, help="seconds a stalled call waits before EIO")
    a = p.parse_args()
    fs = FaultFs(a.backing, a.control, a.max_stall)
    # big_writes/max_write: libfuse 2.9 otherwise splits every write into 4 KiB requests. hard_remove: an
    # unlinked open file is really unlinked (libfuse would otherwise rename it to .fuse_hiddenN and keep it
    # in readdir and on the disk until its last close).
    Fuse29(fs, a.mountpoint, foreground=True, nothreads=False, fsname="faultfs", subtype="faultfs",
           big_writes=True, max_write=131072, max_read=131072, hard_remove=True)


if __name__ == "__main__":
    main()
