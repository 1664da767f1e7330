"""Every operation at least once against real files, checked against what ``os`` sees."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sysletloop import uring
from sysletloop.uring import _abi

from ._support import needs_uring, run

pytestmark = needs_uring


def test_open_write_read_stat_close(tmp_path: Path) -> None:
    path = tmp_path / "a.dat"

    async def main(loop: uring.UringEventLoop) -> None:
        fd = await loop.uring_openat(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            assert not os.get_inheritable(fd)  # O_CLOEXEC, as os.open gives
            assert os.readlink(f"/proc/self/fd/{fd}") == str(path)
            assert await loop.uring_write(fd, b"hello, ring", 0) == 11
            assert await loop.uring_read(fd, 64, 0) == b"hello, ring"
            assert await loop.uring_read(fd, 4, 7) == b"ring"
            buf = bytearray(5)
            assert await loop.uring_readinto(fd, buf, 0) == 5 and buf == b"hello"
            got = await loop.uring_fstat(fd)
            assert got == os.fstat(fd)
            assert got.st_size == 11 and stat.S_IMODE(got.st_mode) == 0o640
            await loop.uring_fsync(fd)
            await loop.uring_fsync(fd, datasync=True)
        finally:
            await loop.uring_close(fd)
        with pytest.raises(OSError):
            os.fstat(fd)  # closed by the ring
        assert path.read_bytes() == b"hello, ring"

    run(main)


def test_statx_matches_os_stat(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"x" * 12345)
    link = tmp_path / "link"
    link.symlink_to(target)
    sub = tmp_path / "sub"
    sub.mkdir()

    async def main(loop: uring.UringEventLoop) -> None:
        for path in (target, link, sub, Path("/dev/null")):
            result = await loop.uring_statx(path)
            want = os.stat(path)
            assert result == want, path
            for name in (
                "st_mtime_ns",
                "st_ctime_ns",
                "st_atime_ns",
                "st_blksize",
                "st_blocks",
                "st_rdev",
                "st_mtime",
            ):
                assert getattr(result, name) == getattr(want, name), (path, name)
        nofollow = await loop.uring_statx(link, follow_symlinks=False)
        assert stat.S_ISLNK(nofollow.st_mode) and nofollow == os.lstat(link)
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert await loop.uring_statx("target", dir_fd=dfd) == os.stat(target)
        finally:
            os.close(dfd)
        assert (await loop.uring_statx(str(sub).encode())).st_ino == sub.stat().st_ino

    run(main)


def test_openat_relative_to_a_directory_fd(tmp_path: Path) -> None:
    (tmp_path / "rel.txt").write_bytes(b"relative")

    async def main(loop: uring.UringEventLoop) -> None:
        dfd = await loop.uring_openat(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fd = await loop.uring_openat("rel.txt", dir_fd=dfd)
            try:
                assert await loop.uring_read(fd, 100, 0) == b"relative"
            finally:
                await loop.uring_close(fd)
        finally:
            await loop.uring_close(dfd)

    run(main)


def test_unlink_rename_mkdir_rmdir(tmp_path: Path) -> None:
    async def main(loop: uring.UringEventLoop) -> None:
        for opcode in (_abi.IORING_OP_RENAMEAT, _abi.IORING_OP_UNLINKAT, _abi.IORING_OP_MKDIRAT):
            if not loop.uring_supports(opcode):
                pytest.skip(f"this kernel lacks {_abi.OPCODES[opcode][0]}")
        await loop.uring_mkdir(tmp_path / "d", 0o750)
        assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o750 & ~_umask()
        (tmp_path / "d" / "f").write_bytes(b"moved")
        await loop.uring_rename(tmp_path / "d" / "f", tmp_path / "g")
        assert not (tmp_path / "d" / "f").exists()
        assert (tmp_path / "g").read_bytes() == b"moved"
        dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            await loop.uring_rename("g", "h", src_dir_fd=dfd, dst_dir_fd=dfd)
            await loop.uring_unlink("h", dir_fd=dfd)
        finally:
            os.close(dfd)
        assert not (tmp_path / "h").exists()
        await loop.uring_rmdir(tmp_path / "d")
        assert os.listdir(tmp_path) == []

    run(main)


def test_vectored_io_and_empty_buffers(tmp_path: Path) -> None:
    path = tmp_path / "v.dat"
    path.write_bytes(b"")

    async def main(loop: uring.UringEventLoop) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            assert await loop.uring_writev(fd, [b"ab", memoryview(b"cd"), bytearray(b"ef")], 0) == 6
            first, empty, rest = bytearray(1), bytearray(0), bytearray(10)
            assert await loop.uring_readv(fd, [first, empty, rest], 0) == 6
            assert (bytes(first), bytes(rest[:5])) == (b"a", b"bcdef")
            assert await loop.uring_readv(fd, [], 0) == 0
            assert await loop.uring_write(fd, b"", 0) == 0
            assert await loop.uring_read(fd, 0, 0) == b""
        finally:
            os.close(fd)

    run(main)


def test_buffer_formats_and_read_only_sources(tmp_path: Path, fds: list[int]) -> None:
    """Any C-contiguous buffer: typed arrays are read as bytes; a read-only memoryview is
    written through a copy."""
    import array

    fd = os.open(tmp_path / "f.dat", os.O_RDWR | os.O_CREAT, 0o600)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        words = array.array("I", [1, 2, 3, 4])
        assert await loop.uring_write(fd, words, 0) == 16
        assert await loop.uring_write(fd, memoryview(b"tail").toreadonly(), 16) == 4
        into = array.array("I", [0] * 4)
        assert await loop.uring_readinto(fd, into, 0) == 16 and into == words
        assert await loop.uring_read(fd, 4, 16) == b"tail"

    run(main)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
