"""migrate_steps when its machinery cannot be had: the run goes on, steps stall as stock.

The sampler's thread may fail to start (a PID limit), and every ``sys.monitoring`` tool
id sysletloop could use may be taken by other tools. Neither may fail a run or leave the
loop half-started: blocked steps then stall the loop as on stock asyncio, the cause is
logged once, and a sampler that could not start is started when threads can be again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest

import sysletloop

from .helpers import python_child, this_loop, until

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="migrate_steps needs sys.monitoring (3.12+)"
)

DEADLOCK = 20.0  # seconds


def test_a_sampler_that_cannot_start_is_started_when_threads_can_be(
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_start = threading.Thread.start
    refused: list[str] = []

    def start(thread: threading.Thread) -> None:
        if thread.name == "sysletloop-sampler" and not refused:
            refused.append(thread.name)
            raise RuntimeError("can't start new thread")
        real_start(thread)

    async def main() -> tuple[bool, int, int]:
        loop = this_loop()
        sy = loop._syslet
        # The run started without a sampler; the retry timer starts one.
        await until(lambda: sy.step_sampler is not None and sy.step_sampler.is_alive())
        event = threading.Event()

        async def waiter() -> bool:
            return event.wait(DEADLOCK)  # unwrapped: only a moved loop lets the setter in

        async def setter() -> None:
            event.set()

        ok, _ = await asyncio.gather(waiter(), setter())
        stats = loop.syslet_stats()
        return ok, stats.claimed_steps, stats.thread_start_failures

    with caplog.at_level(logging.WARNING, logger="asyncio"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(threading.Thread, "start", start)
        ok, claimed, failures = sysletloop.run(main(), migrate_steps=True)
    assert refused == ["sysletloop-sampler"]
    assert ok and claimed >= 1 and failures >= 1
    assert any("starting the step sampler failed" in r.getMessage() for r in caplog.records)


def test_no_free_monitoring_tool_id_leaves_steps_unmoved_and_says_so() -> None:
    # A process of its own: sysletloop claims its tool ids once per process.
    code = """
import asyncio, logging, sys, threading, time
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
for tool in (3, 4):
    sys.monitoring.use_tool_id(tool, f"someone else {tool}")
import sysletloop

async def main():
    event = threading.Event()
    async def waiter():
        return event.wait(0.3)   # stalls the loop: the setter runs only after it
    async def setter():
        event.set()
    ok, _ = await asyncio.gather(waiter(), setter())
    return ok, asyncio.get_running_loop().syslet_stats().claimed_steps

print("result", *sysletloop.run(main(), migrate_steps=True), flush=True)
"""
    with python_child(code) as child:
        out, err = child.communicate(timeout=DEADLOCK)
    assert child.returncode == 0, err
    assert "result False 0" in out.splitlines()
    assert "no sys.monitoring tool id is free" in out
