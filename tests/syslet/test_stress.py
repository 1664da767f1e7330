"""Tens of thousands of mixed calls: every one resolves exactly once, and no two threads
ever run the loop at the same time."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sysletloop

from .helpers import this_loop


class OneOwner:
    """Checks, from inside task steps, that the loop runs on one thread at a time.

    With ``migrate_steps`` a step may be claimed in its ``time.sleep(0)`` (a wait for
    the GIL looks like a block): other steps then run while it is held, as at an
    ``await``, and it goes on only once its thread owns the loop again. That is
    allowed; a step going on while another thread owns the loop is not."""

    def __init__(self, loop: sysletloop.SysletEventLoop) -> None:
        self.loop = loop
        self.active: int | None = None
        self.active_claimed = 0  # claimed_steps when ``active`` was set
        self.threads: set[int] = set()
        self.violations = 0

    def step(self) -> None:
        me = threading.get_ident()
        claimed = self.loop._syslet.claimed_steps
        if self.loop._thread_id != me:
            self.violations += 1
        elif self.active is not None and claimed == self.active_claimed:
            self.violations += 1  # another step is inside, and was not claimed
        self.active = me
        self.active_claimed = claimed
        self.threads.add(me)
        time.sleep(0)  # release the GIL: another thread running the loop would get in here
        intruded = self.active != me and self.loop._syslet.claimed_steps == claimed
        if self.loop._thread_id != me or intruded:
            self.violations += 1
        self.active = None


KINDS = ["fast", "raise", "block", "cancel-early", "cancel-late", "eager", "eager-block"]


async def _mixed_calls(kinds: list[str], concurrency: int) -> None:
    loop = this_loop()
    check = OneOwner(loop)
    ran: Counter[int] = Counter()

    def fast(i: int) -> int:
        ran[i] += 1
        return i

    def raises(i: int) -> int:
        ran[i] += 1
        raise ValueError(i)

    def blocks(i: int) -> int:
        ran[i] += 1
        time.sleep(0.002)
        return i

    async def one(i: int, kind: str) -> str:
        check.step()
        if kind == "fast":
            assert await sysletloop.call(fast, i) == i
        elif kind == "raise":
            with pytest.raises(ValueError) as info:
                await sysletloop.call(raises, i)
            assert info.value.args == (i,)
        elif kind == "block":
            assert await sysletloop.call(blocks, i) == i
        elif kind == "eager":
            assert await sysletloop.call_eager(fast, i) == i
            check.step()
        elif kind == "eager-block":
            assert await sysletloop.call_eager(blocks, i) == i
            check.step()  # the coroutine goes on only on the loop's owner
        elif kind == "cancel-early":
            # Submitted now, cancelled before the loop gets to start it.
            future = loop.run_in_executor(None, blocks, i)
            future.cancel()
            with pytest.raises(asyncio.CancelledError):
                await future
        else:
            task = asyncio.ensure_future(sysletloop.call(blocks, i))
            await asyncio.sleep(0.001)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        check.step()
        return kind

    for start in range(0, len(kinds), concurrency):
        batch = kinds[start : start + concurrency]
        done = await asyncio.gather(*(one(start + j, k) for j, k in enumerate(batch)))
        assert done == batch
    await loop.shutdown_default_executor()  # every blocked call has returned and drained

    stats = loop.syslet_stats()
    assert check.violations == 0
    assert stats.blocked_in_flight == 0
    # Every call was run exactly once, or never (cancelled before it started)...
    assert all(count == 1 for count in ran.values())
    must_run = [i for i, k in enumerate(kinds) if not k.startswith("cancel")]
    assert all(ran[i] == 1 for i in must_run)
    # ...and the loop accounted for each exactly once.
    eager = sum(k.startswith("eager") for k in kinds)
    assert stats.eager_completions + stats.eager_blocked + stats.eager_redirected == eager
    assert (
        stats.inline_completions + stats.completions_drained + stats.cancelled_before_start
        == len(kinds) - eager + stats.eager_redirected
    )
    assert stats.cancelled_before_start + len(ran) == len(kinds)


@pytest.mark.parametrize("seed", [1, 2])
def test_stress_twenty_thousand_mixed_calls(seed: int) -> None:
    rng = random.Random(seed)
    kinds = rng.choices(KINDS, weights=[80, 6, 2, 2, 2, 7, 1], k=20_000)
    sysletloop.run(_mixed_calls(kinds, concurrency=256), block_threshold=0.0005, max_blocked=8)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=60),
    concurrency=st.integers(1, 16),
    max_blocked=st.integers(1, 4),
)
def test_any_mix_of_calls_resolves_exactly_once(
    kinds: list[str], concurrency: int, max_blocked: int
) -> None:
    sysletloop.run(
        _mixed_calls(kinds, concurrency), block_threshold=0.0005, max_blocked=max_blocked
    )
