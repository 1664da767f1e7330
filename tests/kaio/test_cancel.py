"""Cancellation at every stage of an op's life, with the buffer checked at each.

Stages (see the life-of-an-op diagram in sysletloop/kaio/_loop.py):
  1. queued, no slot yet          -> never submitted; buffer released at once
  2. submitted, event not yet harvested -> outcome dropped on arrival; buffer pinned until then
  3. harvested, caller not yet resumed  -> the op completed; only the caller's wait is cancelled
  4. in flight and cancellable (poll)   -> io_cancel accepted; event still awaited
The tests order callbacks with call_soon, which runs them in FIFO order within one loop
iteration with no select() in between, so each stage is reached deterministically.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable
from pathlib import Path

import pytest

from sysletloop import kaio

from ._support import open_file, run

BLOCK = 4096
PATTERN = bytes(range(256)) * (BLOCK // 256)


def resizable(buffer: bytearray) -> bool:
    """Whether *buffer* is free of exports (so nothing can be pinning it)."""
    try:
        buffer.append(0)
    except BufferError:
        return False
    buffer.pop()
    return True


async def wait_for(loop: kaio.KaioEventLoop, condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


def test_cancel_while_queued(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "q.dat", direct=False, size=BLOCK)
    fds.append(fd)
    os.pwrite(fd, PATTERN, 0)
    r, w = os.pipe()
    fds += [r, w]

    async def main(loop: kaio.KaioEventLoop) -> None:
        poll = asyncio.ensure_future(loop.aio_poll(r, select.POLLIN))  # holds the only slot
        await wait_for(loop, lambda: loop.kaio_stats().in_flight == 1)
        buffer = bytearray(BLOCK)
        read = asyncio.ensure_future(loop.aio_preadinto(fd, buffer, 0))
        await wait_for(loop, lambda: loop.kaio_stats().queued == 1)
        assert not resizable(buffer)  # pinned while queued
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        assert resizable(buffer)  # released: it never reached the kernel
        assert buffer == bytearray(BLOCK)
        stats = loop.kaio_stats()
        assert (stats.submitted, stats.queued, stats.cancelled) == (1, 0, 1)
        os.write(w, b"x")
        assert await poll & select.POLLIN
        assert loop.kaio_stats().submitted == 1  # the cancelled read was never submitted

    run(main, backend=backend, ring_size=1)


def test_cancel_after_submit_before_harvest(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "s.dat", direct=False, size=BLOCK)
    fds.append(fd)
    os.pwrite(fd, PATTERN, 0)

    async def main(loop: kaio.KaioEventLoop) -> None:
        # Two buffered reads, finished by the kernel inside the same io_submit; with
        # harvest_batch=1 the next poll reaps only the first, so the second is done in
        # the kernel's ring but not yet harvested when the first one's task runs.
        first_buffer, buffer = bytearray(BLOCK), bytearray(BLOCK)
        seen: list[tuple[int, int, bool]] = []

        async def first_then_cancel() -> None:
            await loop.aio_preadinto(fd, first_buffer, 0)
            stats = loop.kaio_stats()
            read.cancel()
            seen.append((stats.submitted, stats.in_flight, resizable(buffer)))

        first = asyncio.ensure_future(first_then_cancel())
        read = asyncio.ensure_future(loop.aio_preadinto(fd, buffer, 0))
        await first
        with pytest.raises(asyncio.CancelledError):
            await read
        assert seen == [(2, 1, False)]  # submitted, not harvested, buffer pinned
        await wait_for(loop, lambda: loop.kaio_stats().in_flight == 0)
        assert resizable(buffer)  # released once its event was harvested
        assert buffer == PATTERN  # the kernel finished the read; nothing was torn
        stats = loop.kaio_stats()
        assert (stats.submitted, stats.completed, stats.cancelled) == (2, 2, 1)

    run(main, backend=backend, harvest_batch=1)


def test_cancel_after_harvest_before_resume(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "h.dat", direct=False, size=BLOCK)
    fds.append(fd)
    os.pwrite(fd, PATTERN, 0)

    async def main(loop: kaio.KaioEventLoop) -> None:
        buffer = bytearray(BLOCK)
        read = asyncio.ensure_future(loop.aio_preadinto(fd, buffer, 0))
        cancelled_at: list[int] = []

        def watch() -> None:
            # Rescheduled every iteration; queued ahead of the harvest's task wake-up, so
            # it runs in the iteration after the harvest, before the read's task resumes.
            if loop.kaio_stats().completed == 1:
                read.cancel()
                cancelled_at.append(loop.kaio_stats().in_flight)
            else:
                loop.call_soon(watch)

        loop.call_soon(watch)
        with pytest.raises(asyncio.CancelledError):
            await read
        assert cancelled_at == [0]
        assert resizable(buffer) and buffer == PATTERN
        stats = loop.kaio_stats()
        # The op itself completed; only the wait was cancelled.
        assert (stats.completed, stats.cancelled) == (1, 0)

    run(main, backend=backend)


def test_cancel_poll_in_flight_uses_io_cancel(backend: str, fds: list[int]) -> None:
    r, w = os.pipe()
    fds += [r, w]

    async def main(loop: kaio.KaioEventLoop) -> None:
        poll = asyncio.ensure_future(loop.aio_poll(r, select.POLLIN))
        await wait_for(loop, lambda: loop.kaio_stats().in_flight == 1)
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        stats = loop.kaio_stats()
        assert (stats.cancelled, stats.cancel_accepted) == (1, 1)
        await wait_for(loop, lambda: loop.kaio_stats().in_flight == 0)
        assert loop.kaio_stats().completed == 1  # the kernel still sent its event
        # The slot is reusable and the next poll sees fresh readiness.
        os.write(w, b"x")
        assert await loop.aio_poll(r, select.POLLIN) & select.POLLIN

    run(main, backend=backend, ring_size=1)


def test_cancel_many_direct_reads_mid_flight(backend: str, direct_dir: Path) -> None:
    """Cancel half of 256 O_DIRECT reads at arbitrary points; the rest read correctly,
    and every aligned buffer ends either untouched or holding exactly its block."""
    nblocks = 256
    fd = open_file(direct_dir / "m.dat", direct=False, size=nblocks * BLOCK)
    for b in range(nblocks):
        os.pwrite(fd, bytes([b % 251 + 1]) * BLOCK, b * BLOCK)
    os.close(fd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        dfd = os.open(direct_dir / "m.dat", os.O_RDONLY | os.O_DIRECT)
        try:
            buffers = [kaio.aligned_buffer(BLOCK) for _ in range(nblocks)]
            tasks = [
                asyncio.ensure_future(loop.aio_preadinto(dfd, buffers[b], b * BLOCK))
                for b in range(nblocks)
            ]
            accepted = 0  # Task.cancel() is refused once a task has finished
            for step in range(4):
                await asyncio.sleep(0)
                for t in tasks[step::8]:
                    accepted += t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await wait_for(loop, lambda: loop.kaio_stats().in_flight == 0)
            for b, result in enumerate(results):
                block = bytes([b % 251 + 1]) * BLOCK
                if isinstance(result, asyncio.CancelledError):
                    assert bytes(buffers[b]) in (bytes(BLOCK), block), b
                else:
                    assert result == BLOCK and bytes(buffers[b]) == block, b
            stats = loop.kaio_stats()
            cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
            assert cancelled == accepted > 0
            assert stats.submitted == stats.completed
            assert stats.cancelled <= cancelled  # some finished before their cancel landed
        finally:
            os.close(dfd)

    run(main, backend=backend, ring_size=32)
