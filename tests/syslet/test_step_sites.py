"""migrate_steps at places that blocked before: the owner claims the step at the call.

A step claimed by the sampler teaches the loop its place (the code object and the call
instruction); the next step making a C call there is claimed by the owner itself before
the call starts (``predicted_steps``), with the same hold. These tests block for real,
on sockets whose bytes another task of the same loop sends, so that a loop that did not
move on deadlocks (bounded by ``DEADLOCK``). They assert what was claimed and how, and
that a Python callee, a call that stopped blocking and a closed loop leave no claim and
no watched code behind.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import pytest

import sysletloop

from .helpers import until, wait_until

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="migrate_steps needs sys.monitoring (3.12+)"
)

DEADLOCK = 20.0  # seconds: a deadlock fails the test instead of hanging it


def this_loop() -> sysletloop.SysletEventLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    return loop


def recv_one(sock: socket.socket) -> bytes:
    return sock.recv(1)  # the one place these tests block at


def through(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)  # a place whose callee differs from call to call


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.settimeout(DEADLOCK)
    return a, b


async def send_after_claims(loop: sysletloop.SysletEventLoop, b: socket.socket, n: int) -> None:
    """Send one byte each time the reader has been claimed once more (it is blocked, or
    about to block, in recv), after a pause long enough that the recv does block."""
    for i in range(n):
        await until(lambda i=i: loop.syslet_stats().claimed_steps > i, DEADLOCK)
        await asyncio.sleep(0.01)
        b.send(bytes([i]))


def test_a_place_that_blocked_before_is_claimed_at_the_call() -> None:
    async def main() -> tuple[list[bytes], int, int, int, sysletloop.SysletEventLoop]:
        loop = this_loop()
        a, b = pair()
        got: list[bytes] = []

        async def reader() -> None:
            for _ in range(4):
                got.append(recv_one(a))
                await asyncio.sleep(0)

        try:
            await asyncio.gather(reader(), send_after_claims(loop, b, 4))
        finally:
            a.close()
            b.close()
        stats = loop.syslet_stats()
        return got, stats.claimed_steps, stats.predicted_steps, _watched(loop), loop

    got, claimed, predicted, watched, loop = sysletloop.run(main(), migrate_steps=True)
    assert got == [b"\x00", b"\x01", b"\x02", b"\x03"]
    assert (claimed, predicted) == (4, 3)  # the first by the sampler, then at the call
    assert watched == 1
    # Closing the loop forgets its places and turns their events off.
    assert _watched(loop) == 0
    assert _call_events(recv_one.__code__) == 0


def test_without_predict_blocking_nothing_is_claimed_at_the_call() -> None:
    async def main() -> tuple[int, int, int]:
        loop = this_loop()
        a, b = pair()

        async def reader() -> None:
            for _ in range(3):
                recv_one(a)
                await asyncio.sleep(0)

        try:
            await asyncio.gather(reader(), send_after_claims(loop, b, 3))
        finally:
            a.close()
            b.close()
        stats = loop.syslet_stats()
        return stats.claimed_steps, stats.predicted_steps, _watched(loop)

    assert sysletloop.run(main(), migrate_steps=True, predict_blocking=False) == (3, 0, 0)


def test_a_call_that_stopped_blocking_is_a_miss_and_its_place_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sysletloop import _stepcalls

    # A recv of bytes already there returns in microseconds; a generous bound keeps a
    # loaded machine from stretching it past the one that judges a miss.
    monkeypatch.setattr(_stepcalls, "MISS_TIME", 0.05)

    async def main() -> tuple[list[bytes], int, int, int]:
        loop = this_loop()
        a, b = pair()
        got: list[bytes] = []

        async def reader() -> None:
            for _ in range(4):  # the first blocks; the others find their byte there
                got.append(recv_one(a))

        async def writer() -> None:
            await until(lambda: loop.syslet_stats().claimed_steps > 0, DEADLOCK)
            await asyncio.sleep(0.01)
            b.send(b"\x00\x01\x02\x03")

        try:
            await asyncio.gather(reader(), writer())
        finally:
            a.close()
            b.close()
        stats = loop.syslet_stats()
        return got, stats.claimed_steps, stats.predicted_steps, _watched(loop)

    got, claimed, predicted, watched = sysletloop.run(main(), migrate_steps=True)
    assert got == [b"\x00", b"\x01", b"\x02", b"\x03"]
    # The sampler's claim, then one at the call that did not block: forgotten after it.
    assert (claimed, predicted, watched) == (2, 1, 0)


def test_a_python_callee_at_a_known_place_is_not_claimed_at_the_call() -> None:
    # Its bytecode would run beside the new owner: the step keeps the loop.
    async def main() -> tuple[list[bool], int, int]:
        loop = this_loop()
        a, b = pair()
        owned: list[bool] = []

        def still_the_owner(_: object) -> None:
            owned.append(loop._thread_id == threading.get_ident())

        async def steps() -> None:
            through(a.recv, 1)  # blocks: the place is learnt
            await asyncio.sleep(0)
            through(still_the_owner, None)
            through(still_the_owner, None)

        try:
            await asyncio.gather(steps(), send_after_claims(loop, b, 1))
        finally:
            a.close()
            b.close()
        stats = loop.syslet_stats()
        return owned, stats.claimed_steps, stats.predicted_steps

    assert sysletloop.run(main(), migrate_steps=True) == ([True, True], 1, 0)


def test_a_known_place_outside_a_step_is_not_claimed() -> None:
    # The same place reached by a call the loop runs inline (to_thread's fast path) or
    # by another thread: neither is a step of the loop, neither is claimed at the call.
    async def main() -> tuple[int, int, list[bytes]]:
        loop = this_loop()
        a, b = pair()

        async def steps() -> None:
            recv_one(a)  # blocks: the place is learnt

        try:
            await asyncio.gather(steps(), send_after_claims(loop, b, 1))
            b.send(b"xy")
            inline = await asyncio.to_thread(recv_one, a)  # bytes there: no block
            elsewhere: list[bytes] = []
            thread = threading.Thread(target=lambda: elsewhere.append(recv_one(a)))
            thread.start()
            await until(lambda: not thread.is_alive(), DEADLOCK)
        finally:
            a.close()
            b.close()
        stats = loop.syslet_stats()
        return stats.claimed_steps, stats.predicted_steps, [inline, *elsewhere]

    assert sysletloop.run(main(), migrate_steps=True) == (1, 0, [b"x", b"y"])


def test_the_sampler_naps_while_the_loop_polls_and_the_loop_wakes_it() -> None:
    async def main() -> tuple[bool, bool]:
        loop = this_loop()
        sy = loop._syslet
        seen = threading.Event()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if sy.sampler_napping:
                    seen.set()
                done.wait(0.001)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for _ in range(200):  # idle: the sampler backs off and naps
                await asyncio.sleep(0.02)
                if seen.is_set():
                    break
            # Back from a poll: the loop woke the sampler before running this step.
            napping_now = sy.sampler_napping
        finally:
            done.set()
            watcher.join()
        return seen.is_set(), napping_now

    assert sysletloop.run(main(), migrate_steps=True) == (True, False)


def _watched(loop: object) -> int:
    from sysletloop import _stepcalls

    return _stepcalls.watched(loop)


def _call_events(code: types.CodeType) -> int:
    from sysletloop import _stepcalls

    tool = _stepcalls._tool
    assert tool is not None
    events: int = sys.monitoring.get_local_events(tool, code)  # type: ignore[attr-defined]
    return events


def test_the_threads_of_a_burst_are_gone_after_close() -> None:
    # A burst asks the starter for spares ahead of the claims; they leave with the loop.
    async def main() -> int:
        loop = this_loop()
        a, b = pair()
        got: list[bytes] = []

        async def reader() -> None:
            got.append(recv_one(a))

        try:
            readers = [asyncio.ensure_future(reader()) for _ in range(6)]
            for i in range(6):
                await until(lambda i=i: loop.syslet_stats().claimed_steps > i, DEADLOCK)
                await asyncio.sleep(0.005)
                b.send(bytes([i]))
            await asyncio.gather(*readers)
        finally:
            a.close()
            b.close()
        return len(got)

    assert sysletloop.run(main(), migrate_steps=True) == 6
    assert wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("sysletloop-")]
    )
