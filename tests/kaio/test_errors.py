"""Clear, typed errors: platform, io_setup refusals, O_DIRECT alignment, short transfers,
bad arguments and bad fds."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from sysletloop import kaio
from sysletloop.kaio._buffer import buffer_address
from sysletloop.kaio._errors import Request, operation_error, setup_error

from ._support import open_file, run

BLOCK = 4096


def test_not_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(kaio.KaioUnsupportedError, match=r"needs Linux native AIO.*'darwin'"):
        kaio.new_event_loop()


def test_io_setup_eagain_names_aio_max_nr(backend: str) -> None:
    with open("/proc/sys/fs/aio-max-nr") as f:
        limit = int(f.read())
    if limit >= 8 * 1024 * 1024:
        pytest.skip(f"fs.aio-max-nr={limit} is above io_setup's own EINVAL bound")
    with pytest.raises(kaio.KaioSetupError, match="aio-max-nr") as info:
        kaio.new_event_loop(backend=backend, ring_size=limit + 1)
    assert info.value.errno == errno.EAGAIN
    assert f"io_setup({limit + 1})" in str(info.value)


def test_setup_error_mapping() -> None:
    enosys = setup_error(errno.ENOSYS, 128)
    assert isinstance(enosys, kaio.KaioUnsupportedError) and enosys.errno == errno.ENOSYS
    assert "CONFIG_AIO" in str(enosys)
    other = setup_error(errno.ENOMEM, 128)
    assert isinstance(other, kaio.KaioSetupError) and other.errno == errno.ENOMEM


@pytest.mark.parametrize(
    ("nbytes", "offset", "what"),
    [(100, 0, "length"), (BLOCK, 1, "offset"), (BLOCK + 1, 7, "offset")],
)
def test_direct_misaligned_offset_or_length(
    backend: str, direct_dir: Path, fds: list[int], nbytes: int, offset: int, what: str
) -> None:
    fd = open_file(direct_dir / "a.dat", direct=True, size=4 * BLOCK)
    fds.append(fd)
    # Real blocks, not a hole: ext4 answers O_DIRECT reads of holes without checking.
    os.pwrite(fd, kaio.aligned_buffer(4 * BLOCK), 0)

    async def main(loop: kaio.KaioEventLoop) -> None:
        with pytest.raises(kaio.KaioAlignmentError) as info:
            await loop.aio_pread(fd, nbytes, offset)
        error = info.value
        assert error.errno == errno.EINVAL
        assert what in error.misaligned
        assert "O_DIRECT misalignment" in str(error) and "aligned_buffer" in str(error)
        assert f"not a multiple of {error.offset_alignment or 512}" in str(error)
        assert loop.kaio_stats().failed == 1

    run(main, backend=backend)


def test_direct_misaligned_buffer(backend: str, direct_dir: Path, fds: list[int]) -> None:
    """Recent kernels accept any buffer address for O_DIRECT (the block layer copes); older
    ones refuse it. Either way the data must be right or the error must name the buffer."""
    fd = open_file(direct_dir / "b.dat", direct=True, size=BLOCK)
    fds.append(fd)
    os.pwrite(fd, kaio.aligned_buffer(BLOCK), 0)
    source = kaio.aligned_buffer(BLOCK + 512)
    source[1 : BLOCK + 1] = b"m" * BLOCK
    odd = source[1 : BLOCK + 1]

    async def main(loop: kaio.KaioEventLoop) -> None:
        try:
            written = await loop.aio_pwrite(fd, odd, 0)
        except kaio.KaioAlignmentError as error:
            assert error.misaligned == ("buffer",)
            assert "buffer address" in str(error)
        else:
            assert written == BLOCK
            assert await loop.aio_pread(fd, BLOCK, 0) == b"m" * BLOCK

    run(main, backend=backend)


def test_alignment_diagnosis_names_each_culprit(direct_dir: Path, fds: list[int]) -> None:
    fd = open_file(direct_dir / "c.dat", direct=True, size=BLOCK)
    fds.append(fd)
    aligned = buffer_address(kaio.aligned_buffer(BLOCK))
    error = operation_error(errno.EINVAL, Request("aio_pwrite", fd, aligned + 1, 100, 3))
    assert isinstance(error, kaio.KaioAlignmentError)
    assert error.misaligned == ("buffer", "offset", "length")
    message = str(error)
    assert "aio_pwrite(fd=" in message and "buffer address" in message
    assert "offset 3 is not a multiple" in message and "length 100 is not a multiple" in message
    # All aligned: EINVAL is something else, reported as such.
    plain = operation_error(errno.EINVAL, Request("aio_pread", fd, aligned, BLOCK, 0))
    assert type(plain) is kaio.KaioError and "Invalid argument" in str(plain)


def test_buffered_einval_is_not_called_misalignment(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "d.dat", direct=False, size=BLOCK)
    fds.append(fd)
    error = operation_error(errno.EINVAL, Request("aio_pread", fd, 1, 100, 3))
    assert type(error) is kaio.KaioError


def test_short_reads_are_reported(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "s.dat", direct=False, size=0)
    fds.append(fd)
    os.pwrite(fd, b"z" * 5000, 0)

    async def main(loop: kaio.KaioEventLoop) -> None:
        assert await loop.aio_pread(fd, 8192, 0) == b"z" * 5000  # like os.pread: shorter
        assert await loop.aio_pread(fd, 10, 5000) == b""  # at end of file
        with pytest.raises(kaio.KaioShortReadError, match="short read, 5000 of 8192") as info:
            await loop.aio_pread(fd, 8192, 0, exact=True)
        assert (info.value.expected, info.value.transferred) == (8192, 5000)
        assert info.value.data == b"z" * 5000  # nothing silently dropped
        buffer = bytearray(8192)
        assert await loop.aio_preadinto(fd, buffer, 4000) == 1000
        with pytest.raises(kaio.KaioShortReadError) as info2:
            await loop.aio_preadinto(fd, buffer, 4000, exact=True)
        assert info2.value.data == b"z" * 1000
        assert await loop.aio_pread(fd, 5000, 0, exact=True) == b"z" * 5000

    run(main, backend=backend)


def test_direct_short_read_at_end_of_file(backend: str, direct_dir: Path, fds: list[int]) -> None:
    fd = open_file(direct_dir / "e.dat", direct=False, size=0)
    fds.append(fd)
    os.pwrite(fd, b"q" * 5000, 0)
    dfd = os.open(direct_dir / "e.dat", os.O_RDONLY | os.O_DIRECT)
    fds.append(dfd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        buffer = kaio.aligned_buffer(8192)
        assert await loop.aio_preadinto(dfd, buffer, 0) == 5000
        assert bytes(buffer[:5000]) == b"q" * 5000

    run(main, backend=backend)


def test_bad_fd_is_rejected_at_submission(backend: str) -> None:
    bad = 999_999  # above any RLIMIT_NOFILE here, so surely not open
    with pytest.raises(OSError):
        os.fstat(bad)

    async def main(loop: kaio.KaioEventLoop) -> None:
        with pytest.raises(
            kaio.KaioError, match=r"aio_pread\(fd=\d+, nbytes=10, offset=0\)"
        ) as info:
            await loop.aio_pread(bad, 10, 0)
        assert info.value.errno == errno.EBADF
        stats = loop.kaio_stats()
        assert (stats.rejected, stats.submitted) == (1, 0)

    run(main, backend=backend)


def test_argument_errors(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "f.dat", direct=False, size=BLOCK)
    fds.append(fd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        with pytest.raises(ValueError, match="offset must be >= 0"):
            await loop.aio_pread(fd, 10, -1)
        with pytest.raises(ValueError, match="nbytes must be >= 0"):
            await loop.aio_pread(fd, -1, 0)
        with pytest.raises(TypeError, match="writable buffer"):
            await loop.aio_preadinto(fd, b"read-only", 0)
        with pytest.raises(ValueError, match="16-bit mask"):
            await loop.aio_poll(fd, 0)
        with pytest.raises(ValueError, match="fd must be >= 0"):
            await loop.aio_fsync(-1)
        assert loop.kaio_stats().submitted == 0

    run(main, backend=backend)
    with pytest.raises(ValueError, match="power of two"):
        kaio.aligned_buffer(10, alignment=3)


def test_error_family() -> None:
    for cls in (
        kaio.KaioUnsupportedError,
        kaio.KaioBackendUnavailableError,
        kaio.KaioSetupError,
        kaio.KaioAlignmentError,
        kaio.KaioShortReadError,
        kaio.KaioShortWriteError,
        kaio.KaioClosedError,
    ):
        assert issubclass(cls, kaio.KaioError) and issubclass(cls, OSError)
