"""The ``syscall`` backend: the AIO system calls through libc's ``syscall()``.

For machines without libaio. ``syscall()`` returns -1 and sets ``errno``; we read it back
through ``ctypes.get_errno()`` (ctypes' private per-thread copy, so this is safe from any
thread) and return ``-errno`` like the other backend.

``syscall()`` is variadic. Each system call gets its own function pointer with fixed
``argtypes`` of ``long``: on the Linux ABIs listed below variadic integer arguments travel
in the same registers as fixed ones, and every argument here (context handle, count,
address) is an integer no wider than ``long``. Rejected: one shared pointer with per-call
``c_long(...)`` wrappers (an allocation per argument on the hot path).

The numbers come from each architecture's syscall table. Only these are listed because only
these were checked; elsewhere the backend refuses to load rather than guess.
"""

from __future__ import annotations

import ctypes
import platform
from typing import Final

from sysletloop.kaio._backend import BackendName
from sysletloop.kaio._errors import KaioBackendUnavailableError

# (io_setup, io_destroy, io_getevents, io_submit, io_cancel)
_ASM_GENERIC: Final = (0, 1, 4, 2, 3)  # include/uapi/asm-generic/unistd.h
SYSCALL_NUMBERS: Final[dict[str, tuple[int, int, int, int, int]]] = {
    "x86_64": (206, 207, 208, 209, 210),  # arch/x86/entry/syscalls/syscall_64.tbl
    "aarch64": _ASM_GENERIC,
    "riscv64": _ASM_GENERIC,
}


def bind_syscall(libc: ctypes.CDLL, nargs: int) -> ctypes._NamedFuncPointer:
    """libc's ``syscall(number, ...)`` taking ``nargs`` long arguments after the number
    (also the io_uring loop's binding, ``sysletloop.uring._syscall``)."""
    fn = libc["syscall"]  # indexing makes a fresh pointer; attribute access would share
    fn.argtypes = [ctypes.c_long] * (1 + nargs)
    fn.restype = ctypes.c_long
    return fn


class SyscallBackend:
    """The five calls, through ``syscall(2)``."""

    def __init__(self, libc: ctypes.CDLL, numbers: tuple[int, int, int, int, int]) -> None:
        self._nr_setup, self._nr_destroy, self._nr_getevents, self._nr_submit, self._nr_cancel = (
            numbers
        )
        # _callN: syscall(number, N arguments)
        self._call1 = bind_syscall(libc, 1)
        self._call2 = bind_syscall(libc, 2)
        self._call3 = bind_syscall(libc, 3)
        self._call5 = bind_syscall(libc, 5)

    @classmethod
    def load(cls) -> SyscallBackend:
        machine = platform.machine()
        numbers = SYSCALL_NUMBERS.get(machine)
        if numbers is None:
            raise KaioBackendUnavailableError(
                f"KAIO backend 'syscall' unavailable: no AIO system call numbers known for "
                f"{machine!r} (known: {', '.join(SYSCALL_NUMBERS)}); install libaio1"
            )
        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError as exc:  # pragma: no cover - every Linux process has a libc
            raise KaioBackendUnavailableError(f"cannot open libc: {exc}") from None
        return cls(libc, numbers)

    @property
    def name(self) -> BackendName:
        return "syscall"

    @staticmethod
    def _result(ret: int) -> int:
        value = int(ret)
        return -ctypes.get_errno() if value == -1 else value

    def setup(self, nr_events: int, ctxp: int) -> int:
        return self._result(self._call2(self._nr_setup, nr_events, ctxp))

    def destroy(self, ctx: int) -> int:
        return self._result(self._call1(self._nr_destroy, ctx))

    def submit(self, ctx: int, nr: int, iocbpp: int) -> int:
        return self._result(self._call3(self._nr_submit, ctx, nr, iocbpp))

    def getevents(self, ctx: int, min_nr: int, nr: int, events: int, timeout: int) -> int:
        return self._result(self._call5(self._nr_getevents, ctx, min_nr, nr, events, timeout))

    def cancel(self, ctx: int, iocb: int, result: int) -> int:
        return self._result(self._call3(self._nr_cancel, ctx, iocb, result))
