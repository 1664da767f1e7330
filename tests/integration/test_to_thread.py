"""``sysletloop.to_thread.run_sync``: anyio's ``to_thread.run_sync``, syslet-style.

Where the two should agree (cancellation, limiter, context, errors) the same body runs
with anyio's function and ours, on a syslet loop. Then what only ours does: the syslet
path itself, and the fallback to anyio's implementation on other loops.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import sysletloop
import sysletloop.testing
import sysletloop.to_thread

from .support import Gate, Overlap, syslet_calls_done

RunSync = Callable[..., Awaitable[Any]]

SYSLET = pytest.param(sysletloop.testing.anyio_backend(), id="syslet")
IMPLEMENTATIONS = [
    pytest.param(anyio.to_thread.run_sync, id="anyio"),
    pytest.param(sysletloop.to_thread.run_sync, id="sysletloop"),
]

request_id = contextvars.ContextVar[str]("request_id")


@pytest.fixture(params=[SYSLET])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


@pytest.fixture(params=IMPLEMENTATIONS)
def run_sync(request: pytest.FixtureRequest) -> RunSync:
    fn: RunSync = request.param
    return fn


def this_loop() -> sysletloop.SysletEventLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    return loop


async def wait_for(event: threading.Event) -> None:
    while not event.is_set():
        await anyio.sleep(0.001)


# ------------------------------------------------- the same as anyio's run_sync


@pytest.mark.anyio
async def test_returns_the_result_and_raises_the_exception(run_sync: RunSync) -> None:
    assert await run_sync(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        await run_sync(divmod, 1, 0)


@pytest.mark.anyio
async def test_runs_in_a_copy_of_the_callers_context(run_sync: RunSync) -> None:
    request_id.set("r-17")

    def fn() -> str:
        seen = request_id.get()
        request_id.set("changed inside")
        return seen

    assert await run_sync(fn) == "r-17"
    assert request_id.get() == "r-17"


@pytest.mark.anyio
async def test_a_shielded_call_is_waited_for_and_the_cancellation_comes_after(
    run_sync: RunSync,
) -> None:
    gate = Gate()
    outcome: list[object] = []
    scope = anyio.CancelScope()

    async def canceller() -> None:
        await wait_for(gate.started)
        scope.cancel()
        await anyio.sleep(0.02)
        assert not outcome, "a shielded call must not be abandoned"
        gate.release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(canceller)
        with scope:
            outcome.append(await run_sync(gate, "result"))
            await anyio.lowlevel.checkpoint()
            outcome.append("not reached")
    assert outcome == ["result"]
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_an_abandoned_call_lets_the_task_go_at_once(run_sync: RunSync) -> None:
    gate = Gate()
    scope = anyio.CancelScope()

    async def canceller() -> None:
        await wait_for(gate.started)
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(canceller)
        with scope:
            await run_sync(gate, abandon_on_cancel=True)
    assert scope.cancelled_caught
    assert not gate.release.is_set()  # the call is still running, on its own
    gate.release.set()


@pytest.mark.anyio
@pytest.mark.parametrize("abandon_on_cancel", [False, True])
async def test_an_already_cancelled_scope_never_starts_the_call(
    run_sync: RunSync, abandon_on_cancel: bool
) -> None:
    ran: list[bool] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        await run_sync(ran.append, True, abandon_on_cancel=abandon_on_cancel)
    assert scope.cancelled_caught
    assert ran == []


@pytest.mark.anyio
async def test_a_limiter_token_is_held_for_the_call(run_sync: RunSync) -> None:
    limiter = anyio.CapacityLimiter(1)
    overlap = Overlap(0.01)  # blocks: on sysletloop the loop moves and others may start

    def fn() -> float:
        overlap()
        return limiter.borrowed_tokens

    async def one() -> None:
        await run_sync(fn, limiter=limiter)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one)
    assert overlap.peak == 1
    assert await run_sync(fn, limiter=limiter) == 1
    assert limiter.borrowed_tokens == 0


@pytest.mark.anyio
async def test_cancellable_is_a_deprecated_alias(run_sync: RunSync) -> None:
    with pytest.warns(DeprecationWarning, match="abandon_on_cancel"):
        assert await run_sync(abs, -3, cancellable=True) == 3


# --------------------------------------------------------- the syslet path


@pytest.mark.anyio
async def test_a_call_that_does_not_block_runs_inline_on_the_loop_thread() -> None:
    loop = this_loop()
    before = syslet_calls_done(loop.syslet_stats())
    ran_on = await sysletloop.to_thread.run_sync(threading.get_ident)
    assert ran_on == threading.get_ident()
    assert syslet_calls_done(loop.syslet_stats()) == before + 1


@pytest.mark.anyio
async def test_a_call_that_blocks_moves_the_loop_and_siblings_go_on() -> None:
    loop = this_loop()
    gate = Gate()
    loop_thread = threading.get_ident()
    seen_on: list[int] = []

    async def sibling() -> None:
        await wait_for(gate.started)
        seen_on.append(threading.get_ident())
        gate.release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sibling)
        assert await sysletloop.to_thread.run_sync(gate, "done") == "done"
    assert gate.thread == loop_thread  # it started inline
    assert seen_on and seen_on[0] != loop_thread  # the loop went on elsewhere
    assert loop.syslet_stats().migrations >= 1


@pytest.mark.anyio
async def test_no_default_limiter_is_used_on_the_syslet_path() -> None:
    default = anyio.to_thread.current_default_thread_limiter()
    seen = await sysletloop.to_thread.run_sync(lambda: default.borrowed_tokens)
    assert seen == 0
    assert await anyio.to_thread.run_sync(lambda: default.borrowed_tokens) == 1


@pytest.mark.anyio
async def test_from_thread_needs_a_token_inside_the_call() -> None:
    def callback() -> str:
        return "from the loop"

    with pytest.raises(anyio.NoEventLoopError):
        await sysletloop.to_thread.run_sync(anyio.from_thread.run_sync, callback)

    # With a token it works: the call waits for the loop, the watchdog sees it blocked
    # and moves the loop, which then runs the callback.
    token = anyio.lowlevel.current_token()
    loop = this_loop()
    migrations = loop.syslet_stats().migrations

    def calls_back() -> str:
        return anyio.from_thread.run_sync(callback, token=token)

    assert await sysletloop.to_thread.run_sync(calls_back) == "from the loop"
    assert loop.syslet_stats().migrations == migrations + 1


@pytest.mark.anyio
async def test_coroutine_functions_are_rejected() -> None:
    async def not_blocking() -> None:
        pass

    with pytest.raises(TypeError, match="coroutine"):
        _ = await sysletloop.to_thread.run_sync(not_blocking)


# -------------------------------------------------------- the fallback


def test_on_stock_asyncio_it_is_anyios_run_sync() -> None:
    async def main() -> str:
        thread = await sysletloop.to_thread.run_sync(threading.current_thread)
        return thread.name

    assert anyio.run(main, backend="asyncio") == "AnyIO worker thread"


def test_on_trio_it_is_anyios_run_sync() -> None:
    pytest.importorskip("trio")

    async def main() -> tuple[str, bool]:
        thread = await sysletloop.to_thread.run_sync(threading.current_thread)
        return thread.name, thread is threading.current_thread()

    name, same = anyio.run(main, backend="trio")
    assert name.startswith("Trio thread")
    assert not same


def test_outside_anyio_on_a_syslet_loop_it_takes_the_syslet_path() -> None:
    # Plain asyncio code (no anyio task groups) may call it too.
    async def main() -> bool:
        return await sysletloop.to_thread.run_sync(threading.get_ident) == threading.get_ident()

    assert sysletloop.run(main())
