"""A loop's life cycle (run, stop, shut down, close), driven by hand, on both loops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from unittest import mock

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


def test_a_wrapped_run_once_keeps_the_loop_running(loop_factory) -> None:  # type: ignore[no-untyped-def]
    # Instrumentation (and CPython's test_timeout_rounding) wraps _run_once and drops
    # its return value.
    loop = loop_factory()
    calls = 0
    original = loop._run_once

    def counting_run_once() -> None:
        nonlocal calls
        calls += 1
        original()

    loop._run_once = counting_run_once
    try:
        done: list[str] = []
        worker = threading.Thread(
            target=lambda: done.append(loop.run_until_complete(asyncio.sleep(0.01, "done"))),
            daemon=True,  # a regression hangs this thread forever, not the test run
        )
        worker.start()
        worker.join(10)
        assert done == ["done"]
        assert calls >= 2
    finally:
        if not loop.is_running():
            loop.close()


def test_slow_callback_warning_goes_through_asyncios_logger(loop_factory) -> None:  # type: ignore[no-untyped-def]
    loop = loop_factory()
    try:
        loop.set_debug(True)
        loop.slow_callback_duration = 0.0
        with mock.patch("asyncio.base_events.logger") as logger:
            loop.call_soon(time.sleep, 0.001)
            loop.call_soon(loop.stop)
            loop.run_forever()
        messages = [c.args[0] for c in logger.warning.call_args_list]
        assert "Executing %s took %.3f seconds" in messages
    finally:
        loop.close()
