"""The one small interface both KAIO bindings implement, and the choice between them.

Glossary: a *backend* is a way to reach the five AIO system calls: ``"libaio"`` calls
libaio.so.1's wrappers, ``"syscall"`` calls libc's ``syscall()`` with the architecture's
numbers. Both speak in plain integers (a context handle, addresses, counts) and report
failure as a negative errno, like the kernel itself: the hot path (``submit`` and
``getevents``, once per loop iteration) then costs one foreign call and no exception.
Structures and buffers belong to the caller; a backend keeps no per-call state, so it may be
shared by several loops and called from any thread.

Choice: an explicit ``backend=`` argument wins, then ``SYSLETLOOP_KAIO_BACKEND``, then
libaio if it loads, else the raw syscalls. Rejected: preferring raw syscalls always (libaio
is what fio and databases use, so the benchmark compares like with like, and its
``io_getevents`` skips the system call when the completion ring is empty); failing when
libaio is absent (a fresh Debian has no ``libaio1``, and the kernel needs no library).
"""

from __future__ import annotations

import os
from typing import Final, Literal, Protocol

from sysletloop.kaio._errors import KaioBackendUnavailableError

BackendName = Literal["libaio", "syscall"]
BACKEND_ENV: Final = "SYSLETLOOP_KAIO_BACKEND"


class Backend(Protocol):
    """The five AIO system calls; each returns ``>= 0`` on success or ``-errno``."""

    @property
    def name(self) -> BackendName: ...

    def setup(self, nr_events: int, ctxp: int) -> int:
        """``io_setup(nr_events, ctxp)``; *ctxp* addresses a zeroed ``aio_context_t``."""
        ...

    def destroy(self, ctx: int) -> int:
        """``io_destroy(ctx)``: cancels what it can and waits for the rest."""
        ...

    def submit(self, ctx: int, nr: int, iocbpp: int) -> int:
        """``io_submit``: *iocbpp* addresses *nr* iocb pointers; returns how many went in."""
        ...

    def getevents(self, ctx: int, min_nr: int, nr: int, events: int, timeout: int) -> int:
        """``io_getevents``; *timeout* addresses a timespec, or is 0 to wait forever."""
        ...

    def cancel(self, ctx: int, iocb: int, result: int) -> int:
        """``io_cancel``; ``-EINPROGRESS`` means accepted, the event follows in the ring."""
        ...


def load_backend(requested: str | None = None) -> Backend:
    """The backend named by *requested*, else by the environment, else the best one."""
    choice = requested if requested is not None else os.environ.get(BACKEND_ENV, "")
    choice = choice.strip().lower() or "auto"
    if choice not in ("auto", "libaio", "syscall"):
        raise ValueError(
            f"unknown KAIO backend {choice!r} (from "
            f"{'backend=' if requested is not None else BACKEND_ENV}); "
            "expected 'libaio', 'syscall' or 'auto'"
        )
    # Imported here, not at the top: each binding loads a shared library when imported,
    # and only the chosen one should.
    from sysletloop.kaio import _libaio, _syscall

    if choice == "libaio":
        return _libaio.LibaioBackend.load()
    if choice == "syscall":
        return _syscall.SyscallBackend.load()
    try:
        return _libaio.LibaioBackend.load()
    except KaioBackendUnavailableError:
        return _syscall.SyscallBackend.load()
