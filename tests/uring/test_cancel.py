"""Cancellation at every stage of an op's life, with the buffer checked at each.

Stages (see the life-of-an-op diagram in sysletloop/uring/_loop.py):
  1. queued, no slot yet              -> never submitted; buffer released at once
  2. in the kernel, blocked (a pipe)  -> ASYNC_CANCEL withdraws it; buffer pinned until
                                         its own CQE (-ECANCELED), and no data consumed
  3. completed, CQE not yet reaped    -> the outcome is dropped; buffer pinned until reaped
  4. reaped, caller not yet resumed   -> the op completed; only the caller's wait is cancelled
  5. an openat whose caller left      -> the fd it produced is closed by the loop
The tests order callbacks with call_soon and sleep(0), which run in FIFO order within an
iteration with no poll in between, so each stage is reached deterministically.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sysletloop import uring

from ._support import fd_count, needs_uring, open_file, resizable, run, wait_for

pytestmark = needs_uring

BLOCK = 4096
PATTERN = bytes(range(256)) * (BLOCK // 256)


def test_cancel_while_queued(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "q.dat", direct=False, size=BLOCK)
    os.pwrite(fd, PATTERN, 0)
    r, w = os.pipe()
    fds += [fd, r, w]

    async def main(loop: uring.UringEventLoop) -> None:
        assert loop.uring_entries == 1
        pipe_buffer = bytearray(1)
        held = asyncio.ensure_future(loop.uring_readinto(r, pipe_buffer, -1))  # the one slot
        await wait_for(lambda: loop.uring_stats().submitted == 1)
        buffer = bytearray(BLOCK)
        read = asyncio.ensure_future(loop.uring_readinto(fd, buffer, 0))
        await wait_for(lambda: loop.uring_stats().queued == 1)
        assert not resizable(buffer)  # pinned while queued
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        assert resizable(buffer)  # released: it never reached the kernel
        assert buffer == bytearray(BLOCK)
        stats = loop.uring_stats()
        assert (stats.submitted, stats.queued, stats.cancelled) == (1, 0, 1)
        os.write(w, b"x")
        assert await held == 1 and pipe_buffer == b"x"
        assert loop.uring_stats().submitted == 1  # the cancelled read was never submitted

    run(main, entries=1)


def test_cancel_in_the_kernel_withdraws_the_op(fds: list[int]) -> None:
    r, w = os.pipe()
    fds += [r, w]

    async def main(loop: uring.UringEventLoop) -> None:
        buffer = bytearray(16)
        read = asyncio.ensure_future(loop.uring_readinto(r, buffer, -1))
        await wait_for(lambda: loop.uring_stats().submitted == 1)
        await asyncio.sleep(0.01)  # (the kernel has parked it on the pipe either way)
        read.cancel()
        await asyncio.sleep(0)  # the read's task ran first: it has abandoned the op,
        assert read.cancelled()  # and this iteration's flush has not yet sent the cancel
        assert not resizable(buffer)  # no CQE yet: the kernel may still write it
        assert loop.uring_stats().in_flight == 1
        await wait_for(lambda: loop.uring_stats().in_flight == 0)
        assert resizable(buffer)  # released with the op's own CQE
        stats = loop.uring_stats()
        assert (stats.cancelled, stats.cancel_requests, stats.cancel_found) == (1, 1, 1)
        assert (stats.completed, stats.failed) == (1, 0)  # -ECANCELED is not a failure
        # The withdrawn read consumed nothing: the next one gets the byte.
        os.write(w, b"y")
        assert await loop.uring_read(r, 16, -1) == b"y"
        assert buffer == bytearray(16)

    run(main)


def test_cancel_after_completion_before_reap(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "s.dat", direct=False, size=BLOCK)
    os.pwrite(fd, PATTERN, 0)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        # Two buffered reads of cached data complete inside the same io_uring_enter; with
        # harvest_batch=1 a reap resolves only the first, so the second is done in the
        # kernel's CQ ring but not yet reaped when the first one's task runs.
        first_buffer, buffer = bytearray(BLOCK), bytearray(BLOCK)
        seen: list[tuple[int, int, bool]] = []

        async def first_then_cancel() -> None:
            await loop.uring_readinto(fd, first_buffer, 0)
            stats = loop.uring_stats()
            read.cancel()
            seen.append((stats.submitted, stats.in_flight, resizable(buffer)))

        first = asyncio.ensure_future(first_then_cancel())
        read = asyncio.ensure_future(loop.uring_readinto(fd, buffer, 0))
        await first
        with pytest.raises(asyncio.CancelledError):
            await read
        assert seen == [(2, 1, False)]  # submitted, not reaped, buffer pinned
        await wait_for(lambda: loop.uring_stats().in_flight == 0)
        assert resizable(buffer)  # released once its CQE was reaped
        assert buffer == PATTERN  # the kernel finished the read; nothing was torn
        stats = loop.uring_stats()
        assert (stats.submitted, stats.completed, stats.cancelled) == (2, 2, 1)
        assert stats.cancel_found == 0  # nothing left to withdraw: it had completed

    run(main, harvest_batch=1)


def test_cancel_after_reap_before_resume(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "h.dat", direct=False, size=BLOCK)
    os.pwrite(fd, PATTERN, 0)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        buffer = bytearray(BLOCK)
        read = asyncio.ensure_future(loop.uring_readinto(fd, buffer, 0))
        cancelled_at: list[int] = []

        def watch() -> None:
            # Rescheduled every iteration; queued ahead of the reap's task wake-up, so it
            # runs in the iteration of the reap, before the read's task resumes.
            if loop.uring_stats().completed == 1:
                read.cancel()
                cancelled_at.append(loop.uring_stats().in_flight)
            else:
                loop.call_soon(watch)

        loop.call_soon(watch)
        with pytest.raises(asyncio.CancelledError):
            await read
        assert cancelled_at == [0]
        assert resizable(buffer) and buffer == PATTERN
        stats = loop.uring_stats()
        # The op itself completed; only the wait was cancelled.
        assert (stats.completed, stats.cancelled, stats.cancel_requests) == (1, 0, 0)

    run(main)


def test_cancelled_open_closes_its_fd(tmp_path: Path) -> None:
    path = tmp_path / "o.dat"
    path.write_bytes(b"")

    async def main(loop: uring.UringEventLoop) -> None:
        before = fd_count()
        opens = [asyncio.ensure_future(loop.uring_openat(path)) for _ in range(8)]
        await asyncio.sleep(0)  # the tasks ran: their SQEs are written, not yet submitted
        for task in opens:
            task.cancel()
        for task in opens:
            with pytest.raises(asyncio.CancelledError):
                await task
        await wait_for(lambda: loop.uring_stats().in_flight == 0)
        stats = loop.uring_stats()
        assert stats.cancelled == 8
        assert stats.orphans_closed == 8  # every fd the kernel opened for nobody
        assert fd_count() == before

    run(main)


def test_cancel_many_direct_reads_mid_flight(direct_dir: Path) -> None:
    """Cancel half of 256 O_DIRECT reads at arbitrary points; the rest read correctly,
    and every aligned buffer ends either untouched or holding exactly its block."""
    nblocks = 256
    fd = open_file(direct_dir / "m.dat", direct=False, size=nblocks * BLOCK)
    for b in range(nblocks):
        os.pwrite(fd, bytes([b % 251 + 1]) * BLOCK, b * BLOCK)
    os.fsync(fd)
    os.close(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        dfd = os.open(direct_dir / "m.dat", os.O_RDONLY | os.O_DIRECT)
        try:
            buffers = [uring.aligned_buffer(BLOCK) for _ in range(nblocks)]
            tasks = [
                asyncio.ensure_future(loop.uring_readinto(dfd, buffers[b], b * BLOCK))
                for b in range(nblocks)
            ]
            accepted = 0  # Task.cancel() is refused once a task has finished
            for step in range(4):
                await asyncio.sleep(0)
                for t in tasks[step::8]:
                    accepted += t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await wait_for(lambda: loop.uring_stats().in_flight == 0)
            for b, result in enumerate(results):
                block = bytes([b % 251 + 1]) * BLOCK
                if isinstance(result, asyncio.CancelledError):
                    assert bytes(buffers[b]) in (bytes(BLOCK), block), b
                else:
                    assert result == BLOCK and bytes(buffers[b]) == block, b
            stats = loop.uring_stats()
            cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
            assert cancelled == accepted > 0
            assert stats.submitted + stats.queued == stats.completed + stats.queued
            assert stats.cancelled <= cancelled  # some finished before their cancel landed
        finally:
            os.close(dfd)

    run(main, entries=32)
