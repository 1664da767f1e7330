"""The three io_uring system calls, through libc's ``syscall()``.

One job: reach ``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register`` and report
failure as ``-errno``, like the kernel: the hot path (one ``io_uring_enter`` per loop
iteration that queued something) then costs one foreign call and no exception. No state
beyond the function pointers, which are read-only once made, so any thread may call.

``syscall()`` is variadic. Each call gets its own function pointer with fixed ``argtypes``
of ``long``: on the ABIs listed below variadic integer arguments travel in the same
registers as fixed ones, and every argument here (fd, count, flags, address) is an integer
no wider than ``long``. ``errno`` is read back through ``ctypes.get_errno()`` (ctypes'
per-thread copy). Rejected: liburing through ctypes (its submit/wait helpers are
``static inline`` in ``liburing.h``, so ctypes cannot call them; what the shared object
exports is what we call here anyway, and Debian's ``liburing2`` is not installed by
default); one shared pointer with per-call ``c_long`` wrappers (an allocation per
argument).

The numbers: io_uring came after the unification of syscall tables, so 425-427 are the
same on every architecture but alpha. Only architectures whose memory model and ABI were
checked are listed (see ``_ring``'s note on ordering); elsewhere the loop refuses to start
rather than guess.
"""

from __future__ import annotations

import ctypes
import platform
from typing import Final

from sysletloop.kaio._syscall import bind_syscall
from sysletloop.uring._errors import UringUnsupportedError

# (io_uring_setup, io_uring_enter, io_uring_register)
_UNIFIED: Final = (425, 426, 427)
SYSCALL_NUMBERS: Final[dict[str, tuple[int, int, int]]] = {
    "x86_64": _UNIFIED,  # arch/x86/entry/syscalls/syscall_64.tbl
    "aarch64": _UNIFIED,  # include/uapi/asm-generic/unistd.h
}


class Syscalls:
    """``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register``; each returns
    ``>= 0`` on success or ``-errno``."""

    def __init__(self, libc: ctypes.CDLL, numbers: tuple[int, int, int]) -> None:
        self._nr_setup, self._nr_enter, self._nr_register = numbers
        self._call2 = bind_syscall(libc, 2)
        self._call4 = bind_syscall(libc, 4)
        self._call6 = bind_syscall(libc, 6)

    @classmethod
    def load(cls) -> Syscalls:
        machine = platform.machine()
        numbers = SYSCALL_NUMBERS.get(machine)
        if numbers is None:
            raise UringUnsupportedError(
                f"io_uring: no system call numbers checked for {machine!r} "
                f"(known: {', '.join(SYSCALL_NUMBERS)}); the loop refuses to guess"
            )
        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError as exc:  # pragma: no cover - every Linux process has a libc
            raise UringUnsupportedError(f"io_uring: cannot open libc: {exc}") from None
        return cls(libc, numbers)

    @staticmethod
    def _result(ret: int) -> int:
        value = int(ret)
        return -ctypes.get_errno() if value == -1 else value

    def setup(self, entries: int, params: int) -> int:
        """``io_uring_setup(entries, params)``: the ring's fd, or ``-errno``."""
        return self._result(self._call2(self._nr_setup, entries, params))

    @property
    def raw_enter(self) -> tuple[ctypes._NamedFuncPointer, int]:
        """``(syscall, number)`` for callers that call ``io_uring_enter`` on a hot path
        themselves: ``syscall(number, fd, to_submit, min_complete, flags, 0, 0)``
        returns -1 and leaves the errno in ``ctypes.get_errno()`` on failure."""
        return self._call6, self._nr_enter

    def enter(self, fd: int, to_submit: int, min_complete: int, flags: int) -> int:
        """``io_uring_enter(fd, to_submit, min_complete, flags, NULL, 0)``."""
        return self._result(self._call6(self._nr_enter, fd, to_submit, min_complete, flags, 0, 0))

    def register(self, fd: int, opcode: int, arg: int, nr_args: int) -> int:
        """``io_uring_register(fd, opcode, arg, nr_args)``."""
        return self._result(self._call4(self._nr_register, fd, opcode, arg, nr_args))
