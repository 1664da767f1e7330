"""The ``uring_reads`` option: positional reads that would block are done by io_uring."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import mmap
import os
import random
import threading
from pathlib import Path

import pytest

import sysletloop
from sysletloop import _uringreads
from sysletloop._nowait import positional_read
from sysletloop.uring import UringUnsupportedError

from .helpers import open_fds, this_loop


def _why_no_io_uring() -> str | None:
    try:
        _uringreads.UringReads.open().close()
    except OSError as exc:  # UringError is an OSError
        return str(exc)
    return None


_NO_IO_URING = _why_no_io_uring()
pytestmark = pytest.mark.skipif(
    _NO_IO_URING is not None, reason=f"io_uring cannot be had here: {_NO_IO_URING}"
)

BLOCK = 4096
BLOCKS = 256


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = random.Random(7).randbytes(BLOCK * BLOCKS)
    path = tmp_path / "data"
    path.write_bytes(data)
    os.sync()  # no dirty pages: O_DIRECT reads then go to the device
    return path, data


def open_direct(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            pytest.skip(f"the file system holding {path} does not support O_DIRECT")
        raise


def run(coro_fn, **options):  # type: ignore[no-untyped-def]
    return sysletloop.run(coro_fn(), uring_reads=True, **options)


def test_direct_reads_go_to_io_uring_with_their_data_and_no_thread(
    data_file: tuple[Path, bytes],
) -> None:
    path, data = data_file

    async def main() -> None:
        loop = this_loop()
        home = threading.get_native_id()
        fd = open_direct(path)
        try:
            buffers = [mmap.mmap(-1, BLOCK) for _ in range(32)]
            order = list(range(BLOCKS))
            random.Random(3).shuffle(order)

            async def reader(buffer: mmap.mmap, blocks: list[int]) -> None:
                for block in blocks:
                    got = await asyncio.to_thread(os.preadv, fd, [buffer], block * BLOCK)
                    assert got == BLOCK
                    assert buffer[:] == data[block * BLOCK : (block + 1) * BLOCK], block

            await asyncio.gather(*(reader(b, order[i::32]) for i, b in enumerate(buffers)))
            # os.pread of an O_DIRECT file needs an aligned buffer it cannot have: the
            # kernel's EINVAL, as a plain call gives it.
            with pytest.raises(OSError) as info:
                await loop.run_in_executor(None, os.pread, fd, BLOCK, 0)
            assert info.value.errno == errno.EINVAL
        finally:
            os.close(fd)
        stats = loop.syslet_stats()
        assert stats.uring_reads == BLOCKS + 1
        assert stats.threads_started == 0 and stats.migrations == 0
        assert threading.get_native_id() == home

    run(main)


def test_a_cached_read_stays_inline_and_one_that_cannot_say_goes_to_the_ring(
    data_file: tuple[Path, bytes],
) -> None:
    path, data = data_file

    async def main() -> None:
        loop = this_loop()
        fd = os.open(path, os.O_RDONLY)
        try:
            assert await asyncio.to_thread(os.pread, fd, 100, 5000) == data[5000:5100]
            stats = loop.syslet_stats()
            assert (stats.nowait_reads, stats.uring_reads) == (1, 0)
            # A file system without RWF_NOWAIT (FUSE answers EOPNOTSUPP): to the ring.
            loop._syslet.nowait.supported = False
            assert await asyncio.to_thread(os.pread, fd, 100, 7000) == data[7000:7100]
            # At the end of the file: short, as os.pread is.
            tail = await asyncio.to_thread(os.pread, fd, 100, len(data) - 10)
            assert tail == data[-10:]
            assert await asyncio.to_thread(os.pread, fd, 100, len(data) + 10) == b""
            buffer = bytearray(64)
            got = await loop.run_in_executor(None, os.preadv, fd, [buffer], 64)
            assert (got, bytes(buffer)) == (64, data[64:128])
            assert loop.syslet_stats().uring_reads == 4
        finally:
            os.close(fd)

    run(main)


def test_errors_are_the_calls_own(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file

    async def main() -> None:
        loop = this_loop()
        loop._syslet.nowait.supported = False  # every read through the ring
        fd = os.open(path, os.O_WRONLY)
        try:
            with pytest.raises(OSError) as info:
                await asyncio.to_thread(os.pread, fd, 10, 0)
            assert info.value.errno == errno.EBADF  # not open for reading
        finally:
            os.close(fd)
        with pytest.raises(OSError) as info:
            await asyncio.to_thread(os.pread, fd, 10, 0)  # closed: the ring says EBADF
        assert info.value.errno == errno.EBADF
        assert loop.syslet_stats().uring_reads == 2

    run(main)


def test_a_cancelled_reader_leaves_nothing_behind(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    before = open_fds()

    async def main() -> None:
        loop = this_loop()
        fd = open_direct(path)
        try:
            buffers = [mmap.mmap(-1, BLOCK) for _ in range(16)]
            tasks = [
                asyncio.ensure_future(asyncio.to_thread(os.preadv, fd, [b], i * BLOCK))
                for i, b in enumerate(buffers)
            ]
            await asyncio.sleep(0)  # the reads are submitted
            for task in tasks[::2]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for i, result in enumerate(results):
                if i % 2:
                    assert result == BLOCK
                    assert buffers[i][:] == data[i * BLOCK : (i + 1) * BLOCK]
                else:
                    assert isinstance(result, asyncio.CancelledError)
            # The cancelled reads' completions still come, and are dropped.
            await loop.shutdown_default_executor()
            assert loop._syslet.uring_reads is not None
            assert loop._syslet.uring_reads.in_flight == 0
        finally:
            os.close(fd)

    run(main)
    assert open_fds() == before  # the ring and its eventfd closed with the loop


def test_close_waits_for_reads_in_the_kernel_and_gives_back_their_calls() -> None:
    # A pipe's read end: io_uring's read of it waits for data, for as long as it takes.
    reads = _uringreads.UringReads.open()
    r, w = os.pipe()
    try:
        assert reads.submit("first", r, 5, 0, None)
        assert reads.submit("second", r, 5, 0, None)
        os.write(w, b"hello")  # enough for one of them (the kernel picks which)
        assert threading.Event().wait(0.05) is False
        ((done, got),) = reads.reap()
        assert got == b"hello"
        assert reads.in_flight == 1
        left = len(_uringreads._UNRETURNED)
        assert reads.close(timeout=0.05) == [{"first": "second", "second": "first"}[done]]
        assert len(_uringreads._UNRETURNED) == left + 1  # its buffer, kept for the kernel
        assert reads.efd == -1
    finally:
        os.close(r)
        os.close(w)


def test_no_io_uring_means_threads_said_once(
    data_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path, data = data_file

    def refuse(cls: object, entries: int = 0) -> None:
        raise UringUnsupportedError(errno.ENOSYS, "io_uring_setup: ENOSYS: a seccomp filter")

    monkeypatch.setattr(_uringreads.UringReads, "open", classmethod(refuse))

    async def main() -> None:
        loop = this_loop()
        fd = open_direct(path)
        try:
            buffer = mmap.mmap(-1, BLOCK)
            for block in (3, 9):
                assert await asyncio.to_thread(os.preadv, fd, [buffer], block * BLOCK) == BLOCK
                assert buffer[:] == data[block * BLOCK : (block + 1) * BLOCK]
        finally:
            os.close(fd)
        assert loop.syslet_stats().uring_reads == 0

    with caplog.at_level(logging.WARNING):
        run(main)
    said = [r for r in caplog.records if "uring_reads cannot have io_uring" in r.getMessage()]
    assert len(said) == 1 and "seccomp" in said[0].getMessage()


def test_the_option_is_checked() -> None:
    with pytest.raises(TypeError, match="uring_reads must be a bool"):
        sysletloop.new_event_loop(uring_reads=1)


def test_preadv_is_recognised_only_for_one_writable_buffer() -> None:
    buffer = bytearray(8)
    ctx = __import__("contextvars").copy_context()
    assert positional_read(os.preadv, (3, [buffer], 0)) is None  # not without the option
    assert positional_read(os.preadv, (3, [buffer], 0), vectored=True) == (3, 8, 0, buffer)
    wrapped = functools.partial(ctx.run, os.preadv, 3, [buffer], 16)
    assert positional_read(wrapped, (), vectored=True) == (3, 8, 16, buffer)
    assert positional_read(os.preadv, (3, [buffer, buffer], 0), vectored=True) is None
    assert positional_read(os.preadv, (3, [b"read-only"], 0), vectored=True) is None
    assert positional_read(os.preadv, (3, [bytearray()], 0), vectored=True) is None
    assert positional_read(os.preadv, (3, [buffer], -1), vectored=True) is None
    assert positional_read(os.pread, (3, 8, 0)) == (3, 8, 0, None)


def test_a_read_starts_in_the_step_that_submits_it(data_file: tuple[Path, bytes]) -> None:
    # As a pool's would: a task that submits a read and then computes overlaps the two.
    path, data = data_file

    async def main() -> None:
        loop = this_loop()
        fd = open_direct(path)
        cached = os.open(path, os.O_RDONLY)
        try:
            buffer = mmap.mmap(-1, BLOCK)
            pending = loop.run_in_executor(None, os.preadv, fd, [buffer], 2 * BLOCK)
            assert loop.syslet_stats().uring_reads == 1  # in the kernel already
            hit = loop.run_in_executor(None, os.pread, cached, 10, 0)
            assert await hit == data[:10]  # from the cache (resolved next iteration)
            assert loop.syslet_stats().nowait_reads == 1
            assert await pending == BLOCK
            assert buffer[:] == data[2 * BLOCK : 3 * BLOCK]
        finally:
            os.close(fd)
            os.close(cached)

    run(main)


def test_reads_past_the_idle_ones_wait_for_a_flush_and_close_withdraws_them() -> None:
    reads = _uringreads.UringReads.open()
    r, w = os.pipe()  # reads of an empty pipe stay in the kernel
    try:
        assert reads.submit("a", r, 1, 0, None) is True  # the kernel is idle: at once
        assert reads.submit("b", r, 1, 0, None) is True
        assert reads.submit("c", r, 1, 0, None) is None  # two in the kernel: batched
        assert reads.flush() == []
        assert reads.submit("d", r, 1, 0, None) is None
        left = len(_uringreads._UNRETURNED)
        # d never reached the kernel: withdrawn; a, b, c are given back after the wait,
        # their buffers kept for the kernel.
        assert sorted(reads.close(timeout=0.05)) == ["a", "b", "c", "d"]  # type: ignore[type-var]
        assert len(_uringreads._UNRETURNED) == left + 3
    finally:
        os.close(r)
        os.close(w)


def test_reads_the_kernel_will_not_take_run_as_plain_calls(
    data_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = data_file
    # Two reads reach the kernel; then it is short of memory for ever (EAGAIN): the
    # next read is refused at once, and those batched behind the two are withdrawn by
    # the flush, to run as plain calls.
    real, entered = _uringreads.Ring.enter, []

    def enter(self: _uringreads.Ring, *args: int) -> int:
        entered.append(args[0])
        return real(self, *args) if len(entered) <= 2 else -errno.EAGAIN

    monkeypatch.setattr(_uringreads.Ring, "enter", enter)

    async def main() -> None:
        loop = this_loop()
        fd = open_direct(path)
        try:
            buffers = [mmap.mmap(-1, BLOCK) for _ in range(8)]
            got = await asyncio.gather(
                *(asyncio.to_thread(os.preadv, fd, [b], i * BLOCK) for i, b in enumerate(buffers))
            )
            assert got == [BLOCK] * 8
            for i, b in enumerate(buffers):
                assert b[:] == data[i * BLOCK : (i + 1) * BLOCK]
        finally:
            os.close(fd)
        assert loop.syslet_stats().uring_reads == 2
        assert entered[:2] == [1, 1] and max(entered[2:]) > 1  # a batch was refused

    run(main)


def test_a_cached_read_still_lets_other_tasks_run(data_file: tuple[Path, bytes]) -> None:
    # Tried at submission, a cache hit is resolved at the next iteration, not at once: an
    # awaited future that is done already never yields, and a task reading a cached file
    # would keep every other task from running.
    path, data = data_file

    async def main() -> None:
        loop = this_loop()
        fd = os.open(path, os.O_RDONLY)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        other = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        try:
            start = ticks
            for block in range(50):
                got = await asyncio.to_thread(os.pread, fd, BLOCK, block * BLOCK)
                assert got == data[block * BLOCK : (block + 1) * BLOCK]
            assert ticks - start >= 49  # the ticker ran beside every read
            assert loop.syslet_stats().nowait_reads == 50
        finally:
            other.cancel()
            os.close(fd)

    run(main)
