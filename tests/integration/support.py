"""Small tools the integration tests share."""

from __future__ import annotations

import threading
import time

import anyio

import sysletloop


class Gate:
    """A blocking call that blocks until released: ``started`` says it is running,
    ``thread`` which thread ran it. Each instance is a callable object of its own (the
    blocking predictor keeps one profile per instance), so a fresh gate starts inline."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.thread: int | None = None

    def __call__(self, value: object = None) -> object:
        self.thread = threading.get_ident()
        self.started.set()
        if not self.release.wait(60):
            raise TimeoutError("gate never released")
        return value


class Overlap:
    """A blocking call that sleeps *seconds* and counts how many calls of it run at once:
    ``peak`` is the most seen. The count is kept under a lock, as the calls run on several
    threads."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1


async def wait_for(event: threading.Event) -> None:
    """Wait (in anyio, polling every millisecond, at most 30 s) until *event* is set."""
    with anyio.fail_after(30):
        while not event.is_set():
            await anyio.sleep(0.001)


def sleep_and_return(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def syslet_calls_done(stats: sysletloop.SysletStats) -> int:
    """Calls a syslet loop has finished, by whichever path: inline, or on another thread
    (blocked, or sent there by the predictor) and collected from the ring."""
    return stats.inline_completions + stats.completions_drained
