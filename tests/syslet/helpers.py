"""Small tools the syslet-only tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import sysletloop


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (a generous bound:
    these tests assert behaviour, never speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sysletloop-")]


def this_loop() -> sysletloop.SysletEventLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    return loop


class Gate:
    """A blocking call that blocks until released: ``started`` says it is running."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.thread: int | None = None

    def __call__(self, value: object = None) -> object:
        self.thread = threading.get_native_id()
        self.started.set()
        if not self.release.wait(60):
            raise TimeoutError("gate never released")
        return value


@contextlib.contextmanager
def python_child(
    code: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """``python -c code args...`` with text pipes; killed and reaped on the way out
    whatever the test did (a test that fails half-way must not leave it running)."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
