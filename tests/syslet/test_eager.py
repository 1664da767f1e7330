"""call_eager: no suspension when fn does not block; correct when it does."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from unittest import mock

import pytest

import sysletloop

from .helpers import Gate, this_loop, until

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@pytest.mark.asyncio
async def test_a_call_that_does_not_block_does_not_suspend_the_task() -> None:
    loop = this_loop()
    ran: list[int] = []
    loop.call_soon(ran.append, 1)
    assert await sysletloop.call_eager(divmod, 7, 2) == (3, 1)
    assert ran == []  # nothing else ran: the task never yielded
    stats = loop.syslet_stats()
    assert stats.eager_completions == 1
    assert stats.migrations == 0


@pytest.mark.asyncio
async def test_it_runs_in_the_tasks_own_context_and_sees_the_loop() -> None:
    var.set("task")

    def probe() -> tuple[str, object]:
        var.set("changed")  # like any function the coroutine calls
        return var.get(), asyncio.get_running_loop()

    assert await sysletloop.call_eager(probe) == ("changed", this_loop())
    assert var.get() == "changed"


@pytest.mark.asyncio
async def test_exceptions_propagate_as_from_a_direct_call() -> None:
    with pytest.raises(ZeroDivisionError):
        await sysletloop.call_eager(divmod, 1, 0)
    assert this_loop().syslet_stats().eager_completions == 1


@pytest.mark.asyncio
async def test_a_blocking_eager_call_lets_the_loop_run_and_takes_it_back() -> None:
    loop = this_loop()
    me = threading.get_ident()
    task = asyncio.current_task()
    gate = Gate()
    others: list[int] = []
    current: list[object] = []

    async def other() -> None:
        await until(gate.started.is_set)
        await asyncio.sleep(0.01)
        others.append(threading.get_ident())
        # the thread the loop moved to runs this task, not the interrupted one (3.14+
        # keeps the current task per thread; 3.11-3.13 per loop)
        current.append(asyncio.current_task())
        gate.release.set()

    helper = asyncio.create_task(other())
    await asyncio.sleep(0)
    assert await sysletloop.call_eager(gate, "value") == "value"
    # The coroutine goes on only where the loop is: this thread owns it again.
    assert threading.get_ident() == me
    assert loop._thread_id == me
    assert asyncio.current_task() is task
    assert others and others[0] != me  # meanwhile the loop ran elsewhere
    assert current == [helper]
    await helper
    await asyncio.sleep(0.001)  # and keeps working afterwards
    stats = loop.syslet_stats()
    assert stats.eager_blocked == 1
    assert stats.migrations == 1
    assert stats.blocked_in_flight == 0


def test_two_tasks_blocked_in_eager_calls_at_once_both_resume() -> None:
    barrier = threading.Barrier(2, timeout=30)

    async def worker(i: int) -> tuple[int, bool]:
        await sysletloop.call_eager(barrier.wait)  # both must be blocked together
        loop = this_loop()
        return i, loop._thread_id == threading.get_ident()

    async def main() -> list[tuple[int, bool]]:
        return await asyncio.gather(worker(0), worker(1))

    assert sysletloop.run(main()) == [(0, True), (1, True)]


def test_run_returns_in_the_caller_after_an_eager_call_blocked_in_it() -> None:
    caller = threading.get_ident()

    async def main() -> int:
        await sysletloop.call_eager(time.sleep, 0.02)
        return threading.get_ident()

    assert sysletloop.run(main()) == caller
    assert threading.get_ident() == caller


def test_the_loop_waits_for_a_blocked_eager_call_before_it_stops() -> None:
    gate = Gate()
    finished: list[str] = []

    async def background() -> None:
        await sysletloop.call_eager(gate)
        finished.append("background")

    async def main() -> None:
        # Released from another thread: like any blocking call inside a task step, it
        # holds up the end of the run until it returns.
        threading.Timer(0.05, gate.release.set).start()
        bg = asyncio.ensure_future(background())
        await until(gate.started.is_set)
        del bg  # main ends while bg is blocked in its eager call

    loop = sysletloop.new_event_loop()
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    assert finished == ["background"]


def test_an_exception_escaping_the_loop_while_an_eager_call_waits() -> None:
    gate = Gate()
    tasks: list[asyncio.Future[str]] = []

    async def background() -> str:
        await sysletloop.call_eager(gate)
        return "resumed"

    def fail() -> None:
        raise SystemExit(3)

    async def main() -> None:
        tasks.append(asyncio.ensure_future(background()))
        await until(gate.started.is_set)  # the eager call blocks; the loop moved
        threading.Timer(0.05, gate.release.set).start()
        asyncio.get_running_loop().call_soon(fail)  # escapes the loop meanwhile
        await asyncio.sleep(10)

    loop = sysletloop.new_event_loop()
    try:
        with pytest.raises(SystemExit):
            loop.run_until_complete(main())
        assert not loop.is_running()
        # The interrupted step was finished by its own thread before the run ended.
        assert tasks[0].result() == "resumed"
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()


def test_call_eager_falls_back_to_to_thread_on_other_loops() -> None:
    async def main() -> str:
        return await sysletloop.call_eager(lambda: threading.current_thread().name)

    assert asyncio.run(main()).startswith("asyncio")


@pytest.mark.asyncio(loop_factories=["syslet"])
async def test_call_eager_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="expects a callable"):
        await sysletloop.call_eager(3)  # type: ignore[arg-type]

    async def coro_fn() -> None:
        pass

    with pytest.raises(TypeError, match="returned a coroutine"):
        await sysletloop.call_eager(coro_fn)


@pytest.mark.parametrize("affinity", [False, True], ids=["away", "home"])
def test_an_eager_callable_that_blocks_is_redirected_next_time(affinity: bool) -> None:
    def naps() -> int:
        time.sleep(0.01)
        return threading.get_ident()

    async def main() -> None:
        loop = this_loop()
        await sysletloop.call_eager(naps)  # blocks in the step: the loop moves
        owner = threading.get_ident()
        assert loop.syslet_stats().eager_blocked == 1
        ran_on = await sysletloop.call_eager(naps)  # predicted: call()'s path
        stats = loop.syslet_stats()
        if loop.syslet_options.home_affinity:
            # handed off at home: it runs there, the loop went elsewhere and came back
            assert ran_on == owner
            assert stats.home_returns == 1
        else:
            assert ran_on != owner  # sent to a spare
        assert threading.get_ident() == owner  # the loop is where it was
        assert (stats.eager_redirected, stats.migrations) == (1, 1)

    sysletloop.run(main(), home_affinity=affinity)


class _UnhashableCallable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self, x: int) -> int:
        time.sleep(0.0002)  # slow enough (>= SLOW_CALL) to be profiled
        return x * 2


@pytest.mark.asyncio
async def test_eager_accepts_unhashable_and_mock_callables() -> None:
    slow = _UnhashableCallable()
    for _ in range(3):
        assert await sysletloop.call_eager(slow, 21) == 42
    assert await sysletloop.call_eager(mock.Mock(return_value="mocked")) == "mocked"
