"""aiofiles, unchanged, on sysletloop.

aiofiles sends every file operation to ``loop.run_in_executor(None, ...)``, which a
syslet loop takes over: an operation that does not block (a page-cache read, a small
write) completes inline, with no thread hop. These tests run on both loops (the results
must not differ) and, on sysletloop, check that every operation took the syslet path.
Whether that is faster is the benchmark's business, not a test's.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import aiofiles
import aiofiles.os
import aiofiles.tempfile
import pytest

import sysletloop

from .support import syslet_calls_done


def syslet_calls() -> int | None:
    loop = asyncio.get_running_loop()
    if isinstance(loop, sysletloop.SysletEventLoop):
        return syslet_calls_done(loop.syslet_stats())
    return None


def pool_threads() -> int:
    """Threads of asyncio's default executor (named ``asyncio_N`` on 3.11 to 3.13)."""
    return sum(t.name.startswith("asyncio_") for t in threading.enumerate())


@pytest.mark.asyncio
async def test_write_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    before = syslet_calls()
    async with aiofiles.open(path, "w") as f:  # open, write x2, close: 4 operations
        await f.write("first line\n")
        await f.write("second line\n")
    async with aiofiles.open(path) as f:  # open, read, close: 3
        text = await f.read()
    assert text == "first line\nsecond line\n"
    if before is not None:
        after = syslet_calls()
        assert after is not None and after - before == 7


@pytest.mark.asyncio
async def test_binary_seek_and_line_iteration(tmp_path: Path) -> None:
    path = tmp_path / "lines.bin"
    async with aiofiles.open(path, "wb") as f:
        await f.write(b"".join(b"line %d\n" % i for i in range(100)))
    async with aiofiles.open(path, "rb") as f:
        await f.seek(7 * 10)
        assert await f.readline() == b"line 10\n"
        assert await f.tell() == 7 * 10 + 8
    lines = []
    async with aiofiles.open(path, "rb") as f:
        async for line in f:
            lines.append(line)
    assert len(lines) == 100 and lines[-1] == b"line 99\n"


@pytest.mark.asyncio
async def test_aiofiles_os_and_tempfile(tmp_path: Path) -> None:
    before = syslet_calls()
    await aiofiles.os.makedirs(tmp_path / "a" / "b")
    async with aiofiles.tempfile.NamedTemporaryFile("w", dir=tmp_path, delete=False) as f:
        await f.write("temporary")
        name = str(f.name)
    target = tmp_path / "a" / "b" / "kept.txt"
    await aiofiles.os.rename(name, target)
    stat = await aiofiles.os.stat(target)
    assert stat.st_size == len("temporary")
    assert await aiofiles.os.listdir(tmp_path / "a" / "b") == ["kept.txt"]
    assert await aiofiles.os.path.exists(target)
    await aiofiles.os.remove(target)
    assert not await aiofiles.os.path.exists(target)
    if before is not None:
        after = syslet_calls()
        assert after is not None and after > before


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_on_sysletloop_no_pool_thread_is_started(tmp_path: Path) -> None:
    # Every aiofiles call took the syslet path: asyncio's default executor was never
    # created, so none of its threads exists (whatever other tests left is counted
    # before).
    threads_before = pool_threads()
    path = tmp_path / "many.txt"
    async with aiofiles.open(path, "w") as f:
        for i in range(200):
            await f.write(f"{i}\n")
    async with aiofiles.open(path) as f:
        assert len(await f.readlines()) == 200
    assert pool_threads() == threads_before


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_many_concurrent_file_tasks(tmp_path: Path) -> None:
    async def one(i: int) -> str:
        path = tmp_path / f"f{i}.txt"
        async with aiofiles.open(path, "w") as f:
            await f.write(str(i) * 100)
        async with aiofiles.open(path) as f:
            return await f.read()

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert results == [str(i) * 100 for i in range(50)]
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    stats = loop.syslet_stats()
    assert stats.blocked_in_flight == 0
    assert syslet_calls_done(stats) >= 50 * 6  # open, write, close, open, read, close
