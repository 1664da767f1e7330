"""Backend choice (argument, environment, fallback), batching, FIFO order and statistics."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
from pathlib import Path

import pytest

from sysletloop import kaio
from sysletloop.kaio import _abi, _libaio
from sysletloop.kaio._backend import BACKEND_ENV, load_backend

from ._support import NO_LIBAIO, libaio_installed, open_file, run

BLOCK = 4096


def test_struct_layouts_match_the_kernel_abi() -> None:
    assert _abi.layout_errors() == []
    assert _abi.Iocb.aio_buf.offset == 24 and _abi.Iocb.aio_resfd.offset == 60
    assert _abi.IoEvent.res.offset == 16


def test_environment_forces_the_backend(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv(BACKEND_ENV, backend)
    loop = kaio.new_event_loop()
    try:
        assert loop.kaio_backend == backend == loop.kaio_stats().backend
    finally:
        loop.close()


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "libaio")
    loop = kaio.new_event_loop(backend="syscall")
    try:
        assert loop.kaio_backend == "syscall"
    finally:
        loop.close()


def test_unknown_backend_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "io_uring")
    with pytest.raises(ValueError, match=f"'io_uring'.*{BACKEND_ENV}"):
        kaio.new_event_loop()


def test_auto_prefers_libaio_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    expected = "libaio" if libaio_installed() else "syscall"
    assert load_backend().name == expected


def test_without_libaio_auto_falls_back_and_forcing_explains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fds: list[int]
) -> None:
    """Simulates a machine without libaio1 (the library name no longer resolves)."""
    monkeypatch.setattr(_libaio, "LIBAIO_SONAMES", ("libaio-not-installed.so.1",))
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    fd = open_file(tmp_path / "n.dat", direct=False, size=0)
    fds.append(fd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        assert loop.kaio_backend == "syscall"
        assert await loop.aio_pwrite(fd, b"fallback", 0) == 8
        assert await loop.aio_pread(fd, 8, 0) == b"fallback"

    run(main)
    with pytest.raises(kaio.KaioBackendUnavailableError, match="apt-get install libaio1"):
        kaio.new_event_loop(backend="libaio")


def test_syscall_backend_refuses_unknown_architectures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "pdp11")
    with pytest.raises(kaio.KaioBackendUnavailableError, match="'pdp11'"):
        kaio.new_event_loop(backend="syscall")


@pytest.mark.skipif(not libaio_installed(), reason=NO_LIBAIO)
def test_libaio_loads_when_installed() -> None:
    assert load_backend("libaio").name == "libaio"


def test_one_io_submit_per_iteration(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "b.dat", direct=False, size=32 * BLOCK)
    fds.append(fd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        await asyncio.gather(*(loop.aio_pread(fd, BLOCK, i * BLOCK) for i in range(32)))
        stats = loop.kaio_stats()
        assert (stats.submit_calls, stats.submitted) == (1, 32)

    run(main, backend=backend, ring_size=64)


def test_harvest_batch_bounds_what_one_iteration_resolves(
    backend: str, tmp_path: Path, fds: list[int]
) -> None:
    """32 buffered reads finish inside one io_submit; with harvest_batch=5 the loop reaps
    them 5 at a time (each task sees the completed count of its own harvest) and still
    resolves all of them: the eventfd is re-armed while events wait in the ring."""
    fd = open_file(tmp_path / "h.dat", direct=False, size=32 * BLOCK)
    fds.append(fd)
    for i in range(32):
        os.pwrite(fd, bytes([i + 1]) * BLOCK, i * BLOCK)

    async def main(loop: kaio.KaioEventLoop) -> list[int]:
        async def read(i: int) -> int:
            data = await loop.aio_pread(fd, BLOCK, i * BLOCK)
            assert data == bytes([i + 1]) * BLOCK
            return loop.kaio_stats().completed

        seen = await asyncio.wait_for(asyncio.gather(*(read(i) for i in range(32))), 10)
        assert loop.kaio_stats().submit_calls == 1
        return seen

    seen = run(main, backend=backend, harvest_batch=5)
    assert seen == [min(32, 5 * (i // 5 + 1)) for i in range(32)]
    assert run(main, backend=backend) == [min(32, 8 * (i // 8 + 1)) for i in range(32)]
    assert run(main, backend=backend, harvest_batch=32) == [32] * 32


@pytest.mark.parametrize("option", ["ring_size", "harvest_batch"])
@pytest.mark.parametrize("value", [0, -1, True, 2.0, "8"])
def test_bad_loop_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{option} must be a positive int, got {value!r}"):
        kaio.new_event_loop(**{option: value})  # type: ignore[arg-type]


def test_full_ring_waits_in_fifo_order(backend: str, tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "f.dat", direct=False, size=0)
    fds.append(fd)
    finished: list[int] = []

    async def write(loop: kaio.KaioEventLoop, i: int) -> None:
        await loop.aio_pwrite(fd, b"%04d" % i, 0)
        finished.append(i)

    async def main(loop: kaio.KaioEventLoop) -> None:
        tasks = [asyncio.ensure_future(write(loop, i)) for i in range(40)]
        while loop.kaio_stats().submitted == 0:
            await asyncio.sleep(0)
        assert loop.kaio_stats().queued == 39  # waiting, not failed
        await asyncio.gather(*tasks)

    run(main, backend=backend, ring_size=1)
    assert finished == list(range(40))
    assert os.pread(fd, 4, 0) == b"0039"  # the last requested write landed last


def test_stats_snapshot_is_frozen_and_consistent(
    backend: str, tmp_path: Path, fds: list[int]
) -> None:
    fd = open_file(tmp_path / "s.dat", direct=False, size=0)
    fds.append(fd)

    async def main(loop: kaio.KaioEventLoop) -> None:
        empty = loop.kaio_stats()
        assert (empty.submitted, empty.submit_calls, empty.submit_mean_seconds) == (0, 0, 0.0)
        for i in range(10):
            await loop.aio_pwrite(fd, b"x" * 100, i * 100)
        stats = loop.kaio_stats()
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.submitted = 0  # type: ignore[misc]
        assert stats.submitted == stats.completed == stats.submit_calls == 10
        assert stats.in_flight == stats.queued == stats.cancelled == 0
        assert stats.ring_size == loop.kaio_ring_size == kaio.DEFAULT_RING_SIZE
        assert 0 < stats.submit_max_seconds <= stats.submit_seconds
        assert stats.submit_mean_seconds == pytest.approx(stats.submit_seconds / 10)

    run(main, backend=backend)


def test_run_in_executor_keeps_the_stock_pool(backend: str) -> None:
    async def main(loop: kaio.KaioEventLoop) -> str:
        return await loop.run_in_executor(None, os.getcwd)

    assert run(main, backend=backend) == os.getcwd()
