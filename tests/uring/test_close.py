"""``loop.close()`` with I/O in flight: every op resolves, nothing leaks, nothing crashes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from sysletloop import uring

from ._support import fd_count, needs_uring, open_file, ring_fds, run, threads, wait_for

pytestmark = needs_uring

BLOCK = 4096


def _no_io_workers_left() -> bool:
    """io-wq workers idle out shortly after their last ring closes; wait for that (the
    test's timeout bounds it) rather than assume how long it takes."""
    import time

    while threads()[1]:
        time.sleep(0.01)
    return True


def test_lifecycle_leaks_no_fd_no_ring_no_thread() -> None:
    before = (fd_count(), ring_fds(), threads()[0])
    loop = uring.new_event_loop()
    try:
        assert ring_fds() == before[1] + 1
        # the ring, the eventfd; and what every selector loop has: the epoll fd, a socket
        # pair (one fd per mapping too, had the rings been mapped with Python's mmap)
        assert fd_count() == before[0] + 5
    finally:
        loop.close()
    loop.close()  # idempotent
    assert (fd_count(), ring_fds()) == before[:2]
    assert threads()[0] <= before[2]  # (another test's thread may end meanwhile)


def test_runner_close_with_blocked_and_finished_ops(tmp_path: Path, fds: list[int]) -> None:
    """main() returns with 64 file reads and 4 pipe reads (which never complete)
    outstanding: the runner cancels their tasks, the loop withdraws the pipe reads with
    ASYNC_CANCEL, and close() waits for every CQE. No fd, ring or thread survives."""
    fd = open_file(tmp_path / "c.dat", direct=False, size=64 * BLOCK)
    r, w = os.pipe()
    fds += [fd, r, w]
    before = (fd_count(), ring_fds(), threads()[0])
    buffers = [bytearray(BLOCK) for _ in range(64)]
    pipe_buffers = [bytearray(8) for _ in range(4)]
    captured: list[uring.UringEventLoop] = []
    left: list[asyncio.Future[object]] = []

    async def main(loop: uring.UringEventLoop) -> None:
        captured.append(loop)
        # Left running on purpose: the runner cancels them when main() returns.
        for i, b in enumerate(buffers):
            left.append(asyncio.ensure_future(loop.uring_readinto(fd, b, i * BLOCK)))
        for b in pipe_buffers:
            left.append(asyncio.ensure_future(loop.uring_readinto(r, b, -1)))
        left.append(asyncio.ensure_future(loop.uring_fsync(fd)))
        await wait_for(lambda: loop.uring_stats().submitted == 69)

    run(main)
    stats = captured[0].uring_stats()
    assert stats.submitted == stats.completed == 69
    assert (stats.in_flight, stats.queued) == (0, 0)
    assert stats.cancel_found >= 4  # the pipe reads, at least
    assert (fd_count(), ring_fds()) == before[:2] and threads()[0] <= before[2]
    for buf in [*buffers, *pipe_buffers]:  # nothing pins them any more
        buf.append(0)
    assert all(task.done() for task in left)
    assert all(task.cancelled() for task in left[64:68])  # the pipe reads never completed
    assert _no_io_workers_left()
    os.write(w, b"z")  # the withdrawn reads took nothing from the pipe
    assert os.read(r, 8) == b"z"


def _drive(coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
    """Start a coroutine by hand and return the future it first waits on."""
    waited = coro.send(None)
    assert isinstance(waited, asyncio.Future)
    return waited


def _finish(coro: Coroutine[Any, Any, Any]) -> Any:
    """Resume a hand-driven coroutine whose future is done; return what it returns."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine did not finish")


def test_direct_close_resolves_every_op(tmp_path: Path, fds: list[int]) -> None:
    """close() without a runner (nobody cancels the callers): the queued op is cancelled,
    the blocked pipe read is withdrawn and cancelled, an open is cancelled (withdrawn from
    io-wq, or its fd closed by the loop), the cached file read (done inline during the
    submission) delivers its real result, and the fstat, which io_uring hands to io-wq,
    is either withdrawn before it ran or delivers."""
    fd = open_file(tmp_path / "d.dat", direct=False, size=BLOCK)
    os.pwrite(fd, b"k" * BLOCK, 0)
    r, w = os.pipe()
    fds += [fd, r, w]
    before = (fd_count(), ring_fds())
    loop = uring.new_event_loop(entries=4)
    blocked = loop.uring_read(r, 8, -1)
    read = loop.uring_read(fd, BLOCK, 0)
    opened = loop.uring_openat(tmp_path / "d.dat")
    statx = loop.uring_fstat(fd)
    queued = loop.uring_read(fd, BLOCK, 0)  # the ring has four entries: this one waits
    futures = [_drive(c) for c in (blocked, read, opened, statx, queued)]
    assert loop.uring_stats().queued == 1
    loop.close()  # the ops were never even submitted: close() submits, cancels, waits
    assert all(f.done() for f in futures)
    for coro in (blocked, opened, queued):
        with pytest.raises(asyncio.CancelledError):
            _finish(coro)
    assert _finish(read) == b"k" * BLOCK
    try:
        assert _finish(statx).st_size == BLOCK
        statx_cancelled = 0
    except asyncio.CancelledError:
        statx_cancelled = 1
    stats = loop.uring_stats()
    assert (stats.submitted, stats.completed, stats.in_flight) == (4, 4, 0)
    assert stats.cancelled == 3 + statx_cancelled and stats.orphans_closed in (0, 1)
    assert (fd_count(), ring_fds()) == before


def test_close_with_ops_waiting_in_the_kernel(fds: list[int]) -> None:
    """Ops already submitted and parked by the kernel (a pipe with no writer activity)
    when close() runs: each is withdrawn, its future cancelled, its CQE awaited."""
    r, w = os.pipe()
    fds += [r, w]
    loop = uring.new_event_loop()
    coros = [loop.uring_read(r, 8, -1) for _ in range(16)]
    futures = [_drive(c) for c in coros]
    loop.call_soon(loop.stop)  # one iteration: the flush, then stop; nothing completes
    loop.run_forever()
    assert loop.uring_stats().submitted == 16
    loop.close()
    assert all(f.cancelled() for f in futures)
    for coro in coros:
        with pytest.raises(asyncio.CancelledError):
            _finish(coro)
    assert loop.uring_stats().cancel_found == 16


def test_closed_loop_refuses_new_ops(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "x.dat", direct=False, size=BLOCK)
    fds.append(fd)
    loop = uring.new_event_loop()
    loop.close()
    coro = loop.uring_read(fd, 10, 0)
    with pytest.raises(uring.UringClosedError, match="uring_read: the io_uring event loop"):
        coro.send(None)
    assert issubclass(uring.UringClosedError, RuntimeError)


def test_failed_setup_leaks_nothing() -> None:
    before = (fd_count(), ring_fds())
    with pytest.raises(ValueError, match="entries"):
        uring.new_event_loop(entries=0)
    with pytest.raises(uring.UringSetupError, match="EINVAL") as info:
        uring.new_event_loop(setup_flags=1 << 31)  # a flag no kernel knows
    assert info.value.errno == 22
    assert (fd_count(), ring_fds()) == before


def test_run_close_and_run_again(tmp_path: Path) -> None:
    """Many loops one after another (as a test suite makes them): no growth."""
    path = tmp_path / "again.dat"
    path.write_bytes(b"again")

    async def main(loop: uring.UringEventLoop) -> bytes:
        fd = await loop.uring_openat(path)
        try:
            return await loop.uring_read(fd, 16, 0)
        finally:
            await loop.uring_close(fd)

    before = (fd_count(), ring_fds(), threads()[0])
    for _ in range(20):
        assert run(main) == b"again"
    assert (fd_count(), ring_fds()) == before[:2] and threads()[0] <= before[2]
