"""Clear, typed errors: kernel errnos from real files, O_DIRECT alignment, short
transfers, bad arguments, and why io_uring is unavailable (sysctl, seccomp, old kernel)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sysletloop import uring
from sysletloop.kaio._buffer import buffer_address
from sysletloop.uring._errors import (
    Request,
    disabled_error,
    missing_opcodes_error,
    operation_error,
    probe_unsupported_error,
    setup_error,
)

from ._support import needs_uring, open_file, run

BLOCK = 4096


# ---- errors from the kernel, through the ring ----------------------------------------
@needs_uring
def test_bad_fd_is_a_typed_error_naming_the_call() -> None:
    bad = 999_999  # above any RLIMIT_NOFILE here, so surely not open
    with pytest.raises(OSError):
        os.fstat(bad)

    async def main(loop: uring.UringEventLoop) -> None:
        with pytest.raises(uring.UringError, match=r"uring_read\(fd=999999, nbytes=10"):
            await loop.uring_read(bad, 10, 0)
        with pytest.raises(uring.UringError) as info:
            await loop.uring_write(bad, b"x", 0)
        assert info.value.errno == errno.EBADF and "not an open descriptor" in str(info.value)
        with pytest.raises(uring.UringError, match=r"uring_fsync\(fd=999999\)"):
            await loop.uring_fsync(bad)
        with pytest.raises(uring.UringError, match=r"uring_close\(fd=999999\)"):
            await loop.uring_close(bad)
        with pytest.raises(uring.UringError, match=r"uring_fstat\(fd=999999\)"):
            await loop.uring_fstat(bad)
        stats = loop.uring_stats()
        assert stats.failed == 5 and stats.in_flight == 0

    run(main)


@needs_uring
def test_path_errors_are_the_stdlib_classes_too(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    missing = tmp_path / "missing"

    async def main(loop: uring.UringEventLoop) -> None:
        with pytest.raises(FileNotFoundError) as info:
            await loop.uring_openat(missing)
        assert isinstance(info.value, uring.UringFileNotFoundError)
        assert isinstance(info.value, uring.UringError)
        assert info.value.errno == errno.ENOENT
        assert f"uring_openat(path={str(missing)!r})" in str(info.value)
        with pytest.raises(uring.UringFileNotFoundError):
            await loop.uring_statx(missing)
        with pytest.raises(FileExistsError):
            await loop.uring_openat(tmp_path / "file", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with pytest.raises(IsADirectoryError):
            await loop.uring_openat(tmp_path / "dir", os.O_WRONLY)
        with pytest.raises(NotADirectoryError):
            await loop.uring_statx(tmp_path / "file" / "below")
        with pytest.raises(uring.UringFileNotFoundError, match="uring_unlink"):
            await loop.uring_unlink(missing)
        with pytest.raises(uring.UringFileNotFoundError, match="->"):
            await loop.uring_rename(missing, tmp_path / "elsewhere")
        with pytest.raises(FileExistsError):
            await loop.uring_mkdir(tmp_path / "dir")
        with pytest.raises(uring.UringError) as notempty:
            (tmp_path / "dir" / "x").write_bytes(b"")
            await loop.uring_rmdir(tmp_path / "dir")
        assert notempty.value.errno == errno.ENOTEMPTY
        with pytest.raises(ValueError, match="embedded null byte"):
            await loop.uring_openat("a\0b")
        assert loop.uring_stats().in_flight == 0

    run(main)


@needs_uring
@pytest.mark.parametrize(
    ("nbytes", "offset", "what"),
    [(100, 0, "length"), (BLOCK, 1, "offset"), (BLOCK + 1, 7, "offset")],
)
def test_direct_misaligned_offset_or_length(
    direct_dir: Path, fds: list[int], nbytes: int, offset: int, what: str
) -> None:
    fd = open_file(direct_dir / "a.dat", direct=True, size=4 * BLOCK)
    fds.append(fd)
    # Real blocks, not a hole: ext4 answers O_DIRECT reads of holes without checking.
    os.pwrite(fd, uring.aligned_buffer(4 * BLOCK), 0)

    async def main(loop: uring.UringEventLoop) -> None:
        with pytest.raises(uring.UringAlignmentError) as info:
            await loop.uring_read(fd, nbytes, offset)
        error = info.value
        assert error.errno == errno.EINVAL
        assert what in error.misaligned
        assert "O_DIRECT misalignment" in str(error) and "aligned_buffer" in str(error)
        assert str(error).startswith("[Errno 22] uring_read(")
        assert loop.uring_stats().failed == 1

    run(main)


def test_alignment_diagnosis_names_each_culprit(direct_dir: Path, fds: list[int]) -> None:
    fd = open_file(direct_dir / "c.dat", direct=True, size=BLOCK)
    fds.append(fd)
    aligned = buffer_address(uring.aligned_buffer(BLOCK))
    error = operation_error(errno.EINVAL, Request("uring_write", fd, aligned + 1, 100, 3))
    assert isinstance(error, uring.UringAlignmentError)
    assert error.misaligned == ("buffer", "offset", "length")
    # All aligned: EINVAL is something else, reported as such.
    plain = operation_error(errno.EINVAL, Request("uring_read", fd, aligned, BLOCK, 0))
    assert type(plain) is uring.UringError and "Invalid argument" in str(plain)
    # Not O_DIRECT: never called misalignment.
    bfd = open_file(direct_dir / "d.dat", direct=False, size=BLOCK)
    fds.append(bfd)
    assert type(operation_error(errno.EINVAL, Request("uring_read", bfd, 1, 3, 3))) is (
        uring.UringError
    )


@needs_uring
def test_short_reads_and_writes_are_reported(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "s.dat", direct=False, size=0)
    fds.append(fd)
    os.pwrite(fd, b"z" * 5000, 0)

    async def main(loop: uring.UringEventLoop) -> None:
        assert await loop.uring_read(fd, 8192, 0) == b"z" * 5000  # like os.pread: shorter
        assert await loop.uring_read(fd, 10, 5000) == b""  # at end of file
        with pytest.raises(uring.UringShortReadError, match="short read, 5000 of 8192") as info:
            await loop.uring_read(fd, 8192, 0, exact=True)
        assert (info.value.expected, info.value.transferred) == (8192, 5000)
        assert info.value.data == b"z" * 5000  # nothing silently dropped
        buffer = bytearray(8192)
        assert await loop.uring_readinto(fd, buffer, 4000) == 1000
        with pytest.raises(uring.UringShortReadError) as info2:
            await loop.uring_readinto(fd, buffer, 4000, exact=True)
        assert info2.value.data == b"z" * 1000

    run(main)


@needs_uring
def test_argument_errors(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "f.dat", direct=False, size=BLOCK)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        with pytest.raises(ValueError, match="offset must be >= 0"):
            await loop.uring_read(fd, 10, -2)
        with pytest.raises(ValueError, match="nbytes must be >= 0"):
            await loop.uring_read(fd, -1, 0)
        with pytest.raises(TypeError, match="writable buffer"):
            await loop.uring_readinto(fd, b"read-only", 0)
        with pytest.raises(TypeError, match="writable buffer"):
            await loop.uring_readinto(fd, memoryview(bytearray(8)).toreadonly(), 0)
        with pytest.raises(TypeError, match="not C contiguous"):
            await loop.uring_readinto(fd, memoryview(bytearray(8))[::2], 0)
        with pytest.raises(TypeError, match="buffer 1 is read-only"):
            await loop.uring_readv(fd, [bytearray(1), b"ro"], 0)
        with pytest.raises(ValueError, match="at most 1024 buffers"):
            await loop.uring_writev(fd, [b"x"] * 1025, 0)
        with pytest.raises(ValueError, match="fd must be >= 0"):
            await loop.uring_fstat(-1)
        assert loop.uring_stats().submitted == 0

    run(main)


@needs_uring
@pytest.mark.parametrize("option", ["entries", "harvest_batch", "submit_batch"])
@pytest.mark.parametrize("value", [-1, True, 2.0, "8"])
def test_bad_loop_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{option} must be .*, got {value!r}"):
        uring.new_event_loop(**{option: value})  # type: ignore[arg-type]


@needs_uring
def test_too_many_entries() -> None:
    with pytest.raises(ValueError, match="at most 32768"):
        uring.new_event_loop(entries=32769)
    with pytest.raises(ValueError, match="entries must be a positive int, got 0"):
        uring.new_event_loop(entries=0)


# ---- why io_uring is unavailable --------------------------------------------------------
def test_not_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(uring.UringUnsupportedError, match=r"needs Linux io_uring.*'darwin'"):
        uring.new_event_loop()


def test_disabled_sysctl_is_named() -> None:
    assert disabled_error("0") is None and disabled_error("1") is None
    assert disabled_error(None) is None
    error = disabled_error("2")
    assert isinstance(error, uring.UringUnsupportedError)
    assert "/proc/sys/kernel/io_uring_disabled is 2" in str(error)


def test_setup_errors_say_why() -> None:
    enosys = setup_error(errno.ENOSYS, 8, disabled=None, group=None, seccomp="0")
    assert isinstance(enosys, uring.UringUnsupportedError) and "CONFIG_IO_URING" in str(enosys)
    filtered = setup_error(errno.ENOSYS, 8, disabled="0", group=None, seccomp="2")
    assert "seccomp" in str(filtered)
    group = setup_error(errno.EPERM, 8, disabled="1", group="1234", seccomp="0")
    assert isinstance(group, uring.UringUnsupportedError)
    assert "io_uring_disabled is 1" in str(group) and "group 1234" in str(group)
    sandboxed = setup_error(errno.EPERM, 8, disabled="0", group=None, seccomp="2")
    assert "seccomp filter" in str(sandboxed)
    nomem = setup_error(errno.ENOMEM, 8, disabled="0", group=None, seccomp="0")
    assert isinstance(nomem, uring.UringSetupError) and "RLIMIT_MEMLOCK" in str(nomem)
    old = probe_unsupported_error(errno.EINVAL)
    assert "predates 5.6" in str(old)
    missing = missing_opcodes_error([("IORING_OP_STATX", "5.6")])
    assert "IORING_OP_STATX (Linux 5.6)" in str(missing)


_SECCOMP_CHILD = textwrap.dedent(
    """
    import ctypes, errno, struct, sys
    from sysletloop import uring

    # A seccomp filter, as container runtimes install: io_uring_setup (425) -> EPERM,
    # every other call allowed. BPF: load the syscall number, compare, return.
    SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
    def stmt(code, k): return struct.pack("=HBBI", code, 0, 0, k)
    def jump(code, k, jt, jf): return struct.pack("=HBBI", code, jt, jf, k)
    program = b"".join([
        stmt(0x20, 0),                          # ld [nr]
        jump(0x15, 425, 0, 1),                  # jeq 425 ? next : skip one
        stmt(0x06, SECCOMP_RET_ERRNO | errno.EPERM),
        stmt(0x06, SECCOMP_RET_ALLOW),
    ])
    code = ctypes.create_string_buffer(program)
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    prog = Prog(len(program) // 8, ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0, ctypes.get_errno()
    try:
        uring.new_event_loop()
    except uring.UringUnsupportedError as exc:
        print(exc)
        sys.exit(0)
    sys.exit("no error")
    """
)


@needs_uring
def test_a_seccomp_filter_is_detected_and_named() -> None:
    """A real seccomp filter (as Docker's default profile installs) in a child process."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("the filter in this test is written for x86_64's system call numbers")
    done = subprocess.run(
        [sys.executable, "-c", _SECCOMP_CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "io_uring_setup: EPERM" in done.stdout and "seccomp filter" in done.stdout


def test_error_family() -> None:
    for cls in (
        uring.UringUnsupportedError,
        uring.UringSetupError,
        uring.UringAlignmentError,
        uring.UringShortReadError,
        uring.UringShortWriteError,
        uring.UringClosedError,
        uring.UringFileNotFoundError,
        uring.UringPermissionError,
    ):
        assert issubclass(cls, uring.UringError) and issubclass(cls, OSError)
    assert issubclass(uring.UringClosedError, RuntimeError)
    assert issubclass(uring.UringPermissionError, PermissionError)
