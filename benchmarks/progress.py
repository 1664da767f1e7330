"""Progress for long runs: a rich progress bar on stderr, or plain lines without rich."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def step(self, what: str) -> None: ...
    def log(self, message: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    """No output at all (tests)."""

    def start(self, total: int) -> None:
        pass

    def step(self, what: str) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class Plain:
    """One line per step on stderr: ``[ 12/140   31s] timer_lag: trio (repeat 2/3)``."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.t0 = time.perf_counter()

    def start(self, total: int) -> None:
        self.total = total
        self.t0 = time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.t0
        print(
            f"[{self.done:>4}/{self.total:<4} {elapsed:5.0f}s] {what}", file=sys.stderr, flush=True
        )

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class Rich:
    """A rich progress bar (description, bar, count, elapsed, remaining) on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._console = Console(stderr=True)
        self._bar = RichProgress(
            TextColumn("{task.description:<44}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._task: Any = None

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("starting", total=total)

    def step(self, what: str) -> None:
        self._bar.update(self._task, advance=1, description=what[:44])

    def log(self, message: str) -> None:
        self._bar.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        self._bar.stop()


def default_progress() -> Progress:
    """A rich bar on a terminal; plain lines when stderr is a file or rich is missing."""
    if not sys.stderr.isatty():
        return Plain()
    try:
        return Rich()
    except ImportError:
        return Plain()
