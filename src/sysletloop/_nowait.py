"""Instant detection for positional file reads: try ``RWF_NOWAIT`` first.

A positional read (``os.pread(fd, n, offset)``, as ``asyncio.to_thread(os.pread, ...)``
and ``sysletloop.call(os.pread, ...)`` submit it) can say in advance whether it would
block: ``os.preadv(fd, [buf], offset, os.RWF_NOWAIT)`` returns the data if it is all in
the page cache and fails with ``EAGAIN`` if the read would wait for the device. So the
loop tries that inline: a cache hit completes with no watchdog and no thread; an
``EAGAIN`` goes straight to a spare thread without waiting out the threshold (with the
``uring_reads`` option: to io_uring, see ``_uringreads``, which also brings
``os.preadv(fd, [buffer], offset)`` into one buffer here, its count the result).

Guards:
    * Only a *full* read is trusted. Some kernels return a short count under RWF_NOWAIT
      when only part of the range is cached, and 0 is ambiguous (end of file, or nothing
      cached on a kernel with that bug). Anything short of ``n`` bytes falls back to a
      plain ``os.pread`` on the normal syslet path, which gives the ordinary answer.
    * A kernel or file system without RWF_NOWAIT for reads answers ``EOPNOTSUPP``,
      ``EINVAL`` or ``ENOSYS``: the fast path is then switched off for the process (a
      plain pread follows, so the caller still gets its data or its error).
    * Any other error (``EBADF``...) is not ours to report early: the plain pread on the
      normal path raises it as the caller expects.
    * An ``O_DIRECT`` read never comes from the cache, yet ``RWF_NOWAIT`` does not call it
      blocking: the kernel (6.x, ext4 here) queues it to the device and waits inline (80
      us on this VM's disk), unless dirty cached pages must be written first (then
      ``EAGAIN``). So ``uring_reads`` sends every read of an ``O_DIRECT`` file to
      io_uring without trying (``is_direct``: one ``fcntl`` per read).

Thread rules: ``NowaitReads`` belongs to the loop's owner; ``supported`` is a plain flag
any owner may switch off (idempotent, so no lock).
"""

from __future__ import annotations

import contextvars
import errno
import fcntl
import functools
import os
from collections.abc import Callable

__all__ = ["WOULD_BLOCK", "NowaitReads", "positional_read"]

_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
_preadv = getattr(os, "preadv", None)
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})

WOULD_BLOCK = object()  # try_read's answer for EAGAIN
FALL_BACK = None  # try_read's answer for "use the plain path"

PreadFn = Callable[[int, int, int], bytes]


def positional_read(
    fn: object, args: tuple[object, ...], *, vectored: bool = False
) -> tuple[int, int, int, object] | None:
    """``(fd, n, offset, None)`` if calling ``fn(*args)`` is exactly
    ``os.pread(fd, n, offset)``; with *vectored*, also ``(fd, n, offset, buffer)`` for
    ``os.preadv(fd, [buffer], offset)`` into one writable, C-contiguous buffer of n bytes."""
    if isinstance(fn, functools.partial) and not fn.keywords:
        inner = fn.func
        if fn.args and isinstance(getattr(inner, "__self__", None), contextvars.Context):
            # to_thread's partial(ctx.run, fn, *args): the context changes nothing here
            return positional_read(fn.args[0], (*fn.args[1:], *args), vectored=vectored)
        return positional_read(inner, (*fn.args, *args), vectored=vectored)
    if len(args) != 3:
        return None
    if fn is os.pread:
        fd, n, offset = args
        if type(fd) is int and type(n) is int and type(offset) is int and n > 0 and offset >= 0:
            return fd, n, offset, None
        return None
    if vectored and fn is _preadv:
        fd, buffers, offset = args
        if type(fd) is not int or type(offset) is not int or offset < 0:
            return None
        if type(buffers) not in (list, tuple) or len(buffers) != 1:  # type: ignore[arg-type]
            return None
        buffer = buffers[0]  # type: ignore[index]
        try:
            with memoryview(buffer) as view:
                if view.readonly or not view.c_contiguous or not view.nbytes:
                    return None
                return fd, view.nbytes, offset, buffer
        except TypeError:
            return None
    return None


def is_direct(fd: int) -> bool:
    """Whether *fd* was opened with ``O_DIRECT`` (False if it cannot be told)."""
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & _O_DIRECT)
    except OSError:
        return False  # a bad fd: the read itself will say so


class NowaitReads:
    """Tries reads with RWF_NOWAIT while the kernel supports it."""

    __slots__ = ("_preadv", "supported")

    def __init__(self, preadv: Callable[..., int] | None = None) -> None:
        self._preadv = preadv if preadv is not None else getattr(os, "preadv", None)
        self.supported = _RWF_NOWAIT is not None and self._preadv is not None

    def try_read(
        self, fd: int, n: int, offset: int, into: object = None
    ) -> bytes | int | object | None:
        """The data (``bytes``; the count, an ``int``, when reading *into* a buffer),
        ``WOULD_BLOCK``, or ``None`` to use a plain read."""
        if not self.supported:
            return FALL_BACK
        fresh = bytearray(n) if into is None else None
        try:
            got = self._preadv(fd, [into if fresh is None else fresh], offset, _RWF_NOWAIT)  # type: ignore[misc]
        except BlockingIOError:
            return WOULD_BLOCK
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self.supported = False
            return FALL_BACK
        if got != n:
            return FALL_BACK
        return got if fresh is None else bytes(fresh)
