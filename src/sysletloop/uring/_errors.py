"""The io_uring exception family, and the translation of kernel errnos into it.

Every exception the io_uring loop raises on purpose is a :class:`UringError`, itself an
:class:`OSError`, so ``except OSError`` keeps working for callers that treat the loop like
``os.pread``; and where the stdlib has a subclass for the errno (``FileNotFoundError``,
``PermissionError``, ``IsADirectoryError``...), the exception is *also* that subclass, so
``except FileNotFoundError`` around ``uring_openat`` works as it does around ``os.open``.
Messages name the operation, the fd or path and the value that was wrong; ``errno`` is set
whenever the kernel gave one. Everything here is a pure function of its arguments (plus a
``fcntl``/``statx`` probe on the ``EINVAL`` path, and reads of ``/proc`` on the set-up
path), safe from any thread.

Rejected: plain ``OSError`` with the errno (callers could not tell the ring machinery
failing from the file system failing); our own classes without the stdlib's (every
``except FileNotFoundError`` in existing code would miss them).
"""

from __future__ import annotations

import errno as errno_
import os
from dataclasses import dataclass
from typing import Final

from sysletloop.kaio._dio import dio_alignment, is_direct

# Linux's smallest logical block size: the floor for O_DIRECT alignment when statx cannot
# report the real requirement.
MIN_LOGICAL_BLOCK_SIZE: Final = 512
DISABLED_SYSCTL: Final = "/proc/sys/kernel/io_uring_disabled"
GROUP_SYSCTL: Final = "/proc/sys/kernel/io_uring_group"


class UringError(OSError):
    """Base of every error the io_uring loop raises on purpose."""


class UringUnsupportedError(UringError):
    """io_uring cannot be used here: not Linux, disabled by sysctl or seccomp, a kernel
    too old for an operation. The message says which and why."""


class UringSetupError(UringError):
    """``io_uring_setup`` or a registration refused (``ENOMEM``, ``EMFILE``...)."""


class UringAlignmentError(UringError):
    """An O_DIRECT request whose buffer address, offset or length is misaligned."""

    def __init__(
        self,
        message: str,
        *,
        misaligned: tuple[str, ...],
        memory_alignment: int | None,
        offset_alignment: int | None,
    ) -> None:
        super().__init__(errno_.EINVAL, message)
        self.misaligned = misaligned
        self.memory_alignment = memory_alignment
        self.offset_alignment = offset_alignment


class UringShortReadError(UringError):
    """A read returned fewer bytes than requested with ``exact=True`` (end of file)."""

    def __init__(self, message: str, *, expected: int, transferred: int, data: bytes) -> None:
        super().__init__(message)
        self.expected = expected
        self.transferred = transferred
        self.data = data  # what was read: nothing is thrown away


class UringShortWriteError(UringError):
    """A write stored fewer bytes than requested with ``exact=True`` (device full)."""

    def __init__(self, message: str, *, expected: int, transferred: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.transferred = transferred


class UringClosedError(UringError, RuntimeError):
    """The loop is closed (or closing): no new io_uring operation can start."""

    def __init__(self, message: str = "the io_uring event loop is closed") -> None:
        super().__init__(errno_.EBADF, message)


# One subclass per (stdlib OSError subclass): UringError *and* the stdlib's class, made
# once at import (a class per errno, not per error).
def _dual(base: type[OSError]) -> type[UringError]:
    return type(f"Uring{base.__name__}", (UringError, base), {"__module__": __name__})


_BY_ERRNO: Final[dict[int, type[UringError]]] = {}
for _base, _codes in (
    (FileNotFoundError, (errno_.ENOENT,)),
    (FileExistsError, (errno_.EEXIST,)),
    (PermissionError, (errno_.EACCES, errno_.EPERM)),
    (IsADirectoryError, (errno_.EISDIR,)),
    (NotADirectoryError, (errno_.ENOTDIR,)),
    (InterruptedError, (errno_.EINTR,)),
    (BlockingIOError, (errno_.EAGAIN,)),
):
    _cls = _dual(_base)
    globals()[_cls.__name__] = _cls
    for _code in _codes:
        _BY_ERRNO[_code] = _cls
del _base, _codes, _cls, _code

UringFileNotFoundError: type[UringError] = _BY_ERRNO[errno_.ENOENT]
UringFileExistsError: type[UringError] = _BY_ERRNO[errno_.EEXIST]
UringPermissionError: type[UringError] = _BY_ERRNO[errno_.EACCES]
UringIsADirectoryError: type[UringError] = _BY_ERRNO[errno_.EISDIR]
UringNotADirectoryError: type[UringError] = _BY_ERRNO[errno_.ENOTDIR]


# ---- what an operation asked for ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request:
    """What an operation asked for, kept only to word its error messages."""

    name: str  # "uring_read", "uring_openat", ...
    fd: int
    address: int = 0
    nbytes: int = 0
    offset: int = 0
    path: str | None = None

    def describe(self) -> str:
        if self.path is not None:
            where = f"dir_fd={self.fd}, " if self.fd >= 0 else ""
            return f"{self.name}({where}path={self.path!r})"
        if self.name in ("uring_read", "uring_readinto", "uring_write"):
            return f"{self.name}(fd={self.fd}, nbytes={self.nbytes}, offset={self.offset})"
        if self.name in ("uring_readv", "uring_writev"):
            return f"{self.name}(fd={self.fd}, buffers={self.nbytes}, offset={self.offset})"
        return f"{self.name}(fd={self.fd})"


def operation_error(err: int, request: Request) -> UringError:
    """The exception for *request* failing with *err* (a negative CQE result, negated)."""
    if err == errno_.EINVAL and request.name in (
        "uring_read",
        "uring_readinto",
        "uring_write",
    ):
        alignment_error = _alignment_error(request)
        if alignment_error is not None:
            return alignment_error
    if (
        err == errno_.EINVAL
        and request.name in ("uring_readv", "uring_writev")
        and is_direct(request.fd)
    ):
        return UringAlignmentError(
            f"{request.describe()}: rejected with EINVAL on an O_DIRECT file: every "
            "buffer's address and length, and the offset, must be aligned to the "
            "device's logical block size; allocate with sysletloop.uring.aligned_buffer()",
            misaligned=("buffers",),
            memory_alignment=None,
            offset_alignment=None,
        )
    cls = _BY_ERRNO.get(err, UringError)
    if err == errno_.EBADF:
        return cls(err, f"{request.describe()}: {os.strerror(err)} (not an open descriptor)")
    return cls(err, f"{request.describe()}: {os.strerror(err)}")


def unsupported_opcode_error(name: str, opcode: str, since: str) -> UringUnsupportedError:
    return UringUnsupportedError(
        errno_.EOPNOTSUPP,
        f"{name}: this kernel ({os.uname().release}) does not support {opcode} "
        f"(io_uring has it since Linux {since}; IORING_REGISTER_PROBE says it is missing)",
    )


def _alignment_error(request: Request) -> UringAlignmentError | None:
    if not is_direct(request.fd):
        return None
    known = dio_alignment(request.fd)
    memory = known.memory if known and known.memory else MIN_LOGICAL_BLOCK_SIZE
    offset = known.offset if known and known.offset else MIN_LOGICAL_BLOCK_SIZE
    source = "from statx" if known and known.memory else "at least; statx could not report it"
    wrong: list[str] = []
    parts: list[str] = []
    if request.address % memory:
        wrong.append("buffer")
        parts.append(f"buffer address {request.address:#x} is not a multiple of {memory}")
    if request.offset % offset:
        wrong.append("offset")
        parts.append(f"offset {request.offset} is not a multiple of {offset}")
    if request.nbytes % offset:
        wrong.append("length")
        parts.append(f"length {request.nbytes} is not a multiple of {offset}")
    if not wrong:
        return None
    return UringAlignmentError(
        f"{request.describe()}: O_DIRECT misalignment: {'; '.join(parts)} "
        f"(required alignment: memory {memory}, offset and length {offset}, {source}); "
        "allocate with sysletloop.uring.aligned_buffer()",
        misaligned=tuple(wrong),
        memory_alignment=known.memory if known else None,
        offset_alignment=known.offset if known else None,
    )


# ---- why io_uring_setup failed ---------------------------------------------------------------
def read_proc(path: str) -> str | None:
    """The stripped contents of a /proc file, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def seccomp_mode() -> str | None:
    """This process's ``Seccomp:`` line from /proc/self/status (0 none, 1 strict, 2
    filter), or None when the kernel does not report it."""
    status = read_proc("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("Seccomp:"):
            return line.split(":", 1)[1].strip()
    return None


def disabled_error(disabled: str | None) -> UringUnsupportedError | None:
    """The error for ``kernel.io_uring_disabled`` when it forbids us for sure (2), else
    None (0, 1 and an absent file are decided by ``io_uring_setup`` itself)."""
    if disabled == "2":
        return UringUnsupportedError(
            errno_.EPERM,
            f"io_uring is disabled on this machine: {DISABLED_SYSCTL} is 2 (no process may "
            "create a ring); an administrator can set it to 0",
        )
    return None


def setup_error(
    err: int, entries: int, *, disabled: str | None, group: str | None, seccomp: str | None
) -> UringError:
    """The exception for ``io_uring_setup(entries)`` failing with *err*, saying why given
    the io_uring sysctls and this process's seccomp mode (all passed in: pure)."""
    filtered = seccomp == "2"
    if err == errno_.ENOSYS:
        why = (
            "a seccomp filter is active in this process (containers often block io_uring)"
            if filtered
            else "the kernel has no io_uring (older than 5.1, or built without CONFIG_IO_URING)"
        )
        return UringUnsupportedError(err, f"io_uring_setup: ENOSYS: {why}")
    if err == errno_.EPERM:
        reasons: list[str] = []
        if disabled == "1":
            reasons.append(
                f"{DISABLED_SYSCTL} is 1: only members of group "
                f"{group or '?'} ({GROUP_SYSCTL}) or CAP_SYS_ADMIN may create rings"
            )
        elif disabled == "2":
            reasons.append(f"{DISABLED_SYSCTL} is 2: io_uring is disabled for everyone")
        if filtered:
            reasons.append(
                "a seccomp filter is active in this process (Docker's default profile and "
                "many sandboxes refuse io_uring_setup with EPERM)"
            )
        if not reasons:
            reasons.append("a security module (SELinux, AppArmor) or seccomp refused it")
        return UringUnsupportedError(err, "io_uring_setup: EPERM: " + "; ".join(reasons))
    if err in (errno_.ENOMEM, errno_.EMFILE, errno_.ENFILE):
        hint = (
            " (locked memory: raise RLIMIT_MEMLOCK, or use fewer entries; kernels before "
            "5.12 charge rings to it)"
            if err == errno_.ENOMEM
            else " (no descriptor left for the ring)"
        )
        return UringSetupError(err, f"io_uring_setup({entries}): {os.strerror(err)}{hint}")
    if err == errno_.EINVAL:
        return UringSetupError(
            err,
            f"io_uring_setup({entries}): EINVAL: entries must be 1..32768, and the kernel "
            "must know every setup flag asked for",
        )
    return UringSetupError(err, f"io_uring_setup({entries}) failed: {os.strerror(err)}")


def missing_opcodes_error(missing: list[tuple[str, str]]) -> UringUnsupportedError:
    names = ", ".join(f"{name} (Linux {since})" for name, since in missing)
    return UringUnsupportedError(
        errno_.EOPNOTSUPP,
        f"io_uring on this kernel ({os.uname().release}) lacks operations the loop needs: "
        f"{names}; it needs Linux >= 5.6",
    )


def probe_unsupported_error(err: int) -> UringUnsupportedError:
    return UringUnsupportedError(
        err,
        f"IORING_REGISTER_PROBE failed with {errno_.errorcode.get(err, err)}: this kernel "
        f"({os.uname().release}) predates 5.6, which the loop needs (IORING_OP_READ, "
        "IORING_OP_OPENAT, IORING_OP_STATX...)",
    )
