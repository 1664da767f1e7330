"""The ``libaio`` backend: libaio.so.1's ``io_*`` functions through ``ctypes``.

libaio's wrappers return ``-errno`` and leave ``errno`` alone, which is the
:class:`~sysletloop.kaio._backend.Backend` convention already. Its ``io_getevents`` reads
the kernel's completion ring header first and returns 0 without a system call when the ring
is empty and the timeout is zero: the one thing this backend does better than raw syscalls.
The ``io_context_t`` handle is the address of that ring, passed as ``void *``.

Thread safety: the function pointers are configured once in :meth:`LibaioBackend.load`
and only read afterwards.
"""

from __future__ import annotations

import ctypes
from typing import Final

from sysletloop.kaio._backend import BackendName
from sysletloop.kaio._errors import KaioBackendUnavailableError

LIBAIO_SONAME: Final = "libaio.so.1"  # the soname Debian's libaio1 ships (0.3.x ABI)
# The same ABI after Debian's 64-bit time_t transition (libaio1t64, trixie and later).
LIBAIO_SONAMES: Final = (LIBAIO_SONAME, "libaio.so.1t64")


class LibaioBackend:
    """The five calls, bound to libaio.so.1."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp, long_, int_ = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
        self._io_setup = lib.io_setup
        self._io_setup.argtypes = [int_, vp]
        self._io_setup.restype = int_
        self._io_destroy = lib.io_destroy
        self._io_destroy.argtypes = [vp]
        self._io_destroy.restype = int_
        self._io_submit = lib.io_submit
        self._io_submit.argtypes = [vp, long_, vp]
        self._io_submit.restype = int_
        self._io_getevents = lib.io_getevents
        self._io_getevents.argtypes = [vp, long_, long_, vp, vp]
        self._io_getevents.restype = int_
        self._io_cancel = lib.io_cancel
        self._io_cancel.argtypes = [vp, vp, vp]
        self._io_cancel.restype = int_

    @classmethod
    def load(cls) -> LibaioBackend:
        errors = []
        for soname in LIBAIO_SONAMES:
            try:
                lib = ctypes.CDLL(soname)
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            raise KaioBackendUnavailableError(
                f"KAIO backend 'libaio' unavailable: cannot load {' or '.join(LIBAIO_SONAMES)} "
                f"({'; '.join(errors)}); "
                "on Debian/Ubuntu install it with `apt-get install libaio1` "
                "(`libaio1t64` on newer releases), or use backend='syscall'"
            ) from None
        return cls(lib)

    @property
    def name(self) -> BackendName:
        return "libaio"

    def setup(self, nr_events: int, ctxp: int) -> int:
        return int(self._io_setup(nr_events, ctxp))

    def destroy(self, ctx: int) -> int:
        return int(self._io_destroy(ctx))

    def submit(self, ctx: int, nr: int, iocbpp: int) -> int:
        return int(self._io_submit(ctx, nr, iocbpp))

    def getevents(self, ctx: int, min_nr: int, nr: int, events: int, timeout: int) -> int:
        return int(self._io_getevents(ctx, min_nr, nr, events, timeout or None))

    def cancel(self, ctx: int, iocb: int, result: int) -> int:
        return int(self._io_cancel(ctx, iocb, result))
