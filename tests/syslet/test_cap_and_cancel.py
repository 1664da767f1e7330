"""The cap on blocked calls, and cancellation at every stage of a call's life."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

import sysletloop

from .helpers import Gate, loop_threads, this_loop, until, wait_until


def run(main, **options):  # type: ignore[no-untyped-def]
    return sysletloop.run(main, **options)


def test_calls_beyond_the_cap_wait_in_fifo_order_and_the_loop_keeps_running() -> None:
    gates = [Gate() for _ in range(5)]
    start_order: list[int] = []
    lock = threading.Lock()

    def gated(i: int) -> int:
        with lock:
            start_order.append(i)
        return gates[i](i)  # type: ignore[return-value]

    async def main() -> None:
        loop = this_loop()
        calls = [asyncio.ensure_future(sysletloop.call(gated, i)) for i in range(5)]
        await until(lambda: gates[0].started.is_set() and gates[1].started.is_set())
        ticks = 0
        for _ in range(20):  # the loop is alive while two calls hold the cap
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 20
        stats = loop.syslet_stats()
        assert stats.blocked_in_flight == 2
        assert not any(g.started.is_set() for g in gates[2:])
        for i in range(5):
            await until(gates[i].started.is_set)
            assert loop.syslet_stats().blocked_in_flight <= 2
            gates[i].release.set()
        assert await asyncio.gather(*calls) == list(range(5))
        stats = loop.syslet_stats()
        assert stats.peak_blocked == 2
        assert stats.queued_over_cap == 3

    run(main(), max_blocked=2)
    # Dispatched in FIFO order; two dispatched back to back may start on their threads
    # in either order, but never ahead of a call dispatched after them.
    assert sorted(start_order) == list(range(5))
    assert all(i <= k + 1 for k, i in enumerate(start_order))


def test_with_a_cap_of_one_calls_start_strictly_in_submission_order() -> None:
    start_order: list[int] = []

    def blocks(i: int) -> int:
        start_order.append(i)
        time.sleep(0.003)
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(sysletloop.call(blocks, i) for i in range(8)))

    assert run(main(), max_blocked=1) == list(range(8))
    assert start_order == list(range(8))


def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    ran: list[str] = []

    async def main() -> None:
        loop = this_loop()
        gate = Gate()
        holder = asyncio.ensure_future(sysletloop.call(gate))
        await until(gate.started.is_set)  # the cap (1) is now full
        queued = asyncio.ensure_future(sysletloop.call(ran.append, "queued"))
        await asyncio.sleep(0.01)
        queued.cancel()
        gate.release.set()
        await holder
        with pytest.raises(asyncio.CancelledError):
            await queued
        await asyncio.sleep(0.01)
        assert loop.syslet_stats().cancelled_before_start == 1

    run(main(), max_blocked=1)
    assert ran == []


@pytest.mark.asyncio
async def test_a_call_cancelled_in_the_iteration_it_was_submitted_never_runs() -> None:
    ran: list[int] = []
    fut = this_loop().run_in_executor(None, ran.append, 1)
    fut.cancel()
    await asyncio.sleep(0.01)
    assert ran == []


def test_cancel_while_blocked_is_immediate_and_the_late_error_is_logged_in_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate()

    def fails_late() -> None:
        gate()
        raise ValueError("late failure")

    async def main() -> None:
        loop = this_loop()
        task = asyncio.ensure_future(sysletloop.call(fails_late))
        await until(gate.started.is_set)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not gate.release.is_set()  # cancelled while the call still blocks
        gate.release.set()
        await until(lambda: loop.syslet_stats().completions_drained == 1)
        # The freed thread is reused by the next blocking call.
        reused = loop.syslet_stats().threads_reused
        await sysletloop.call(time.sleep, 0.01)
        assert loop.syslet_stats().threads_reused > reused

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run(main(), debug=True)
    late = [
        r
        for r in caplog.records
        if "raised after the future awaiting it was cancelled" in r.getMessage()
    ]
    assert len(late) == 1
    assert late[0].exc_info is not None
    assert str(late[0].exc_info[1]) == "late failure"


def test_timeout_around_a_blocked_call() -> None:
    async def main() -> str:
        try:
            await asyncio.wait_for(sysletloop.call(time.sleep, 0.3), 0.05)
        except TimeoutError:
            return "timed out"
        return "finished"

    assert run(main()) == "timed out"


def test_every_thread_is_gone_after_the_last_blocked_call_returns() -> None:
    async def main() -> None:
        await asyncio.gather(*(sysletloop.call(time.sleep, 0.05) for _ in range(5)))

    run(main(), idle_timeout=0.05)
    assert wait_until(lambda: not loop_threads())
