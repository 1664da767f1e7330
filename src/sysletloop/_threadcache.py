"""A cache of worker threads: run a job on an idle thread, or on a new one.

The syslet loop needs threads for two things: a thread to take over the loop when the
loop's current thread blocks, and (through that) one thread per blocked call, which
becomes idle when its call returns. Starting a thread costs 100-250 us and blocks the
caller until the new thread runs; handing a job to an idle one costs a lock release.

Glossary
    worker   a thread started by this cache; it runs jobs, then waits idle for the next.
    slot     an idle worker's mailbox: a job field and a lock the worker sleeps on.
    job      a callable with no arguments. It must not raise: a job that raises has a
             bug, and its exception is reported through ``threading.excepthook``.

Thread rules
    ``_lock`` guards ``_idle``, ``_workers``, ``_backlog``, ``_starting``,
    ``_closed``, ``_spares``/``_spares_until`` and the counters; ``_wanted`` (a
    Condition on ``_lock``) wakes the starter. A slot's ``job`` is written by the
    thread that pops the slot from ``_idle`` (under ``_lock``), before it releases
    the slot's lock; the worker reads it after acquiring that lock.
    A worker leaves ``_idle`` only by being popped (given a job) or by removing itself
    after its idle timeout; both under ``_lock``, so a job is never handed to a worker
    that has already decided to exit:
        1. the worker's wait times out;
        2. under ``_lock`` it looks for its slot in ``_idle``: still there, it removes
           it and exits; gone, somebody popped it and is about to (or did) release it
           with a job, so it waits for that release and runs the job.

Two ways in. ``submit`` hands the job to an idle worker or starts a thread for it right
there (the caller waits while the thread starts: fine for the watchdog, which has
nothing better to do). ``submit_soon`` never waits: with no idle worker, the job joins
the *backlog*, which workers drain before they go idle, and a *starter* thread starts
workers for it. The loop uses ``submit_soon``: a burst of 20 calls sent to threads at
once must not stall the loop for 20 thread starts (100-700 us each on a busy VM).

When threads cannot be started (a PID limit, RLIMIT_NPROC, memory): ``submit``,
``ensure_spare`` and ``start_spare`` raise what ``Thread.start`` raised (the job was not
taken), and the caller decides; the starter never leaves a job behind:
a backlogged job it cannot start a worker for, and that no worker is being started for,
goes back to the cache's owner through ``on_stranded`` (exactly once: it is popped from
the backlog under ``_lock``), and the failure is reported through ``on_start_failed``.
A worker that goes idle calls ``on_idle`` (the loop waits for one when short of
threads). The three callbacks run outside ``_lock``, on the thread that saw the event,
and must not raise (what they raise is reported and ignored).

Spares ahead of demand: ``want_spares(n, until)`` asks the starter to keep ``n`` workers
idle until the deadline (topping up as they are taken), for a burst of hand-overs that
would otherwise each wait for a thread start (the step sampler's claims, which come in
bursts when many tasks block at once). Past the deadline nothing more is started and the
spares age out like any idle worker.

Idle workers are used last-in first-out, so a warm thread is reused and the others age
out (as trio's thread cache and anyio's worker threads do). There is no reaper thread:
each worker times itself out.

Rejected: ``concurrent.futures.ThreadPoolExecutor`` queues work behind a shared queue
with a fixed cap and no way to hand a job to a specific idle thread; we need "this job
now, on some thread", never queued behind other work.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["ThreadCache"]

Job = Callable[[], None]

_counter = itertools.count(1)


class _Slot:
    __slots__ = ("job", "wakeup")

    def __init__(self) -> None:
        self.job: Job | None = None
        self.wakeup = threading.Lock()
        self.wakeup.acquire()


class ThreadCache:
    """Worker threads that time out when idle. Any thread may call any method."""

    def __init__(
        self,
        *,
        idle_timeout: float,
        name: str,
        on_idle: Callable[[], None] | None = None,
        on_stranded: Callable[[Job], None] | None = None,
        on_start_failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._idle_timeout = idle_timeout
        self._name = name
        self._on_idle = on_idle
        self._on_stranded = on_stranded
        self._on_start_failed = on_start_failed
        self._lock = threading.Lock()
        self._idle: list[_Slot] = []
        self._workers: dict[_Slot, threading.Thread] = {}
        self._closed = False
        self._backlog: deque[Job] = deque()
        self._starting = 0  # workers the starter has started that took no job yet
        self._wanted = threading.Condition(self._lock)
        self._starter: threading.Thread | None = None
        self._spares = 0  # idle workers the starter keeps, until _spares_until
        self._spares_until = 0.0
        self.started = 0
        self.reused = 0

    def submit(self, job: Job) -> None:
        """Run ``job`` on an idle worker, or on a new one if none is idle."""
        with self._lock:
            if self._hand_to_idle(job):
                return
        self._start(job)

    def submit_soon(self, job: Job) -> None:
        """Run ``job`` on an idle worker, or on the next worker free; never waits for a
        thread to start."""
        with self._lock:
            if self._hand_to_idle(job):
                return
            self._backlog.append(job)
            starter = self._starter_to_start()
        if starter is not None:
            self._start_starter(starter, job)

    def want_spares(self, count: int, until: float) -> None:
        """Keep ``count`` workers idle until ``until`` (``time.monotonic()``), started by
        the starter thread; never waits for a worker to start. A wish still in force
        for more spares, or for longer, is kept (the larger count, the later deadline)."""
        with self._lock:
            if self._closed:
                return
            if time.monotonic() < self._spares_until:
                count = max(count, self._spares)
                until = max(until, self._spares_until)
            self._spares = count
            self._spares_until = until
            starter = self._starter_to_start()
        if starter is not None:
            self._start_starter(starter, None)

    def _starter_to_start(self) -> threading.Thread | None:
        """Under ``_lock``: wake the starter; or, when there is none, make one for the
        caller to start outside the lock."""
        if self._starter is not None:
            self._wanted.notify()
            return None
        self._starter = threading.Thread(
            target=self._starter_main, name=f"{self._name}-starter", daemon=True
        )
        return self._starter

    def _start_starter(self, starter: threading.Thread, job: Job | None) -> None:
        try:
            starter.start()  # once per cache: after this, starting is its job
        except BaseException:
            with self._lock:  # no starter: take the job back, the caller decides
                self._starter = None
                if job is not None and job in self._backlog:
                    self._backlog.remove(job)
            raise

    def _hand_to_idle(self, job: Job) -> bool:
        """Under ``_lock``: give ``job`` to the most recently idle worker, if any."""
        if self._closed:
            raise RuntimeError("thread cache is closed")
        if not self._idle:
            return False
        slot = self._idle.pop()
        self.reused += 1
        slot.job = job
        slot.wakeup.release()
        if self._spares:
            self._wanted.notify()  # the starter tops the spares up
        return True

    def start_spare(self) -> None:
        """Start one more worker, to wait idle (blocks while it starts); raises what
        ``Thread.start`` raised."""
        self._start(None)

    def has_idle(self) -> bool:
        with self._lock:
            return bool(self._idle)

    def busy_count(self) -> int:
        """Workers not idle (running a job, or starting)."""
        with self._lock:
            return len(self._workers) - len(self._idle)

    def ensure_spare(self) -> None:
        """Make sure one worker is idle, starting one if needed (blocks while it starts)."""
        with self._lock:
            if self._closed or self._idle:
                return
        self._start(None)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def threads(self) -> list[threading.Thread]:
        """The live workers, busy or idle."""
        with self._lock:
            return list(self._workers.values())

    def close(self, *, join_timeout: float = 5.0) -> None:
        """Idle workers exit now (joined here); busy ones exit when their job returns."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            joinable = [self._workers[slot] for slot in idle if slot in self._workers]
            self._wanted.notify()  # backlogged jobs still run (as a pool's queue would)
            starter = self._starter
        if starter is not None and starter is not threading.current_thread():
            starter.join(join_timeout)
        for slot in idle:
            slot.job = None
            slot.wakeup.release()
        for thread in joinable:
            if thread is not threading.current_thread():
                thread.join(join_timeout)

    def _starter_main(self) -> None:
        """Start one worker per backlogged job that no worker will take soon. A start
        that fails gives the uncovered jobs back (``on_stranded``); the starter then
        waits for the next job, and tries again then."""
        stranded: list[Job] = []
        try:
            while True:
                with self._lock:
                    while not self._closed and not self._want_a_worker():
                        self._wanted.wait()
                    if self._closed and len(self._backlog) <= self._starting:
                        return  # closed, and every backlogged job has a worker coming
                    self._starting += 1
                try:
                    self._start(None, from_starter=True)
                except BaseException as exc:  # no thread: no job may wait for one
                    with self._lock:
                        self._starting -= 1
                        while len(self._backlog) > self._starting:
                            stranded.append(self._backlog.pop())
                    stranded.reverse()
                    self._report(self._on_start_failed, exc)
                    while stranded:
                        self._report(self._on_stranded, stranded.pop(0))
                    del exc
        finally:
            with self._lock:  # dying (closed, or a bug): the next submit_soon starts one
                self._starter = None
                while len(self._backlog) > self._starting:
                    stranded.append(self._backlog.pop())
            for job in reversed(stranded):
                self._report(self._on_stranded, job)

    def _want_a_worker(self) -> bool:
        """Under ``_lock``: a backlogged job with no worker coming, or spares wanted."""
        if len(self._backlog) > self._starting:
            return True
        if self._spares and time.monotonic() < self._spares_until:
            return len(self._idle) + self._starting - len(self._backlog) < self._spares
        self._spares = 0
        return False

    @staticmethod
    def _report(callback: Callable[[Job], None] | Callable[[BaseException], None] | None,
                arg: object) -> None:
        if callback is None:
            return
        try:
            callback(arg)  # type: ignore[arg-type]  # the pairs above match
        except BaseException as exc:
            ThreadCache._report_error(exc)

    @staticmethod
    def _report_error(exc: BaseException) -> None:
        """A callback raised: report it as a thread's uncaught exception, and go on."""
        with contextlib.suppress(BaseException):
            threading.excepthook(
                threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, None))
            )

    def _start(self, job: Job | None, *, from_starter: bool = False) -> None:
        slot = _Slot()
        thread = threading.Thread(
            target=self._worker_main,
            args=(slot, job, from_starter),
            name=f"{self._name}-{next(_counter)}",
            daemon=True,
        )
        with self._lock:
            if self._closed and not from_starter:
                if job is None:
                    return
                raise RuntimeError("thread cache is closed")
            self.started += 1
            self._workers[slot] = thread
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self.started -= 1
                self._workers.pop(slot, None)
            raise

    def _worker_main(self, slot: _Slot, job: Job | None, from_starter: bool) -> None:
        if from_starter:
            with self._lock:
                self._starting -= 1
        try:
            while True:
                if job is not None:
                    job()
                    job = None
                with self._lock:
                    if self._backlog:
                        job = self._backlog.popleft()
                        continue
                    if self._closed:
                        return
                    self._idle.append(slot)
                if self._on_idle is not None:
                    try:
                        self._on_idle()
                    except BaseException as exc:
                        self._report_error(exc)
                if not slot.wakeup.acquire(timeout=self._idle_timeout):
                    with self._lock:
                        if slot in self._idle:
                            self._idle.remove(slot)
                            return
                    # Popped between our timeout and our look: a job is on its way.
                    slot.wakeup.acquire()
                job = slot.job
                slot.job = None
                if job is None:  # closed while idle
                    return
        finally:
            with self._lock:
                self._workers.pop(slot, None)
