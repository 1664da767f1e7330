"""Calls that do not block stay inline; a call that blocks moves the loop elsewhere."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import warnings

import pytest

import sysletloop

from .helpers import Gate, this_loop, until, wait_until


@pytest.mark.asyncio
async def test_a_call_that_does_not_block_runs_inline_in_the_loop_thread() -> None:
    loop = this_loop()
    loop_thread = threading.get_native_id()
    before = loop.syslet_stats()
    ran_on = await sysletloop.call(threading.get_native_id)
    after = loop.syslet_stats()
    assert ran_on == loop_thread
    assert threading.get_native_id() == loop_thread
    assert after.inline_completions == before.inline_completions + 1
    assert after.migrations == before.migrations
    assert after.threads_started == 0


@pytest.mark.asyncio
async def test_a_blocking_call_moves_the_loop_to_another_thread() -> None:
    loop = this_loop()
    home = threading.get_native_id()
    gate = Gate()
    seen: list[int] = []

    async def observer() -> None:
        await until(gate.started.is_set)
        # The loop kept running while the call blocked: on which thread?
        seen.append(threading.get_native_id())
        gate.release.set()

    obs = asyncio.create_task(observer())
    result = await sysletloop.call(gate, "done")
    await obs
    assert result == "done"
    assert gate.thread == home  # the call started inline, on the loop's thread
    assert seen and seen[0] != home  # others saw the loop on a new thread
    # Once the call returned, the loop went home (home affinity, the default), and
    # the call's outcome was delivered there.
    assert threading.get_native_id() == home
    stats = loop.syslet_stats()
    assert stats.migrations == 1
    assert stats.home_returns == 1
    assert stats.completions_drained == 1
    assert stats.peak_blocked == 1
    assert stats.blocked_in_flight == 0


@pytest.mark.asyncio
async def test_other_tasks_keep_running_while_a_call_blocks() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    before = ticks
    await sysletloop.call(time.sleep, 0.2)
    task.cancel()
    # 0.2 s of blocking: a stalled loop would tick once or not at all.
    assert ticks - before >= 10


@pytest.mark.asyncio
async def test_loop_state_follows_the_owner() -> None:
    loop = this_loop()
    gate = Gate()
    call = asyncio.ensure_future(sysletloop.call(gate))
    await until(gate.started.is_set)
    # Running on the new owner now.
    assert asyncio.get_running_loop() is loop
    assert loop.is_running()
    assert loop._thread_id == threading.get_ident()
    hooks = sys.get_asyncgen_hooks()
    assert hooks.firstiter is not None and hooks.finalizer is not None
    gate.release.set()
    await call


@pytest.mark.asyncio
async def test_the_call_sees_no_loop_state() -> None:
    loop = this_loop()

    def probe() -> tuple[object, object]:
        return asyncio._get_running_loop(), sys.get_asyncgen_hooks().firstiter

    running, firstiter = await sysletloop.call(probe)
    assert running is None
    assert firstiter is None or getattr(firstiter, "__self__", None) is not loop


@pytest.mark.asyncio
async def test_many_migrations_in_a_row() -> None:
    loop = this_loop()
    threads = set()
    for _ in range(10):
        threads.add(await sysletloop.call(lambda: (time.sleep(0.01), threading.get_native_id())[1]))
    stats = loop.syslet_stats()
    # The first call blocked inline; the predictor sent the others straight away but
    # for one inline probe after 8 predictions (which blocked, and migrated, too).
    assert stats.migrations == 2
    assert stats.predicted_blocking == 8
    assert stats.completions_drained == 10
    assert stats.threads_reused > 0  # finished blocked threads come back as spares
    # Home affinity: every call started while the home thread was free, so each ran
    # there (the predicted ones with the loop handed off meanwhile).
    assert threads == {threading.get_native_id()}
    assert stats.home_returns == 10


def _block_until_the_loop_moves(loop: sysletloop.SysletEventLoop) -> None:
    """A blocking call that returns only once the loop has left its thread: it blocks
    for as long as a loaded machine takes to notice, so the migration is certain."""
    me = threading.get_ident()
    assert wait_until(lambda: loop._thread_id != me, timeout=60)


def test_without_the_predictor_every_blocking_call_migrates() -> None:
    async def main() -> sysletloop.SysletStats:
        loop = this_loop()
        for _ in range(5):
            await sysletloop.call(_block_until_the_loop_moves, loop)
        return loop.syslet_stats()

    stats = sysletloop.run(main(), predict_blocking=False)
    assert stats.migrations == 5
    assert stats.predicted_blocking == 0


@pytest.mark.parametrize("affinity", [False, True], ids=["away", "home"])
def test_run_returns_in_the_calling_thread_after_migrations(affinity: bool) -> None:
    caller = threading.get_ident()

    async def main() -> tuple[int, int]:
        loop = this_loop()
        for _ in range(3):
            await sysletloop.call(_block_until_the_loop_moves, loop)
        return threading.get_ident(), loop.syslet_stats().migrations

    loop_thread, migrations = sysletloop.run(
        main(), predict_blocking=False, home_affinity=affinity
    )
    assert threading.get_ident() == caller
    # Without home affinity the loop ends its run on a worker; with it, at home.
    assert (loop_thread == caller) is affinity
    assert migrations == 3
    assert asyncio._get_running_loop() is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_with_loop_factory() -> None:
    async def main() -> str:
        assert isinstance(asyncio.get_running_loop(), sysletloop.SysletEventLoop)
        return await asyncio.to_thread(time.sleep, 0.01) or "ok"

    assert asyncio.run(main(), loop_factory=sysletloop.new_event_loop) == "ok"  # type: ignore[call-arg]


def test_policy_makes_syslet_loops() -> None:
    # asyncio deprecated its policy system in 3.14 (the calls below warn there); the
    # policy must keep working wherever asyncio still has one.
    with warnings.catch_warnings():
        if sys.version_info >= (3, 14):
            warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(sysletloop.EventLoopPolicy(block_threshold=0.002))
    try:

        async def main() -> float:
            return this_loop().syslet_options.block_threshold

        assert asyncio.run(main()) == 0.002
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(old)


def test_importing_and_making_the_policy_does_not_warn() -> None:
    # Our own code raises no DeprecationWarning on any supported Python (warnings are
    # errors in this suite; this states it for the policy class, which 3.14 touches).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy = sysletloop.EventLoopPolicy(block_threshold=0.002)
        loop = policy.new_event_loop()
        loop.close()
    assert isinstance(loop, sysletloop.SysletEventLoop)


@pytest.mark.asyncio
async def test_call_kwargs_and_context() -> None:
    import contextvars

    var: contextvars.ContextVar[int] = contextvars.ContextVar("var")
    var.set(5)
    assert await sysletloop.call(lambda a, *, b: a + b + var.get(), 1, b=2) == 8


def test_route_executor_off_to_thread_uses_a_pool_thread() -> None:
    async def main() -> tuple[str, int]:
        return (
            await asyncio.to_thread(lambda: threading.current_thread().name),
            this_loop().syslet_stats().inline_completions,
        )

    name, inline = sysletloop.run(main(), route_executor=False)
    assert name.startswith("asyncio")
    assert inline == 0


def test_call_falls_back_to_to_thread_on_other_loops() -> None:
    async def main() -> str:
        return await sysletloop.call(lambda: threading.current_thread().name)

    assert asyncio.run(main()).startswith("asyncio")


def test_all_tasks_sees_tasks_made_on_every_thread_the_loop_ran_on() -> None:
    # 3.14+ keeps tasks in per-thread lists and asyncio.all_tasks() looks only at the
    # calling thread's when the loop runs there; a migrated loop has tasks in several.
    async def forever() -> None:
        await asyncio.sleep(3600)

    async def main() -> tuple[set[str], set[str]]:
        home = threading.get_ident()
        before = asyncio.create_task(forever(), name="before")
        await asyncio.to_thread(time.sleep, 0.05)  # blocks: the loop moves
        assert threading.get_ident() != home
        after = asyncio.create_task(forever(), name="after")
        await asyncio.sleep(0)
        seen = {t.get_name() for t in asyncio.all_tasks()}
        seen_by_module = {t.get_name() for t in asyncio.tasks.all_tasks(asyncio.get_running_loop())}
        for task in (before, after):
            task.cancel()
        await asyncio.gather(before, after, return_exceptions=True)
        return seen, seen_by_module

    seen, seen_by_module = sysletloop.run(main(), predict_blocking=False, home_affinity=False)
    assert {"before", "after"} <= seen
    assert seen == seen_by_module
