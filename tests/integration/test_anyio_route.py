"""``route_anyio=True``: anyio's own ``to_thread.run_sync`` and ``from_thread`` on the
syslet path.

Where anyio's worker threads define the behaviour (cancellation, ``abandon_on_cancel``,
limiter, contextvars, exceptions, ``from_thread``), the same body runs on stock asyncio
(anyio's threads) and on a syslet loop with the option, so a difference shows as one
failing parameter. Then what only the routed path does: inline calls, migration, the cap,
the version guard, and loops without the option left alone. A shielded call, and a call
that blocks while a sibling runs, are tested in ``test_anyio.py`` on every backend,
this routed one among them.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio

import sysletloop
import sysletloop.testing
from sysletloop import _anyio_route

from .support import Gate, Overlap, wait_for

ROUTED = pytest.param(sysletloop.testing.anyio_backend(route_anyio=True), id="routed")
STOCK = pytest.param(("asyncio", {}), id="asyncio")

request_id = contextvars.ContextVar[str]("request_id")


@pytest.fixture(params=[ROUTED, STOCK])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


def routed(backend: tuple[str, dict[str, Any]]) -> bool:
    return "loop_factory" in backend[1]


def this_loop() -> sysletloop.SysletEventLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    assert loop.syslet_options.route_anyio
    return loop


# --------------------------------------------------------- same as anyio's threads


@pytest.mark.anyio
async def test_result_and_exception_come_back() -> None:
    assert await anyio.to_thread.run_sync(divmod, 7, 2) == (3, 1)
    error = ValueError("boom")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError) as info:
        await anyio.to_thread.run_sync(fail)
    assert info.value is error


@pytest.mark.anyio
async def test_stop_iteration_becomes_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="coroutine raised StopIteration") as info:
        await anyio.to_thread.run_sync(next, iter(()))
    assert isinstance(info.value.__cause__, StopIteration)


@pytest.mark.anyio
async def test_the_call_sees_a_copy_of_the_callers_context_and_no_async_library() -> None:
    request_id.set("r-1")

    def look() -> tuple[str, bool]:
        seen = request_id.get()
        request_id.set("changed in the call")
        try:
            sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return seen, False
        return seen, True

    assert await anyio.to_thread.run_sync(look) == ("r-1", False)
    assert request_id.get() == "r-1"


@pytest.mark.anyio
async def test_abandon_on_cancel_lets_the_task_go_and_the_call_finish() -> None:
    gate = Gate()
    with anyio.move_on_after(0.02) as scope:
        await anyio.to_thread.run_sync(gate, "late", abandon_on_cancel=True)
    assert scope.cancelled_caught
    assert gate.started.is_set()
    gate.release.set()  # the call finishes on its own; its outcome is dropped
    await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_a_call_cancelled_before_the_loop_starts_it_still_runs() -> None:
    # anyio's test_cancel_wait_on_thread: the task is cancelled as soon as it waits, which
    # on a syslet loop is before the end of the iteration that runs the call.
    event = threading.Event()
    ran: list[bool] = []

    def wait_event() -> None:
        ran.append(event.wait(5))

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: anyio.to_thread.run_sync(wait_event, abandon_on_cancel=True))
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    await anyio.to_thread.run_sync(event.set)
    with anyio.fail_after(10):
        while not ran:
            await anyio.sleep(0.001)
    assert ran == [True]


@pytest.mark.anyio
async def test_a_scope_already_cancelled_raises_before_the_call_runs() -> None:
    ran: list[bool] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        await anyio.to_thread.run_sync(ran.append, True)
    assert scope.cancelled_caught
    assert ran == []


@pytest.mark.anyio
async def test_cancelling_the_awaiting_task_with_asyncio_cancel() -> None:
    gate = Gate()
    task = asyncio.ensure_future(anyio.to_thread.run_sync(gate, "x", abandon_on_cancel=True))
    await wait_for(gate.started)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.release.set()


@pytest.mark.anyio
async def test_an_explicit_limiter_is_honoured() -> None:
    limiter = anyio.CapacityLimiter(2)
    work = Overlap(0.02)
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(lambda: anyio.to_thread.run_sync(work, limiter=limiter))
    assert work.peak == 2


@pytest.mark.anyio
async def test_from_thread_run_and_run_sync_without_a_token() -> None:
    async def double(x: int) -> int:
        await anyio.sleep(0)
        return 2 * x

    def call_back() -> tuple[int, str, bool]:
        value = anyio.from_thread.run(double, 21)
        name = anyio.from_thread.run_sync(sniffio.current_async_library)
        same = anyio.from_thread.run_sync(asyncio.get_running_loop) is loop
        return value, name, same

    loop = asyncio.get_running_loop()
    with anyio.fail_after(30):  # a deadlock would hang here
        for _ in range(3):  # inline first, then (predicted to block) on a spare thread
            assert await anyio.to_thread.run_sync(call_back) == (42, "asyncio", True)


@pytest.mark.anyio
async def test_from_thread_run_raises_the_coroutines_exception() -> None:
    async def fail() -> None:
        raise KeyError("from the loop")

    def call_back() -> None:
        anyio.from_thread.run(fail)

    with pytest.raises(KeyError, match="from the loop"):
        await anyio.to_thread.run_sync(call_back)


@pytest.mark.anyio
async def test_check_cancelled_sees_the_callers_scope() -> None:
    started = threading.Event()
    outcome: list[str] = []

    def poll() -> None:
        started.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                anyio.from_thread.check_cancelled()
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise
            time.sleep(0.001)
        outcome.append("never cancelled")

    async with anyio.create_task_group() as tg:

        async def cancel_soon() -> None:
            await wait_for(started)
            tg.cancel_scope.cancel()

        tg.start_soon(cancel_soon)
        await anyio.to_thread.run_sync(poll)
    assert outcome == ["cancelled"]


@pytest.mark.anyio
async def test_from_thread_outside_a_routed_call_still_needs_a_token() -> None:
    def outside() -> None:
        anyio.from_thread.run_sync(time.monotonic)

    # A thread anyio did not start (the loop's own pool, through asyncio.to_thread with
    # route_executor, or a stock pool thread): no token, no loop.
    with pytest.raises(RuntimeError):  # anyio 4.11+: its subclass NoEventLoopError
        await asyncio.to_thread(outside)


# ------------------------------------------------------------ routed path only


@pytest.mark.anyio
async def test_a_call_that_does_not_block_runs_inline_on_the_loops_thread(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    here = threading.get_ident()
    there = await anyio.to_thread.run_sync(threading.get_ident)
    assert (there == here) == routed(anyio_backend)
    if routed(anyio_backend):
        stats = this_loop().syslet_stats()
        assert stats.inline_completions >= 1
        assert stats.threads_started == 0


@pytest.mark.anyio
async def test_more_than_anyios_40_tokens_block_at_once(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    if not routed(anyio_backend):
        pytest.skip("stock anyio caps this at its default limiter's 40 tokens")
    barrier = threading.Barrier(50, timeout=30)
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(anyio.to_thread.run_sync, barrier.wait)
    assert this_loop().syslet_stats().peak_blocked >= 50


def test_the_loops_max_blocked_caps_routed_calls() -> None:
    work = Overlap(0.01)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(anyio.to_thread.run_sync, work)

    backend, options = sysletloop.testing.anyio_backend(route_anyio=True, max_blocked=3)
    anyio.run(main, backend=backend, backend_options=options)
    assert 1 <= work.peak <= 3


def test_without_the_option_anyio_keeps_its_worker_threads() -> None:
    # The hook is process-wide once installed: loops without the option go to anyio's
    # own method, unchanged.
    sysletloop.new_anyio_event_loop().close()
    assert _anyio_route.installed()

    async def main() -> str:
        return (await anyio.to_thread.run_sync(threading.current_thread)).name

    backend, options = sysletloop.testing.anyio_backend()
    assert anyio.run(main, backend=backend, backend_options=options) == "AnyIO worker thread"
    assert anyio.run(main, backend="asyncio") == "AnyIO worker thread"


def test_the_option_is_a_loop_option_everywhere() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, sysletloop.SysletEventLoop)
        return loop.syslet_options.route_anyio

    assert sysletloop.run(main(), route_anyio=True)
    assert not sysletloop.run(main())
    assert sysletloop.LoopOptions(route_anyio=True).route_anyio
    loop = sysletloop.new_event_loop(route_anyio=True)
    assert loop.syslet_options.route_anyio
    loop.close()
    with pytest.raises(TypeError, match="route_anyio must be a bool"):
        sysletloop.new_event_loop(route_anyio=1)


@pytest.mark.parametrize("found", ["4.3.0", "4.17.0", "5.0.0", "banana"])
def test_an_anyio_version_not_checked_is_refused(
    monkeypatch: pytest.MonkeyPatch, found: str
) -> None:
    monkeypatch.setattr(_anyio_route, "version", lambda name: found)
    with pytest.raises(RuntimeError, match=f"anyio {found} is not a version sysletloop knows"):
        _anyio_route._check_version()


@pytest.mark.parametrize("found", ["4.4.0", "4.11.0", "4.16.0", "4.16.2.post1"])
def test_the_anyio_versions_checked_are_accepted(
    monkeypatch: pytest.MonkeyPatch, found: str
) -> None:
    monkeypatch.setattr(_anyio_route, "version", lambda name: found)
    _anyio_route._check_version()
