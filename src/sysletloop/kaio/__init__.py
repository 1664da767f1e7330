"""Linux native AIO (KAIO) for asyncio: the foil the syslet loop is measured against.

Public names::

    new_event_loop(*, ring_size=128, backend=None) -> KaioEventLoop
    KaioEventLoop           an asyncio.SelectorEventLoop with coroutine methods
        aio_pread(fd, nbytes, offset, *, exact=False) -> bytes
        aio_preadinto(fd, buffer, offset, *, exact=False) -> int
        aio_pwrite(fd, data, offset, *, exact=False) -> int
        aio_fsync(fd), aio_fdatasync(fd)
        aio_poll(fd, events) -> int           (IOCB_CMD_POLL, Linux >= 4.18)
        kaio_stats() -> KaioStats, kaio_backend, kaio_ring_size
    aligned_buffer(size, alignment=4096) -> memoryview     memory for O_DIRECT
    KaioError and its subclasses                           see _errors.py

How it is built, one module per job (dependencies point down the list):

    _abi      ctypes mirrors of <linux/aio_abi.h>, layout checked at import
    _errors   the exception family; errno -> exception with a message that says why
    _dio      statx(STATX_DIOALIGN): O_DIRECT alignment, asked only to explain EINVAL
    _backend  the five-call interface; choice of binding (SYSLETLOOP_KAIO_BACKEND)
    _libaio   binding to libaio.so.1          _syscall  binding to syscall(2)
    _buffer   aligned buffers; pinning a buffer while the kernel owns it
    _stats    counters and the frozen KaioStats snapshot
    _loop     the event loop: queue, one io_submit per iteration, eventfd harvest

What KAIO cannot do, so this loop does not offer it: ``open``, ``close``, ``stat``,
``fstat``, ``rename``, ``unlink``, directory listing, ``sendfile``, socket ``connect`` or
``accept``; and buffered file I/O that must not block the caller. KAIO "submits" a
buffered read or write by performing it inside ``io_submit`` (the paper's §1.2), so the
loop's thread blocks for the duration; ``kaio_stats().submit_seconds`` measures how long.
Only O_DIRECT reads and writes (and poll, and since Linux 4.18 fsync/fdatasync, which run
on a kernel worker) are truly asynchronous. ``run_in_executor`` keeps asyncio's stock
thread pool for everything else. See ``docs/kaio.md``.

Importing this package works on any platform (the structs are plain ``ctypes``); creating
a loop anywhere but Linux raises :class:`KaioUnsupportedError`.
"""

from sysletloop.kaio._buffer import aligned_buffer
from sysletloop.kaio._errors import (
    KaioAlignmentError,
    KaioBackendUnavailableError,
    KaioClosedError,
    KaioError,
    KaioSetupError,
    KaioShortReadError,
    KaioShortTransferError,
    KaioShortWriteError,
    KaioUnsupportedError,
)
from sysletloop.kaio._loop import (
    DEFAULT_HARVEST_BATCH,
    DEFAULT_RING_SIZE,
    KaioEventLoop,
    new_event_loop,
)
from sysletloop.kaio._stats import KaioStats

__all__ = [
    "DEFAULT_HARVEST_BATCH",
    "DEFAULT_RING_SIZE",
    "KaioAlignmentError",
    "KaioBackendUnavailableError",
    "KaioClosedError",
    "KaioError",
    "KaioEventLoop",
    "KaioSetupError",
    "KaioShortReadError",
    "KaioShortTransferError",
    "KaioShortWriteError",
    "KaioStats",
    "KaioUnsupportedError",
    "aligned_buffer",
    "new_event_loop",
]
