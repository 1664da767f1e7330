"""The io_uring ABI: constants and ``ctypes`` mirrors of ``<linux/io_uring.h>``.

One job: describe the bytes the kernel and we share, and refuse to be imported if
``ctypes`` or ``struct`` lays them out differently from the kernel. Imports nothing from the
rest of the package and holds no state, so any thread may use it.

Layouts, from ``include/uapi/linux/io_uring.h`` (64-byte SQE, 16-byte CQE)::

    struct io_uring_sqe {                 offset
        __u8  opcode;                       0   IORING_OP_*
        __u8  flags;                        1   IOSQE_*
        __u16 ioprio;                       2
        __s32 fd;                           4   the file, or the directory fd (*at ops)
        __u64 off;    (union addr2)         8   file offset; statx: the statx buffer;
                                                renameat: the new path
        __u64 addr;                        16   buffer, iovec array, path, cancel target
        __u32 len;                         24   bytes, iovecs, mode, statx mask, new dirfd
        __u32 op_flags;  (union)           28   rw_flags, fsync_flags, open_flags...
        __u64 user_data;                   32   echoed in the CQE
        __u16 buf_index; __u16 personality; __s32 splice_fd_in;   40
        __u64 addr3; __u64 __pad2[1];      48
    };
    struct io_uring_cqe { __u64 user_data; __s32 res; __u32 flags; };

Every field this package sets lies in the first 40 bytes, so an SQE is written with one
``struct.pack_into`` (:data:`SQE_HEAD`); the other 24 bytes are zero from the ``mmap`` and
nobody writes them (the kernel never writes SQEs).

``struct statx`` (256 bytes) is described here too: ``IORING_OP_STATX`` fills one.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Final

# ---- system calls and mmap offsets -----------------------------------------------------
IORING_OFF_SQ_RING: Final = 0
IORING_OFF_CQ_RING: Final = 0x8000000
IORING_OFF_SQES: Final = 0x10000000

# ---- io_uring_setup flags --------------------------------------------------------------
IORING_SETUP_IOPOLL: Final = 1 << 0
IORING_SETUP_SQPOLL: Final = 1 << 1
IORING_SETUP_CQSIZE: Final = 1 << 3
IORING_SETUP_CLAMP: Final = 1 << 4
IORING_SETUP_SUBMIT_ALL: Final = 1 << 7  # 5.18: keep submitting after an SQE fails
IORING_SETUP_COOP_TASKRUN: Final = 1 << 8  # 5.19: no IPI to run completion task work
IORING_SETUP_TASKRUN_FLAG: Final = 1 << 9
IORING_SETUP_SINGLE_ISSUER: Final = 1 << 12
IORING_SETUP_DEFER_TASKRUN: Final = 1 << 13

# ---- features reported by io_uring_setup -----------------------------------------------
IORING_FEAT_SINGLE_MMAP: Final = 1 << 0  # 5.4: SQ and CQ rings share one mapping
IORING_FEAT_NODROP: Final = 1 << 1  # 5.5: a full CQ ring holds CQEs back, never drops
IORING_FEAT_SUBMIT_STABLE: Final = 1 << 2  # 5.5: SQE data is copied at submission
IORING_FEAT_FAST_POLL: Final = 1 << 5
IORING_FEAT_NATIVE_WORKERS: Final = 1 << 9

# ---- io_uring_enter flags --------------------------------------------------------------
IORING_ENTER_GETEVENTS: Final = 1 << 0

# ---- io_uring_register opcodes ---------------------------------------------------------
IORING_REGISTER_EVENTFD: Final = 4
IORING_UNREGISTER_EVENTFD: Final = 5
IORING_REGISTER_PROBE: Final = 8  # 5.6
IO_URING_OP_SUPPORTED: Final = 1 << 0

# ---- ring flags ------------------------------------------------------------------------
IORING_SQ_NEED_WAKEUP: Final = 1 << 0
IORING_SQ_CQ_OVERFLOW: Final = 1 << 1
IORING_CQ_EVENTFD_DISABLED: Final = 1 << 0  # 5.8: the app may mute the eventfd

# ---- operation codes (enum io_uring_op) ------------------------------------------------
IORING_OP_NOP: Final = 0
IORING_OP_READV: Final = 1
IORING_OP_WRITEV: Final = 2
IORING_OP_FSYNC: Final = 3
IORING_OP_POLL_ADD: Final = 6
IORING_OP_ASYNC_CANCEL: Final = 14
IORING_OP_OPENAT: Final = 18
IORING_OP_CLOSE: Final = 19
IORING_OP_STATX: Final = 21
IORING_OP_READ: Final = 22
IORING_OP_WRITE: Final = 23
IORING_OP_RENAMEAT: Final = 35
IORING_OP_UNLINKAT: Final = 36
IORING_OP_MKDIRAT: Final = 37

# The name and first kernel of each opcode this package uses (for messages).
OPCODES: Final[dict[int, tuple[str, str]]] = {
    IORING_OP_NOP: ("IORING_OP_NOP", "5.1"),
    IORING_OP_READV: ("IORING_OP_READV", "5.1"),
    IORING_OP_WRITEV: ("IORING_OP_WRITEV", "5.1"),
    IORING_OP_FSYNC: ("IORING_OP_FSYNC", "5.1"),
    IORING_OP_POLL_ADD: ("IORING_OP_POLL_ADD", "5.1"),
    IORING_OP_ASYNC_CANCEL: ("IORING_OP_ASYNC_CANCEL", "5.5"),
    IORING_OP_OPENAT: ("IORING_OP_OPENAT", "5.6"),
    IORING_OP_CLOSE: ("IORING_OP_CLOSE", "5.6"),
    IORING_OP_STATX: ("IORING_OP_STATX", "5.6"),
    IORING_OP_READ: ("IORING_OP_READ", "5.6"),
    IORING_OP_WRITE: ("IORING_OP_WRITE", "5.6"),
    IORING_OP_RENAMEAT: ("IORING_OP_RENAMEAT", "5.11"),
    IORING_OP_UNLINKAT: ("IORING_OP_UNLINKAT", "5.11"),
    IORING_OP_MKDIRAT: ("IORING_OP_MKDIRAT", "5.15"),
}
# Without these the loop is refused at creation; the others fail only when used.
REQUIRED_OPCODES: Final = (
    IORING_OP_READ,
    IORING_OP_WRITE,
    IORING_OP_READV,
    IORING_OP_WRITEV,
    IORING_OP_FSYNC,
    IORING_OP_OPENAT,
    IORING_OP_CLOSE,
    IORING_OP_STATX,
    IORING_OP_ASYNC_CANCEL,
)

# ---- per-op flags ----
IORING_FSYNC_DATASYNC: Final = 1 << 0
AT_FDCWD: Final = -100
AT_SYMLINK_NOFOLLOW: Final = 0x100
AT_REMOVEDIR: Final = 0x200
AT_EMPTY_PATH: Final = 0x1000
STATX_BASIC_STATS: Final = 0x7FF
STATX_BTIME: Final = 0x800


# ---- structures ------------------------------------------------------------------------
class SqringOffsets(ctypes.Structure):
    """``struct io_sqring_offsets``: where each SQ ring field lies in its mapping."""

    _fields_ = [
        ("head", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
        ("ring_mask", ctypes.c_uint32),
        ("ring_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("dropped", ctypes.c_uint32),
        ("array", ctypes.c_uint32),
        ("resv1", ctypes.c_uint32),
        ("user_addr", ctypes.c_uint64),
    ]


class CqringOffsets(ctypes.Structure):
    """``struct io_cqring_offsets``: where each CQ ring field lies in its mapping."""

    _fields_ = [
        ("head", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
        ("ring_mask", ctypes.c_uint32),
        ("ring_entries", ctypes.c_uint32),
        ("overflow", ctypes.c_uint32),
        ("cqes", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("resv1", ctypes.c_uint32),
        ("user_addr", ctypes.c_uint64),
    ]


class UringParams(ctypes.Structure):
    """``struct io_uring_params``: filled in by the caller (flags) and the kernel."""

    _fields_ = [
        ("sq_entries", ctypes.c_uint32),
        ("cq_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("sq_thread_cpu", ctypes.c_uint32),
        ("sq_thread_idle", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
        ("wq_fd", ctypes.c_uint32),
        ("resv", ctypes.c_uint32 * 3),
        ("sq_off", SqringOffsets),
        ("cq_off", CqringOffsets),
    ]


class Iovec(ctypes.Structure):
    """``struct iovec`` for readv/writev."""

    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


# struct io_uring_probe { u8 last_op; u8 ops_len; u16 resv; u32 resv2[3]; ops[] }
# struct io_uring_probe_op { u8 op; u8 resv; u16 flags; u32 resv2; }
PROBE_HEADER_SIZE: Final = 16
PROBE_OP_SIZE: Final = 8
PROBE_OPS: Final = 256  # room for every opcode a u8 can name

SQE_SIZE: Final = 64
CQE_SIZE: Final = 16
# The first 40 bytes of an SQE: opcode, flags, ioprio, fd, off, addr, len, op_flags,
# user_data. Native byte order, no padding (the kernel's fields are contiguous; checked).
SQE_HEAD: Final = struct.Struct("=BBHiQQIIQ")
CQE: Final = struct.Struct("=QiI")  # user_data, res, flags

STATX_SIZE: Final = 256
# Offsets into struct statx of the fields an os.stat_result needs.
STATX_FIELDS: Final[dict[str, int]] = {
    "stx_mask": 0,
    "stx_blksize": 4,
    "stx_attributes": 8,
    "stx_nlink": 16,
    "stx_uid": 20,
    "stx_gid": 24,
    "stx_mode": 28,
    "stx_ino": 32,
    "stx_size": 40,
    "stx_blocks": 48,
    "stx_atime": 64,
    "stx_btime": 80,
    "stx_ctime": 96,
    "stx_mtime": 112,
    "stx_rdev_major": 128,
    "stx_rdev_minor": 132,
    "stx_dev_major": 136,
    "stx_dev_minor": 140,
}
# mask blksize attributes nlink uid gid mode spare ino size blocks attributes_mask
STATX_HEAD: Final = struct.Struct("=IIQIIIHHQQQQ")
# struct statx_timestamp { __s64 tv_sec; __u32 tv_nsec; __s32 __reserved; }
STATX_TIMESTAMP: Final = struct.Struct("=qIi")
STATX_DEVICES: Final = struct.Struct("=IIII")  # rdev major, minor, dev major, minor

# ---- layout check ----------------------------------------------------------------------
_PARAMS_LAYOUT: Final[dict[str, int]] = {
    "sq_entries": 0,
    "cq_entries": 4,
    "flags": 8,
    "features": 20,
    "wq_fd": 24,
    "sq_off": 40,
    "cq_off": 80,
}
_SQ_OFF_LAYOUT: Final[dict[str, int]] = {"head": 0, "tail": 4, "array": 24, "user_addr": 32}
_CQ_OFF_LAYOUT: Final[dict[str, int]] = {"head": 0, "cqes": 20, "flags": 24, "user_addr": 32}


def layout_errors() -> list[str]:
    """Every way our descriptions differ from the kernel ABI (empty when they match)."""
    errors: list[str] = []
    checks: list[tuple[type[ctypes.Structure], int, dict[str, int]]] = [
        (UringParams, 120, _PARAMS_LAYOUT),
        (SqringOffsets, 40, _SQ_OFF_LAYOUT),
        (CqringOffsets, 40, _CQ_OFF_LAYOUT),
        (Iovec, 16, {"iov_base": 0, "iov_len": 8}),
    ]
    for cstruct, size, offsets in checks:
        if ctypes.sizeof(cstruct) != size:
            errors.append(f"sizeof({cstruct.__name__}) is {ctypes.sizeof(cstruct)}, not {size}")
        for name, want in offsets.items():
            offset = int(getattr(cstruct, name).offset)
            if offset != want:
                errors.append(f"{cstruct.__name__}.{name} at offset {offset}, not {want}")
    if SQE_HEAD.size != 40:
        errors.append(f"SQE_HEAD covers {SQE_HEAD.size} bytes, not 40")
    if CQE.size != CQE_SIZE:
        errors.append(f"CQE covers {CQE.size} bytes, not {CQE_SIZE}")
    if STATX_HEAD.size != STATX_FIELDS["stx_atime"]:
        errors.append(f"STATX_HEAD covers {STATX_HEAD.size} bytes, not 64")
    if STATX_TIMESTAMP.size != 16 or STATX_DEVICES.size != 16:
        errors.append("statx timestamp or device block is not 16 bytes")
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        errors.append("not a 64-bit ABI (SQE addresses are 64-bit; pointers here are not)")
    return errors


_errors = layout_errors()
if _errors:  # pragma: no cover - only on an ABI we have never met
    raise ImportError(
        "sysletloop.uring: layouts do not match <linux/io_uring.h>: " + "; ".join(_errors)
    )
del _errors
