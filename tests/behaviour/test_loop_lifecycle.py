"""A loop's life cycle (run, stop, shut down, close), driven by hand, on both loops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest


def test_async_generator_is_finalized_by_asyncio_run(loop_factory) -> None:  # type: ignore[no-untyped-def]
    closed: list[str] = []

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append("closed")

    async def main() -> int:
        gen = agen()
        first = await gen.__anext__()
        await asyncio.to_thread(lambda: None)
        return first  # gen left suspended: shutdown_asyncgens must close it

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(main()) == 1
    assert closed == ["closed"]


def test_runner_returns_in_the_calling_thread(loop_factory) -> None:  # type: ignore[no-untyped-def]
    caller = threading.get_ident()

    async def main() -> int:
        await asyncio.to_thread(lambda: None)
        return threading.get_ident()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
        runner.run(main())
    assert threading.get_ident() == caller


def test_shutdown_default_executor_waits_for_calls_in_flight(loop_factory) -> None:  # type: ignore[no-untyped-def]
    finished: list[bool] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        threading.Event().wait(0.2)
        finished.append(True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, slow)  # fire and forget
        while not started.is_set():
            await asyncio.sleep(0.005)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    assert finished == [True]


def test_run_until_complete_with_plain_loop(loop_factory) -> None:  # type: ignore[no-untyped-def]
    loop = loop_factory()
    try:
        assert loop.run_until_complete(asyncio.to_thread(sum, [1, 2, 3])) == 6
        assert not loop.is_running()
        assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_in_executor(None, len, "x")


def test_cannot_run_a_loop_inside_a_running_loop(loop_factory) -> None:  # type: ignore[no-untyped-def]
    outer = loop_factory()
    inner = loop_factory()

    async def main() -> None:
        with pytest.raises(RuntimeError, match="another loop is running"):
            inner.run_until_complete(inner.create_future())

    try:
        outer.run_until_complete(main())
    finally:
        outer.close()
        inner.close()
