"""The Linux AIO ABI: constants and ``ctypes`` mirrors of ``<linux/aio_abi.h>``.

This module has one job: describe the bytes the kernel reads and writes, and refuse to be
imported if ``ctypes`` lays them out differently from the kernel. It imports nothing from
the rest of the package and touches no state, so any thread may use it.

Why our own structs rather than libaio's ``<libaio.h>`` shapes: libaio's ``struct iocb``
is the kernel's, byte for byte, on every 64-bit little-endian ABI (its ``PADDEDptr`` and
``PADDEDul`` macros pad pointers to 64 bits), so one definition serves both backends, and
the raw-syscall backend must use the kernel's shape anyway.

Layout, from ``include/uapi/linux/aio_abi.h`` (64 bytes per iocb, 32 per event)::

    struct iocb {                         offset
        __u64 aio_data;                     0   echoed back in io_event.data
        __u32 aio_key, aio_rw_flags;        8   PADDED(): order swaps on big-endian
        __u16 aio_lio_opcode;              16   IOCB_CMD_*
        __s16 aio_reqprio;                 18
        __u32 aio_fildes;                  20
        __u64 aio_buf;                     24   buffer address (poll: the event mask)
        __u64 aio_nbytes;                  32
        __s64 aio_offset;                  40
        __u64 aio_reserved2;               48
        __u32 aio_flags;                   56   IOCB_FLAG_*
        __u32 aio_resfd;                   60   eventfd signalled when IOCB_FLAG_RESFD
    };
    struct io_event { __u64 data, obj; __s64 res, res2; };
"""

from __future__ import annotations

import ctypes
import struct
import sys
from typing import Final

# ---- operation codes (enum in aio_abi.h) -----------------------------------------------
IOCB_CMD_PREAD: Final = 0
IOCB_CMD_PWRITE: Final = 1
IOCB_CMD_FSYNC: Final = 2
IOCB_CMD_FDSYNC: Final = 3
IOCB_CMD_POLL: Final = 5  # Linux >= 4.18; older kernels reject it with EINVAL
IOCB_CMD_NOOP: Final = 6

# ---- iocb flags ------------------------------------------------------------------------
IOCB_FLAG_RESFD: Final = 1 << 0  # signal aio_resfd (an eventfd) on completion

# The kernel's KIOCB_KEY: io_cancel() finds an iocb by address *and* by this key, which
# it reads back from user memory, so a slot's aio_key must stay 0 until its event arrives.
KIOCB_KEY: Final = 0


class Iocb(ctypes.Structure):
    """``struct iocb``: one operation, copied by the kernel during ``io_submit``."""

    _fields_ = [
        ("aio_data", ctypes.c_uint64),
        *(
            [("aio_key", ctypes.c_uint32), ("aio_rw_flags", ctypes.c_int32)]
            if sys.byteorder == "little"
            else [("aio_rw_flags", ctypes.c_int32), ("aio_key", ctypes.c_uint32)]
        ),
        ("aio_lio_opcode", ctypes.c_uint16),
        ("aio_reqprio", ctypes.c_int16),
        ("aio_fildes", ctypes.c_uint32),
        ("aio_buf", ctypes.c_uint64),
        ("aio_nbytes", ctypes.c_uint64),
        ("aio_offset", ctypes.c_int64),
        ("aio_reserved2", ctypes.c_uint64),
        ("aio_flags", ctypes.c_uint32),
        ("aio_resfd", ctypes.c_uint32),
    ]


class IoEvent(ctypes.Structure):
    """``struct io_event``: one completion, written by the kernel into our array."""

    _fields_ = [
        ("data", ctypes.c_uint64),
        ("obj", ctypes.c_uint64),
        ("res", ctypes.c_int64),
        ("res2", ctypes.c_int64),
    ]


class Timespec(ctypes.Structure):
    """``struct timespec`` for ``io_getevents``' timeout (native ``long`` fields)."""

    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


# ---- layout check ----------------------------------------------------------------------
_IOCB_LAYOUT: Final[dict[str, int]] = {
    "aio_data": 0,
    "aio_key": 8 if sys.byteorder == "little" else 12,
    "aio_rw_flags": 12 if sys.byteorder == "little" else 8,
    "aio_lio_opcode": 16,
    "aio_reqprio": 18,
    "aio_fildes": 20,
    "aio_buf": 24,
    "aio_nbytes": 32,
    "aio_offset": 40,
    "aio_reserved2": 48,
    "aio_flags": 56,
    "aio_resfd": 60,
}
_IO_EVENT_LAYOUT: Final[dict[str, int]] = {"data": 0, "obj": 8, "res": 16, "res2": 24}
IOCB_SIZE: Final = 64
IO_EVENT_SIZE: Final = 32

# The request part of an iocb (aio_lio_opcode .. aio_offset), written in one pack_into call
# by the KAIO loop's flush: opcode, reqprio, fildes, buf, nbytes, offset. Native byte
# order, no padding: the fields are contiguous in the kernel's layout (checked below).
IOCB_REQUEST: Final = struct.Struct("=HhIQQq")
IOCB_REQUEST_OFFSET: Final = 16


def layout_errors() -> list[str]:
    """Every way our structs differ from the kernel ABI (empty when they match)."""
    errors: list[str] = []
    checks: list[tuple[type[ctypes.Structure], int, dict[str, int]]] = [
        (Iocb, IOCB_SIZE, _IOCB_LAYOUT),
        (IoEvent, IO_EVENT_SIZE, _IO_EVENT_LAYOUT),
    ]
    for cstruct, size, offsets in checks:
        if ctypes.sizeof(cstruct) != size:
            errors.append(f"sizeof({cstruct.__name__}) is {ctypes.sizeof(cstruct)}, not {size}")
        for name, want in offsets.items():
            offset = int(getattr(cstruct, name).offset)
            if offset != want:
                errors.append(f"{cstruct.__name__}.{name} at offset {offset}, not {want}")
    request_end = _IOCB_LAYOUT["aio_offset"] + 8
    if IOCB_REQUEST_OFFSET + IOCB_REQUEST.size != request_end:
        errors.append(
            f"IOCB_REQUEST covers {IOCB_REQUEST.size} bytes, "
            f"not {request_end - IOCB_REQUEST_OFFSET}"
        )
    if ctypes.sizeof(Timespec) != 2 * ctypes.sizeof(ctypes.c_long):
        errors.append(f"sizeof(Timespec) is {ctypes.sizeof(Timespec)}")
    return errors


_errors = layout_errors()
if _errors:  # pragma: no cover - only on an ABI we have never met
    raise ImportError(
        "sysletloop.kaio: ctypes structs do not match <linux/aio_abi.h>: " + "; ".join(_errors)
    )
del _errors
