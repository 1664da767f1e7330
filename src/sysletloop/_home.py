"""The home thread of one ``run_forever`` call: where it waits, and what it is told.

``run_forever`` must return in the thread that called it (the *home* thread), however
many times the loop moved meanwhile. When the home thread's own inline call blocks, the
loop goes on elsewhere. Once the call returns, the home thread takes the loop back (home
affinity, see "Going home" in ``_handover``) or, when it cannot (the run ended meanwhile, or
the option is off), waits here until the loop stops. Some jobs only it can do:
registering a signal handler must happen on the main thread, and the home thread is the
main thread when ``asyncio.run`` was called from it. While it is busy (blocked in its
call, or waiting to take the loop back) such jobs queue here and it runs them when it is
free: as the owner again (``run_jobs``), or while it waits for the end
(``serve_until_finished``).

Thread rules: ``cond``'s lock guards ``finished``, ``error``, ``jobs`` and ``serving``.
``finish`` is called once, by the last owner when the loop stops (or by the home thread
itself when it never lost the loop, in which case nobody waits). ``run_on_home`` may be
called by any thread; ``serve_until_finished`` and ``run_jobs`` only by the home thread.
``interrupt`` and ``returned`` are the home thread's own: written and read only there.
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
    __slots__ = (
        "cond",
        "error",
        "finished",
        "ident",
        "interrupt",
        "jobs",
        "returned",
        "serving",
    )

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.cond = threading.Condition(threading.Lock())
        self.finished = False
        self.error: BaseException | None = None
        self.interrupt: BaseException | None = None
        self.jobs: deque[_Job] = deque()
        # The home thread's own call that blocked and has returned, held while the home
        # thread waits to take the loop back; it delivers the outcome itself.
        self.returned: object = None
        # True once the home thread waits for the end of the run (serve_until_finished):
        # from then on it runs posted jobs promptly.
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
        """Home thread, free and about to wait for the end of the run: jobs posted from
        now on run promptly (the caller waits for them). Set before the home thread's
        outcome is posted, so that code resumed by that outcome finds it serving."""
        with self.cond:
            self.serving = True

    def run_jobs(self) -> None:
        """Home thread, the loop's owner again: run the jobs queued while it was busy."""
        with self.cond:
            jobs, self.jobs = self.jobs, deque()
        for job in jobs:
            job.run()

    def serve_until_finished(self) -> None:
        """Home thread: run posted jobs until the loop has stopped (jobs posted from now
        on run promptly: the caller waits for them). May raise
        ``KeyboardInterrupt`` (a signal handler raising while we wait); call again."""
        self.start_serving()
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
