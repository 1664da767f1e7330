"""asyncio's services keep working when the loop has moved to another thread: and, with
home affinity (the default), when it has moved away and come back home.

Every test runs twice: ``away`` (``home_affinity=False``: the loop stays on the thread it
moved to) and ``home`` (it goes back to the thread that called ``run_forever``)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import AsyncIterator

import pytest

import sysletloop

from .helpers import this_loop

pytestmark = pytest.mark.parametrize("affinity", [False, True], ids=["away", "home"])


async def _move_off_this_thread() -> int:
    """Block the current owner so the loop moves (and, with home affinity, comes back
    when the call returns); returns the thread it left."""
    loop = this_loop()
    before = threading.get_ident()
    moved = loop.syslet_stats().migrations
    await sysletloop.call(time.sleep, 0.01)
    assert loop.syslet_stats().migrations == moved + 1
    if loop.syslet_options.home_affinity:
        assert threading.get_ident() == before  # home again
    else:
        assert threading.get_ident() != before
    return before


def test_subprocesses_after_a_migration(affinity: bool) -> None:
    async def main() -> bytes:
        await _move_off_this_thread()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('child')", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return out

    out = sysletloop.run(main(), predict_blocking=False, home_affinity=affinity)
    assert out.strip() == b"child"


def test_call_soon_threadsafe_and_run_coroutine_threadsafe_after_a_migration(
    affinity: bool,
) -> None:
    async def main() -> tuple[str, int]:
        loop = this_loop()
        await _move_off_this_thread()
        fut: asyncio.Future[str] = loop.create_future()
        threading.Thread(target=loop.call_soon_threadsafe, args=(fut.set_result, "ok")).start()

        async def answer() -> int:
            return 42

        result: list[int] = []
        t = threading.Thread(
            target=lambda: result.append(
                asyncio.run_coroutine_threadsafe(answer(), loop).result(30)
            )
        )
        t.start()
        got = await asyncio.wait_for(fut, 10)
        while t.is_alive():
            await asyncio.sleep(0.005)
        return got, result[0]

    assert sysletloop.run(main(), home_affinity=affinity) == ("ok", 42)


def test_async_generators_started_before_and_finalised_after_a_migration(affinity: bool) -> None:
    closed: list[str] = []

    async def agen(name: str) -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(name)

    async def main() -> None:
        early = agen("early")
        await early.__anext__()
        await _move_off_this_thread()
        late = agen("late")
        assert await late.__anext__() == 0
        assert await early.__anext__() == 1
        dropped = agen("dropped")
        await dropped.__anext__()
        del dropped
        gc.collect()  # finaliser hook: schedules aclose() on the loop, thread-safely
        await asyncio.sleep(0.01)
        assert "dropped" in closed
        # early and late are left suspended: asyncio.run's shutdown_asyncgens closes them

    sysletloop.run(main(), predict_blocking=False, home_affinity=affinity)
    assert sorted(closed) == ["dropped", "early", "late"]


def test_timers_and_sockets_after_many_migrations(affinity: bool) -> None:
    async def main() -> list[bytes]:
        for _ in range(3):
            await _move_off_this_thread()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(await r.readline())
            await w.drain()
            w.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        replies = []
        async with server:
            for i in range(3):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"%d\n" % i)
                replies.append(await r.readline())
                w.close()
                await w.wait_closed()
                await _move_off_this_thread()
        return replies

    replies = sysletloop.run(main(), predict_blocking=False, home_affinity=affinity)
    assert replies == [b"0\n", b"1\n", b"2\n"]


def test_debug_mode_across_migrations(affinity: bool) -> None:
    async def main() -> bool:
        loop = this_loop()
        assert loop.get_debug()
        await _move_off_this_thread()
        loop.call_soon(lambda: None)  # _check_thread accepts the new owner
        await asyncio.sleep(0)
        return sys.get_coroutine_origin_tracking_depth() > 0

    assert sysletloop.run(main(), debug=True, predict_blocking=False, home_affinity=affinity)
    assert sys.get_coroutine_origin_tracking_depth() == 0
