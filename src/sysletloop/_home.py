"""The home thread of one ``run_forever`` call: where it waits, and what it is told.

``run_forever`` must return in the thread that called it (the *home* thread), however
many times the loop moved meanwhile. When the home thread's own inline call blocks, the
loop goes on elsewhere and the home thread, once its call returns, waits here until the
loop stops. While it waits it runs *jobs* that only it can do: registering a signal
handler must happen on the main thread, and the home thread is the main thread when
``asyncio.run`` was called from it.

Thread rules: every field is guarded by ``cond``'s lock. ``finish`` is called once, by
the last owner when the loop stops (or by the home thread itself when it never lost the
loop, in which case nobody waits). ``post`` may be called by any thread; ``serve_until_
finished`` only by the home thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

__all__ = ["HomeRun"]


class _Job:
    __slots__ = ("done", "error", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


class HomeRun:
    __slots__ = ("cond", "error", "finished", "ident", "interrupt", "jobs", "serving")

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.cond = threading.Condition(threading.Lock())
        self.finished = False
        self.error: BaseException | None = None
        self.interrupt: BaseException | None = None
        self.jobs: deque[_Job] = deque()
        # True from the moment the deposed home thread's call has returned: from then on
        # it runs posted jobs promptly (it is about to serve, or serving).
        self.serving = False

    def finish(self, error: BaseException | None) -> None:
        """The loop stopped (with ``error`` escaping it, if any). Called once."""
        with self.cond:
            self.finished = True
            self.error = error
            self.cond.notify_all()

    def run_on_home(
        self, fn: Callable[[], None], if_busy: Callable[[], None]
    ) -> BaseException | bool | None:
        """Run ``fn`` on the home thread.

        If the home thread is serving, wait for ``fn`` to run there and return the
        exception it raised (or ``None``). If the home thread is busy (inside a blocked
        call), queue ``if_busy`` to run there when it is free and return ``False``.
        """
        with self.cond:
            if not self.serving:
                self.jobs.append(_Job(if_busy))
                return False
            job = _Job(fn)
            self.jobs.append(job)
            self.cond.notify_all()
        job.done.wait()
        return job.error

    def start_serving(self) -> None:
        """Home thread: its blocked call returned; jobs posted from now on run soon."""
        with self.cond:
            self.serving = True

    def serve_until_finished(self) -> None:
        """Home thread: run posted jobs until the loop has stopped. May raise
        ``KeyboardInterrupt`` (a signal handler raising while we wait); call again."""
        with self.cond:
            while True:
                while self.jobs:
                    job = self.jobs.popleft()
                    self.cond.release()
                    try:
                        job.run()
                    finally:
                        self.cond.acquire()
                if self.finished:
                    return
                self.cond.wait()
