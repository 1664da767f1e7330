"""io_uring for asyncio: the third model beside KAIO and syslets (issue 20).

Public names::

    new_event_loop(*, entries=256, harvest_batch=0, submit_batch=3) -> UringEventLoop
    UringEventLoop          an asyncio.SelectorEventLoop with coroutine methods
        uring_read(fd, nbytes, offset, *, exact=False) -> bytes
        uring_readinto(fd, buffer, offset, *, exact=False) -> int
        uring_write(fd, data, offset, *, exact=False) -> int
        uring_readv(fd, buffers, offset) -> int, uring_writev(fd, buffers, offset) -> int
        uring_fsync(fd, datasync=False)
        uring_openat(path, flags=O_RDONLY, mode=0o777, *, dir_fd=None) -> int
        uring_close(fd)
        uring_statx(path, *, dir_fd=None, follow_symlinks=True) -> os.stat_result
        uring_fstat(fd) -> os.stat_result
        uring_unlink(path, *, dir_fd=None), uring_rmdir(path, *, dir_fd=None)
        uring_mkdir(path, mode=0o777, *, dir_fd=None)
        uring_rename(src, dst, *, src_dir_fd=None, dst_dir_fd=None)
        uring_stats() -> UringStats, uring_entries, uring_supports(opcode)
    aligned_buffer(size, alignment=4096) -> memoryview     memory for O_DIRECT
    UringError and its subclasses                          see _errors.py

How it is built, one module per job (dependencies point down the list):

    _abi      constants and layouts of <linux/io_uring.h> and struct statx, checked at import
    _errors   the exception family; errno -> exception; why io_uring is unavailable here
    _syscall  io_uring_setup / io_uring_enter / io_uring_register through syscall(2)
    _ring     one ring: setup, the three mappings, views over them, submit, teardown
    _statx    struct statx -> os.stat_result
    _stats    counters and the frozen UringStats snapshot
    _loop     the event loop: SQEs written as ops are requested and submitted in small
              batches, CQ ring reaped without a system call, eventfd in the selector

Buffers (``aligned_buffer``, pinning) and the O_DIRECT alignment query come from
``sysletloop.kaio``'s ``_buffer`` and ``_dio``, which know nothing of KAIO itself.

Unlike KAIO, io_uring can open, stat, close, unlink and rename files, and a buffered read
that would block goes to the kernel's own worker pool instead of stalling the submitter.
What it still cannot do without a kernel thread is the point of the comparison with
syslets: see ``docs/kaio.md``'s operations table.

Importing this package works anywhere (plain ``ctypes`` and ``struct``); creating a loop
where io_uring cannot be used raises :class:`UringUnsupportedError` saying why: not
Linux, ``kernel.io_uring_disabled``, a seccomp filter, a kernel without an operation the
loop needs (``IORING_REGISTER_PROBE``).
"""

from sysletloop.kaio._buffer import aligned_buffer
from sysletloop.uring._errors import (
    UringAlignmentError,
    UringClosedError,
    UringError,
    UringFileExistsError,
    UringFileNotFoundError,
    UringIsADirectoryError,
    UringNotADirectoryError,
    UringPermissionError,
    UringSetupError,
    UringShortReadError,
    UringShortWriteError,
    UringUnsupportedError,
)
from sysletloop.uring._loop import (
    DEFAULT_ENTRIES,
    DEFAULT_SUBMIT_BATCH,
    UringEventLoop,
    new_event_loop,
)
from sysletloop.uring._stats import UringStats

__all__ = [
    "DEFAULT_ENTRIES",
    "DEFAULT_SUBMIT_BATCH",
    "UringAlignmentError",
    "UringClosedError",
    "UringError",
    "UringEventLoop",
    "UringFileExistsError",
    "UringFileNotFoundError",
    "UringIsADirectoryError",
    "UringNotADirectoryError",
    "UringPermissionError",
    "UringSetupError",
    "UringShortReadError",
    "UringShortWriteError",
    "UringStats",
    "UringUnsupportedError",
    "aligned_buffer",
    "new_event_loop",
]
