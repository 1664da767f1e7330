"""Small tools the integration tests share."""

from __future__ import annotations

import threading

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


def syslet_calls_done(stats: sysletloop.SysletStats) -> int:
    """Calls a syslet loop has finished, by whichever path: inline, or on another thread
    (blocked, or sent there by the predictor) and collected from the ring."""
    return stats.inline_completions + stats.completions_drained
