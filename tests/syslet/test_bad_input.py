"""Bad input gets a clear, typed error naming what was wrong."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys

import pytest

import sysletloop


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"block_threshold": 0}, ValueError, "block_threshold must be a positive"),
        ({"block_threshold": -1.0}, ValueError, "block_threshold must be a positive"),
        ({"block_threshold": float("nan")}, ValueError, "block_threshold"),
        ({"block_threshold": 3600}, ValueError, "block_threshold must be at most"),
        ({"block_threshold": "1ms"}, TypeError, "block_threshold must be a number"),
        ({"block_threshold": True}, TypeError, "block_threshold must be a number"),
        ({"max_blocked": 0}, ValueError, "max_blocked must be at least 1"),
        ({"max_blocked": 2.5}, TypeError, "max_blocked must be an int"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be a positive"),
        ({"route_executor": 1}, TypeError, "route_executor must be a bool"),
        ({"predict_blocking": None}, TypeError, "predict_blocking must be a bool"),
        ({"home_affinity": "yes"}, TypeError, "home_affinity must be a bool"),
        ({"treshold": 0.1}, TypeError, "unknown sysletloop option.*treshold"),
    ],
)
def test_invalid_options_are_rejected_everywhere(
    options: dict[str, object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        sysletloop.new_event_loop(**options)
    with pytest.raises(error, match=pattern):
        sysletloop.EventLoopPolicy(**options)

    async def main() -> None:  # never run: the options fail first
        raise AssertionError

    coro = main()
    with pytest.raises(error, match=pattern):
        sysletloop.run(coro, **options)
    coro.close()


def test_valid_options_are_kept() -> None:
    loop = sysletloop.new_event_loop(
        block_threshold=0.005, max_blocked=3, idle_timeout=1, route_executor=False
    )
    try:
        assert loop.syslet_options == sysletloop.LoopOptions(0.005, 3, 1, False, True)
    finally:
        loop.close()


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_call_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError, match=re.escape("call() expects a callable, got 'int'")):
        await sysletloop.call(5)  # type: ignore[arg-type]


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_call_rejects_a_coroutine_function() -> None:
    async def not_blocking() -> None:
        pass

    with pytest.raises(TypeError, match="runs blocking callables"):
        await sysletloop.call(not_blocking)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="markcoroutinefunction is new in 3.12")
@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_call_and_syslet_call_reject_a_function_marked_as_a_coroutine_function() -> None:
    # A plain def (the fast path of the check) that inspect says is a coroutine function.
    def marked() -> None:
        pass

    inspect.markcoroutinefunction(marked)
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    with pytest.raises(TypeError, match="runs blocking callables"):
        await sysletloop.call(marked)
    with pytest.raises(TypeError, match="runs blocking callables"):
        loop.syslet_call(marked)


def test_run_rejects_being_nested() -> None:
    async def outer() -> None:
        inner = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="cannot be called from a running"):
                sysletloop.run(inner)
        finally:
            inner.close()

    sysletloop.run(outer())


def test_run_rejects_a_non_coroutine_as_asyncio_run_does() -> None:
    # 3.11-3.13 raise ValueError, 3.14+ TypeError: whatever this Python's asyncio does.
    with pytest.raises(Exception) as stock:
        asyncio.run(42)  # type: ignore[arg-type]
    with pytest.raises(type(stock.value), match=re.escape(str(stock.value))):
        sysletloop.run(42)  # type: ignore[arg-type]


def test_run_with_a_bad_option_closes_the_coroutine() -> None:
    async def main() -> None:
        raise AssertionError("must never run")

    coro = main()
    with pytest.raises(ValueError, match="block_threshold"):
        sysletloop.run(coro, block_threshold=-1)
    # Closed, so no "coroutine 'main' was never awaited" warning (an error here).
    assert coro.cr_frame is None
