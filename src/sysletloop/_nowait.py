"""Instant detection for positional file reads: try ``RWF_NOWAIT`` first.

A positional read (``os.pread(fd, n, offset)``, as ``asyncio.to_thread(os.pread, ...)``
and ``sysletloop.call(os.pread, ...)`` submit it) can say in advance whether it would
block: ``os.preadv(fd, [buf], offset, os.RWF_NOWAIT)`` returns the data if it is all in
the page cache and fails with ``EAGAIN`` if the read would wait for the device. So the
loop tries that inline: a cache hit completes with no watchdog and no thread; an
``EAGAIN`` goes straight to a spare thread without waiting out the threshold.

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

Thread rules: ``NowaitReads`` belongs to the loop's owner; ``supported`` is a plain flag
any owner may switch off (idempotent, so no lock).
"""

from __future__ import annotations

import contextvars
import errno
import functools
import os
from collections.abc import Callable

__all__ = ["WOULD_BLOCK", "NowaitReads", "positional_read"]

_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})

WOULD_BLOCK = object()  # try_read's answer for EAGAIN
FALL_BACK = None  # try_read's answer for "use the plain path"

PreadFn = Callable[[int, int, int], bytes]


def positional_read(fn: object, args: tuple[object, ...]) -> tuple[int, int, int] | None:
    """``(fd, n, offset)`` if calling ``fn(*args)`` is exactly ``os.pread(fd, n, offset)``."""
    if isinstance(fn, functools.partial) and not fn.keywords:
        inner = fn.func
        if fn.args and isinstance(getattr(inner, "__self__", None), contextvars.Context):
            # to_thread's partial(ctx.run, fn, *args): the context changes nothing here
            return positional_read(fn.args[0], (*fn.args[1:], *args))
        return positional_read(inner, (*fn.args, *args))
    if fn is not os.pread or len(args) != 3:
        return None
    fd, n, offset = args
    if type(fd) is int and type(n) is int and type(offset) is int and n > 0 and offset >= 0:
        return fd, n, offset
    return None


class NowaitReads:
    """Tries reads with RWF_NOWAIT while the kernel supports it."""

    __slots__ = ("_preadv", "supported")

    def __init__(self, preadv: Callable[..., int] | None = None) -> None:
        self._preadv = preadv if preadv is not None else getattr(os, "preadv", None)
        self.supported = _RWF_NOWAIT is not None and self._preadv is not None

    def try_read(self, fd: int, n: int, offset: int) -> bytes | object | None:
        """The data (``bytes``), ``WOULD_BLOCK``, or ``None`` to use a plain pread."""
        if not self.supported:
            return FALL_BACK
        buf = bytearray(n)
        try:
            got = self._preadv(fd, [buf], offset, _RWF_NOWAIT)  # type: ignore[misc]
        except BlockingIOError:
            return WOULD_BLOCK
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self.supported = False
            return FALL_BACK
        if got != n:
            return FALL_BACK
        return bytes(buf)
