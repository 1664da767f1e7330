"""Home affinity: when a blocked call that ran on the home thread returns, the loop goes
back there, so thread-bound state made by one non-blocking call is there for the next.

The home thread is the one that called ``run_forever`` (``sysletloop.run`` here, from
pytest's main thread). The sqlite3 pattern of the issue is the model: a connection made
inline on the home thread must work in every later inline call, whatever blocked in
between, including several blocking calls at once (where stock asyncio's pool, which
spreads them over several workers, can hand the next call to another worker).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sysletloop

from .helpers import Gate, this_loop, until

needs_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="checks threading.main_thread() from the loop's home thread",
)

# One step of a program: (kind, argument).
_STEPS = st.one_of(
    st.tuples(st.just("block"), st.floats(0.003, 0.012)),
    st.tuples(st.just("gather"), st.integers(2, 4)),
    st.tuples(st.just("use"), st.integers(0, 1000)),
    st.tuples(st.just("set-local"), st.integers(0, 1000)),
    st.tuples(st.just("check-local"), st.just(0)),
    st.tuples(st.just("main-thread"), st.just(0)),
)


def _on_the_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _run_program(steps: list[tuple[str, float]], predict: bool) -> sysletloop.SysletStats:
    local = threading.local()

    def set_local(value: float) -> None:
        local.value = value

    def get_local() -> object:
        return getattr(local, "value", None)

    async def main() -> sysletloop.SysletStats:
        db = await asyncio.to_thread(sqlite3.connect, ":memory:")
        try:
            expected_local: object = None
            for kind, arg in steps:
                if kind == "block":
                    await asyncio.to_thread(time.sleep, arg)
                elif kind == "gather":
                    await asyncio.gather(
                        *(asyncio.to_thread(time.sleep, 0.005) for _ in range(int(arg)))
                    )
                elif kind == "use":
                    query = f"select {arg}"
                    rows = await asyncio.to_thread(lambda q=query: db.execute(q).fetchall())
                    assert rows == [(arg,)]
                elif kind == "set-local":
                    await asyncio.to_thread(set_local, arg)
                    expected_local = arg
                elif kind == "check-local":
                    assert await asyncio.to_thread(get_local) == expected_local
                else:
                    assert await asyncio.to_thread(_on_the_main_thread)
            # The connection still works, and the loop is home.
            assert await asyncio.to_thread(lambda: db.execute("select 1").fetchall()) == [(1,)]
            assert threading.current_thread() is threading.main_thread()
            return this_loop().syslet_stats()
        finally:
            await asyncio.to_thread(db.close)

    return sysletloop.run(main(), predict_blocking=predict)


@needs_main_thread
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(_STEPS, min_size=1, max_size=12), predict=st.booleans())
def test_a_connection_made_at_home_works_after_any_interleaving(
    steps: list[tuple[str, float]], predict: bool
) -> None:
    stats = _run_program(steps, predict)
    assert stats.blocked_in_flight == 0
    # The loop goes home only after it left: a claim, or a hand-off of a predicted call.
    assert stats.home_returns <= stats.migrations + stats.predicted_blocking


@needs_main_thread
def test_the_issue_example_and_concurrent_blockers() -> None:
    # Fixed programs of the issue, so that these cases run whatever hypothesis draws.
    plain = _run_program([("block", 0.05), ("use", 1)], predict=False)
    assert plain.migrations == 1 and plain.home_returns == 1
    crowd = _run_program([("gather", 4), ("use", 2), ("gather", 3), ("check-local", 0)], True)
    assert crowd.peak_blocked >= 2


def test_without_home_affinity_the_loop_stays_where_it_moved() -> None:
    async def main() -> tuple[int, int, sysletloop.SysletStats]:
        home = threading.get_ident()
        await asyncio.to_thread(time.sleep, 0.02)
        return home, threading.get_ident(), this_loop().syslet_stats()

    home, now, stats = sysletloop.run(main(), home_affinity=False, predict_blocking=False)
    assert now != home
    assert stats.migrations == 1 and stats.home_returns == 0


def test_several_blocked_calls_returning_at_once_resolve_once_and_the_loop_is_home() -> None:
    home_gate, worker_gate = Gate(), Gate()

    async def main() -> tuple[list[object], int, sysletloop.SysletStats]:
        loop = this_loop()
        home = threading.get_ident()
        on_home = asyncio.ensure_future(sysletloop.call(home_gate, "home"))
        await until(home_gate.started.is_set)
        await until(lambda: loop._thread_id != home)  # the loop moved to a worker
        on_worker = asyncio.ensure_future(sysletloop.call(worker_gate, "worker"))
        await until(worker_gate.started.is_set)
        assert worker_gate.thread != home_gate.thread
        home_gate.release.set()
        worker_gate.release.set()  # both return at (nearly) the same moment
        results = list(await asyncio.gather(on_home, on_worker))
        await until(lambda: threading.get_ident() == home)
        return results, threading.get_ident() - home, loop.syslet_stats()

    results, off_home, stats = sysletloop.run(main(), predict_blocking=False)
    assert results == ["home", "worker"]
    assert off_home == 0
    assert stats.migrations == 2
    assert stats.home_returns == 1  # only the home thread goes home; the worker retires
    assert stats.completions_drained == 2
    assert stats.blocked_in_flight == 0


def test_a_home_call_returning_as_the_run_ends_is_delivered_exactly_once() -> None:
    # The run ends (run_until_complete's future is done) just as the home thread's
    # blocked call returns: either the home thread gets the loop back before the end,
    # or the run ends first and the outcome waits in the ring for the next run.
    loop = sysletloop.new_event_loop(predict_blocking=False)
    try:
        for round_ in range(30):
            gate = Gate()
            box: list[asyncio.Future[object]] = []
            release_after, end_after = 0.0005 * (round_ % 5), 0.0005 * (round_ % 7)

            async def start(
                gate: Gate = gate,
                box: list[asyncio.Future[object]] = box,
                release_after: float = release_after,
                end_after: float = end_after,
            ) -> None:
                home = threading.get_ident()
                box.append(asyncio.ensure_future(sysletloop.call(gate, "late")))
                await until(gate.started.is_set)
                await until(lambda: loop._thread_id != home)
                # A timer thread, not the loop: the run may be over before it fires.
                threading.Timer(release_after, gate.release.set).start()
                await asyncio.sleep(end_after)

            loop.run_until_complete(start())
            assert loop.run_until_complete(box[0]) == "late"
        stats = loop.syslet_stats()
        assert stats.blocked_in_flight == 0
        assert stats.completions_drained == stats.migrations == 30
    finally:
        loop.close()


def test_an_eager_call_blocked_on_a_worker_is_taken_back_then_the_loop_goes_home() -> None:
    # The loop is on a worker (the home thread is blocked); a task's eager call blocks
    # there, the loop moves on; the home thread returns and goes home; then the eager
    # caller takes the loop back from the home thread, and hands it back home after.
    home_gate, eager_gate = Gate(), Gate()

    async def main() -> tuple[object, object, bool, sysletloop.SysletStats]:
        loop = this_loop()
        home = threading.get_ident()
        on_home = asyncio.ensure_future(sysletloop.call(home_gate, "home"))
        await until(home_gate.started.is_set)
        await until(lambda: loop._thread_id != home)

        async def eager() -> tuple[object, bool]:
            me = threading.get_ident()
            value = await sysletloop.call_eager(eager_gate, "eager")
            return value, threading.get_ident() == me  # the step resumed on its thread

        eager_task = asyncio.ensure_future(eager())
        await until(eager_gate.started.is_set)
        await until(lambda: loop._thread_id not in (home, eager_gate_ident()))
        home_gate.release.set()
        await until(lambda: threading.get_ident() == home)  # home again
        eager_gate.release.set()
        value, same_thread = await eager_task
        await until(lambda: threading.get_ident() == home)  # and home once more
        return await on_home, value, same_thread, loop.syslet_stats()

    def eager_gate_ident() -> int | None:
        return None if eager_gate.thread is None else _ident_of(eager_gate.thread)

    home_value, eager_value, same_thread, stats = sysletloop.run(main(), predict_blocking=False)
    assert (home_value, eager_value, same_thread) == ("home", "eager", True)
    assert stats.eager_blocked == 1
    assert stats.home_returns >= 2  # after its own call, and after the take-back
    assert stats.blocked_in_flight == 0


def _ident_of(native_id: int) -> int | None:
    for thread in threading.enumerate():
        if thread.native_id == native_id:
            return thread.ident
    return None
