"""Closing a loop: never blocks on calls in flight; leaves no thread or descriptor."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import pytest

import sysletloop

from .helpers import Gate, loop_threads, open_fds, until, wait_until


def _leave_a_call_blocked(loop: sysletloop.SysletEventLoop, gate: Gate) -> None:
    """Run the loop until ``gate`` blocks on a thread other than this one, then stop.
    (The loop must not go home: ``home_affinity=False``.)"""
    assert not loop.syslet_options.home_affinity

    async def main() -> None:
        # First move the loop off this thread (this thread's call blocks 10 ms)...
        await sysletloop.call(time.sleep, 0.01)
        # ...so the gated call blocks on a worker, not on the caller of run_until_complete.
        blocked.append(asyncio.ensure_future(sysletloop.call(gate)))
        await until(gate.started.is_set)

    blocked: list[asyncio.Future[object]] = []
    loop.run_until_complete(main())


def test_close_with_a_call_in_flight_returns_at_once_and_nothing_leaks() -> None:
    fds_before = open_fds()
    gate = Gate()
    loop = sysletloop.new_event_loop(home_affinity=False)
    _leave_a_call_blocked(loop, gate)
    assert loop.syslet_stats().blocked_in_flight == 1
    assert loop.syslet_threads()  # at least the thread blocked in the call
    t0 = time.monotonic()
    loop.close()
    close_took = time.monotonic() - t0
    assert not gate.release.is_set()
    assert close_took < 10  # generous: it must not wait for the call (which waits 60 s)
    gate.release.set()
    assert wait_until(lambda: not loop_threads())
    assert loop.syslet_threads() == []
    assert open_fds() <= fds_before


def test_shutdown_default_executor_waits_for_a_blocked_call() -> None:
    gate = Gate()
    loop = sysletloop.new_event_loop(home_affinity=False)
    try:
        _leave_a_call_blocked(loop, gate)

        async def shutdown() -> int:
            loop.call_later(0.05, gate.release.set)
            await loop.shutdown_default_executor()
            return loop.syslet_stats().blocked_in_flight

        assert loop.run_until_complete(shutdown()) == 0
        assert gate.release.is_set()
    finally:
        loop.close()
    assert wait_until(lambda: not loop_threads())


def test_closed_loop_rejects_calls_with_a_clear_error() -> None:
    loop = sysletloop.new_event_loop()
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.syslet_call(len, "abc")


def test_close_is_idempotent_and_leaves_no_threads_when_nothing_blocked() -> None:
    fds_before = open_fds()
    loop = sysletloop.new_event_loop()
    assert loop.run_until_complete(loop.syslet_call(sum, [1, 2])) == 3
    loop.close()
    loop.close()
    assert wait_until(lambda: not loop_threads())
    assert open_fds() <= fds_before


@pytest.mark.parametrize(
    "factory", [asyncio.new_event_loop, sysletloop.new_event_loop], ids=["asyncio", "syslet"]
)
def test_a_closed_loop_is_freed_without_the_cyclic_collector(factory: Any) -> None:
    # Libraries assert that running work through the executor leaves no cyclic garbage:
    # a closed loop must go the moment its last reference does, as stock asyncio's does,
    # also after calls that blocked (migrations) and calls that did not.
    async def main() -> None:
        await asyncio.to_thread(time.sleep, 0.01)
        await asyncio.get_running_loop().run_in_executor(None, len, "ab")
        await asyncio.sleep(0)

    gc.collect()
    gc.disable()
    try:
        loop = factory()
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        ref = weakref.ref(loop)
        del loop
        assert ref() is None, [type(r).__name__ for r in gc.get_referrers(ref())]
    finally:
        gc.enable()
