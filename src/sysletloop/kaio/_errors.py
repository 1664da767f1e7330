"""The KAIO exception family, and the translation of kernel errnos into it.

Every exception the KAIO loop raises on purpose is a :class:`KaioError`, itself an
:class:`OSError`, so ``except OSError`` keeps working for callers that treat the loop like
``os.pread``. Messages name the operation, the fd and the value that was wrong; ``errno`` is
set whenever the kernel gave one. The helpers at the bottom are pure functions of their
arguments (plus one ``fcntl``/``statx`` probe on the ``EINVAL`` path), safe from any thread.

Rejected: mapping kernel errnos onto the built-in ``OSError`` subclasses
(``BlockingIOError``...) would lose the ``KaioError`` root that lets a caller tell "the AIO
machinery failed" from "the file system failed"; the errno is there to switch on.
"""

from __future__ import annotations

import errno as errno_
import os
from dataclasses import dataclass

from sysletloop.kaio._dio import dio_alignment, is_direct

# Linux's smallest logical block size: the floor for O_DIRECT alignment when statx cannot
# report the real requirement (anything not a multiple of it is misaligned everywhere).
MIN_LOGICAL_BLOCK_SIZE = 512


class KaioError(OSError):
    """Base of every error the KAIO loop raises on purpose."""


class KaioUnsupportedError(KaioError):
    """This platform, kernel or backend cannot do what was asked (not Linux, ENOSYS...)."""


class KaioBackendUnavailableError(KaioUnsupportedError):
    """The requested binding (``libaio`` or ``syscall``) cannot be loaded here."""


class KaioSetupError(KaioError):
    """``io_setup`` refused to create the AIO context (``EAGAIN`` from ``aio-max-nr``...)."""


class KaioAlignmentError(KaioError):
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


class KaioShortTransferError(KaioError):
    """The kernel transferred fewer bytes than asked, and the caller asked for exactly."""

    def __init__(self, message: str, *, expected: int, transferred: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.transferred = transferred


class KaioShortReadError(KaioShortTransferError):
    """A read returned fewer bytes than requested (end of file, usually)."""

    def __init__(self, message: str, *, expected: int, transferred: int, data: bytes) -> None:
        super().__init__(message, expected=expected, transferred=transferred)
        self.data = data  # what was read: nothing is thrown away


class KaioShortWriteError(KaioShortTransferError):
    """A write stored fewer bytes than requested (device full, usually)."""


class KaioClosedError(KaioError, RuntimeError):
    """The loop is closed (or closing): no new KAIO operation can start."""

    def __init__(self, message: str = "the KAIO event loop is closed") -> None:
        super().__init__(errno_.EBADF, message)


# ---- errno translation -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request:
    """What an operation asked for, kept only to word its error messages."""

    name: str  # "aio_pread", "aio_pwrite", ...
    fd: int
    address: int = 0
    nbytes: int = 0
    offset: int = 0

    def describe(self) -> str:
        if self.name in ("aio_fsync", "aio_fdatasync"):
            return f"{self.name}(fd={self.fd})"
        if self.name == "aio_poll":
            return f"{self.name}(fd={self.fd}, events={self.address:#x})"
        return f"{self.name}(fd={self.fd}, nbytes={self.nbytes}, offset={self.offset})"


def setup_error(err: int, nr_events: int) -> KaioError:
    """The exception for ``io_setup(nr_events)`` failing with *err*."""
    if err == errno_.ENOSYS:
        return KaioUnsupportedError(
            err, "io_setup: this kernel has no native AIO (ENOSYS; CONFIG_AIO is off)"
        )
    if err == errno_.EAGAIN:
        return KaioSetupError(
            err,
            f"io_setup({nr_events}) refused with EAGAIN: the system-wide AIO event limit "
            f"would be exceeded (fs.aio-nr={_read_sysctl('aio-nr')} in use of "
            f"fs.aio-max-nr={_read_sysctl('aio-max-nr')}); use a smaller ring_size or raise "
            "/proc/sys/fs/aio-max-nr",
        )
    return KaioSetupError(err, f"io_setup({nr_events}) failed: {os.strerror(err)}")


def operation_error(err: int, request: Request) -> KaioError:
    """The exception for *request* failing with *err* (from io_submit or its event)."""
    if err == errno_.EINVAL and request.name in ("aio_pread", "aio_preadinto", "aio_pwrite"):
        alignment_error = _alignment_error(request)
        if alignment_error is not None:
            return alignment_error
    if err == errno_.EINVAL and request.name == "aio_poll":
        return KaioUnsupportedError(
            err,
            f"{request.describe()}: rejected with EINVAL; IOCB_CMD_POLL needs Linux >= 4.18 "
            f"(this is {os.uname().release}) and a file that supports poll",
        )
    if err == errno_.EINVAL and request.name in ("aio_fsync", "aio_fdatasync"):
        return KaioUnsupportedError(
            err,
            f"{request.describe()}: rejected with EINVAL; this file does not support "
            "asynchronous fsync (IOCB_CMD_FSYNC/FDSYNC need Linux >= 4.18 and a file "
            "system with fsync)",
        )
    return KaioError(err, f"{request.describe()}: {os.strerror(err)}")


def _alignment_error(request: Request) -> KaioAlignmentError | None:
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
    return KaioAlignmentError(
        f"{request.describe()}: O_DIRECT misalignment: {'; '.join(parts)} "
        f"(required alignment: memory {memory}, offset and length {offset}, {source}); "
        "allocate with sysletloop.kaio.aligned_buffer()",
        misaligned=tuple(wrong),
        memory_alignment=known.memory if known else None,
        offset_alignment=known.offset if known else None,
    )


def _read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/fs/{name}") as f:
            return f.read().strip()
    except OSError:
        return "?"
