"""What O_DIRECT alignment a file requires, asked of the kernel with ``statx``.

One job: answer "is this fd O_DIRECT, and to what must buffer addresses, file offsets and
lengths be aligned?" so that an ``EINVAL`` from the kernel can be turned into an error that
names the misaligned value and the alignment it needed. It is consulted only on that error
path, never per operation, and holds no state beyond a lazily loaded libc handle (read-only
once set; a race between two threads setting it is harmless, both store equal handles).

The answer comes from ``statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN)`` (Linux >= 6.1,
glibc >= 2.28). Rejected alternatives: ``st_blksize`` is the file system's preferred I/O
size, not the device's logical block size, and would over-state the requirement;
``ioctl(BLKSSZGET)`` needs the block device node, which an unprivileged caller may not open.
When ``statx`` cannot tell, callers say so instead of guessing.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
from dataclasses import dataclass
from typing import Final

AT_EMPTY_PATH: Final = 0x1000
STATX_DIOALIGN: Final = 0x2000
_STATX_SIZE: Final = 256  # sizeof(struct statx), including its reserved tail
_STX_MASK_OFFSET: Final = 0
_STX_DIO_MEM_ALIGN_OFFSET: Final = 152
_STX_DIO_OFFSET_ALIGN_OFFSET: Final = 156


@dataclass(frozen=True, slots=True)
class DioAlignment:
    """O_DIRECT requirements of one open file, in bytes (0 means O_DIRECT unsupported)."""

    memory: int  # buffer addresses must be multiples of this
    offset: int  # file offsets and lengths must be multiples of this


def is_direct(fd: int) -> bool:
    """Whether *fd* was opened (or ``fcntl``-ed) with ``O_DIRECT``."""
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
    except OSError:
        return False


def dio_alignment(fd: int) -> DioAlignment | None:
    """The kernel's O_DIRECT alignment for *fd*, or None if it cannot say."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        statx = libc.statx
    except (OSError, AttributeError):
        return None
    statx.restype = ctypes.c_int
    statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    buf = ctypes.create_string_buffer(_STATX_SIZE)
    if int(statx(fd, b"", AT_EMPTY_PATH, STATX_DIOALIGN, buf)) != 0:
        return None
    raw = buf.raw
    (mask,) = struct.unpack_from("=I", raw, _STX_MASK_OFFSET)
    if not mask & STATX_DIOALIGN:
        return None
    (memory,) = struct.unpack_from("=I", raw, _STX_DIO_MEM_ALIGN_OFFSET)
    (offset,) = struct.unpack_from("=I", raw, _STX_DIO_OFFSET_ALIGN_OFFSET)
    return DioAlignment(memory=int(memory), offset=int(offset))
