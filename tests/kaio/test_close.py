"""``loop.close()`` with I/O in flight: every op resolves, nothing leaks, nothing crashes."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from sysletloop import kaio

from ._support import aio_mappings, fd_count, open_file, run

BLOCK = 4096


def test_lifecycle_leaks_no_fd_and_no_io_context(backend: str) -> None:
    fds_before, rings_before = fd_count(), aio_mappings()
    loop = kaio.new_event_loop(backend=backend)
    assert aio_mappings() == rings_before + 1  # our io context's completion ring
    assert loop.kaio_backend == backend
    loop.close()
    loop.close()  # idempotent
    assert (fd_count(), aio_mappings()) == (fds_before, rings_before)


def test_runner_close_with_reads_and_poll_in_flight(
    backend: str, tmp_path: Path, fds: list[int]
) -> None:
    """main() returns with 64 reads and a never-ready poll outstanding: the runner cancels
    their tasks, close() withdraws the poll with io_cancel and waits for the reads."""
    fd = open_file(tmp_path / "c.dat", direct=False, size=64 * BLOCK)
    r, w = os.pipe()
    fds += [fd, r, w]
    fds_before, rings_before = fd_count(), aio_mappings()
    buffers = [bytearray(BLOCK) for _ in range(64)]
    captured: list[kaio.KaioEventLoop] = []

    async def main(loop: kaio.KaioEventLoop) -> None:
        captured.append(loop)
        # Left running on purpose: the runner cancels them when main() returns.
        tasks = [
            asyncio.ensure_future(loop.aio_preadinto(fd, b, i * BLOCK))
            for i, b in enumerate(buffers)
        ]
        tasks.append(asyncio.ensure_future(loop.aio_poll(r, select.POLLIN)))
        while loop.kaio_stats().submitted < 65:
            await asyncio.sleep(0)

    run(main, backend=backend, ring_size=128)
    stats = captured[0].kaio_stats()
    assert stats.submitted == stats.completed == 65
    assert (stats.in_flight, stats.queued) == (0, 0)
    assert stats.cancel_accepted >= 1  # the poll, at least
    assert (fd_count(), aio_mappings()) == (fds_before, rings_before)
    for buf in buffers:  # nothing pins them any more
        buf.append(0)


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


def test_direct_close_resolves_every_op(backend: str, tmp_path: Path, fds: list[int]) -> None:
    """close() without a runner (nobody cancels the callers): queued ops are cancelled,
    the poll is withdrawn and cancelled, the read delivers its real result."""
    fd = open_file(tmp_path / "d.dat", direct=False, size=BLOCK)
    os.pwrite(fd, b"k" * BLOCK, 0)
    r, w = os.pipe()
    fds += [fd, r, w]
    fds_before, rings_before = fd_count(), aio_mappings()
    loop = kaio.new_event_loop(backend=backend, ring_size=2)
    poll = loop.aio_poll(r, select.POLLIN)
    read = loop.aio_pread(fd, BLOCK, 0)
    queued = loop.aio_pread(fd, BLOCK, 0)  # the ring has two slots: this one waits
    poll_fut, read_fut, queued_fut = _drive(poll), _drive(read), _drive(queued)
    loop.call_soon(loop.stop)  # exactly one iteration: the flush, then stop; no harvest
    loop.run_forever()
    assert loop.kaio_stats().submitted == 2
    loop.close()
    assert poll_fut.cancelled() and queued_fut.cancelled()
    assert read_fut.done() and not read_fut.cancelled()
    assert _finish(read) == b"k" * BLOCK
    for coro in (poll, queued):
        with pytest.raises(asyncio.CancelledError):
            _finish(coro)
    stats = loop.kaio_stats()
    assert (stats.submitted, stats.completed, stats.cancelled) == (2, 2, 2)
    assert (fd_count(), aio_mappings()) == (fds_before, rings_before)


def test_closed_loop_refuses_new_ops(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "x.dat", direct=False, size=BLOCK)
    fds.append(fd)
    loop = kaio.new_event_loop(backend=backend)
    loop.close()
    coro = loop.aio_pread(fd, 10, 0)
    with pytest.raises(kaio.KaioClosedError, match="aio_pread: the KAIO event loop is closed"):
        coro.send(None)
    assert issubclass(kaio.KaioClosedError, RuntimeError)


def test_failed_setup_leaks_nothing(backend: str) -> None:
    fds_before, rings_before = fd_count(), aio_mappings()
    with pytest.raises(ValueError, match="ring_size"):
        kaio.new_event_loop(backend=backend, ring_size=0)
    with pytest.raises(kaio.KaioSetupError):
        kaio.new_event_loop(backend=backend, ring_size=8 * 1024 * 1024 + 1)  # EINVAL: too big
    assert (fd_count(), aio_mappings()) == (fds_before, rings_before)
