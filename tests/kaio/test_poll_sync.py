"""IOCB_CMD_POLL on pipes, and fsync/fdatasync through KAIO."""

from __future__ import annotations

import asyncio
import os
import select
from pathlib import Path

import pytest

from sysletloop import kaio

from ._support import open_file, run

KERNEL = tuple(int(p) for p in os.uname().release.split(".")[:2] if p.isdigit())
needs_418 = pytest.mark.skipif(
    KERNEL < (4, 18), reason=f"IOCB_CMD_POLL/FSYNC need Linux >= 4.18, this is {KERNEL}"
)


@needs_418
def test_poll_pipe_readable_and_writable(backend: str, fds: list[int]) -> None:
    r, w = os.pipe()
    fds += [r, w]

    async def main(loop: kaio.KaioEventLoop) -> None:
        assert await loop.aio_poll(w, select.POLLOUT) & select.POLLOUT  # ready at once
        waiting = asyncio.ensure_future(loop.aio_poll(r, select.POLLIN))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # nothing to read yet
        os.write(w, b"ping")
        mask = await waiting
        assert mask & select.POLLIN
        assert os.read(r, 4) == b"ping"
        os.close(w)
        fds.remove(w)
        assert await loop.aio_poll(r, select.POLLIN) & select.POLLHUP

    run(main, backend=backend)


@needs_418
def test_many_polls_in_flight_complete_together(backend: str, fds: list[int]) -> None:
    pipes = [os.pipe() for _ in range(20)]
    for r, w in pipes:
        fds += [r, w]

    async def main(loop: kaio.KaioEventLoop) -> None:
        polls = [asyncio.ensure_future(loop.aio_poll(r, select.POLLIN)) for r, _ in pipes]
        while loop.kaio_stats().in_flight < 20:
            await asyncio.sleep(0)
        for _, w in pipes:
            os.write(w, b"x")
        masks = await asyncio.gather(*polls)
        assert all(m & select.POLLIN for m in masks)

    run(main, backend=backend)


@needs_418
def test_fsync_and_fdatasync(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "sync.dat", direct=False, size=0)
    fds.append(fd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        assert await loop.aio_pwrite(fd, b"durable", 0) == 7
        await loop.aio_fsync(fd)
        await loop.aio_fdatasync(fd)
        assert os.pread(fd, 7, 0) == b"durable"
        stats = loop.kaio_stats()
        assert stats.completed == 3 and stats.failed == 0

    run(main, backend=backend)
