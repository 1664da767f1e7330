"""The syslet event loop: asyncio's selector loop, plus blocking calls that run inline.

A blocking callable submitted to the loop (``sysletloop.call``, ``run_in_executor(None,
...)``, ``asyncio.to_thread``) is queued, and the task awaiting it suspends. At the end of
the current iteration the loop runs the call *inline*, in its own thread, outside any
task step, with the watchdog armed. If the call returns before the threshold, its future
is resolved there and then: no other thread is involved. If the watchdog sees the call
still running past the threshold, the loop is handed to another thread (a cached spare,
or a new one), which carries on with the loop's iterations; the blocked thread finishes
the call, posts the outcome to the completion ring and steps out. This is Linux's 2007
*syslets* in user space: the caller continues in a new task (its thread id changes), the
blocked call completes in the old one and reports to a ring.

Glossary
    owner      the one thread allowed to run the loop's iterations at a given instant.
    epoch      a counter bumped at every change of owner; an owner remembers the epoch it
               started with and stops touching the loop once the counter has moved.
    inline     the call the owner is running right now, in a one-item list, the *cell*
               (``_inline``); ``None`` between calls.
    claim      the watchdog's verdict "this inline call blocked": it empties the cell,
               bumps the epoch and hands the loop to a new owner.
    deposed    what the thread running a claimed call is, once the call returns: it
               posts the outcome to the ring and leaves the loop's code at once (the
               home thread instead keeps it and goes home: see "Going home").
    home       the thread that called ``run_forever``; it must also be the one to return
               from it (see ``_home``).
    pending    calls submitted but not yet started (FIFO, ``_pending``).
    blocked    calls claimed whose outcome has not been drained from the ring yet.

Thread rules
    Loop state (everything asyncio keeps: ready queue, timers, selector; and ours:
    ``_pending``, the counters without a lock) is touched only by the owner, as in stock
    asyncio. ``_own_lock`` guards the hand-over: the claimer's reads of ``_inline``, ``_epoch``,
    ``_blocked_total``/``_blocked_drained``/``_peak_blocked``/``_migrations`` and
    ``_thread_id`` writes after the first. The shortage state (``_short_of_threads``,
    ``_max_blocked_now``, ``_cap``, ``_thread_start_failures``) is written under
    ``_own_lock`` by any thread that saw a start fail, and read by the owner without it:
    a stale read lets at most one more call start inline, which then stalls instead of
    moving (assumed: the GIL makes the store visible; a free-threaded build would want
    these reads under the lock, off the fast path as they are). The ring, the watchdog
    and the thread cache state their own rules.

The hand-over, step by step (the race between a call returning and the watchdog):
    1. The owner puts the call in a fresh cell, sets ``_inline = cell``, arms the
       watchdog with the cell, runs the call.
    2a. The call returns. The owner pops the cell: it got the call back, so nobody
        claimed it; it clears ``_inline`` and carries on as owner.
    2b. The watchdog fires. Under ``_own_lock`` it checks ``_inline is cell`` and pops
        the cell: it got the call, so it bumps the epoch, then (outside the lock) gives
        a thread the job "own the loop from this epoch".
    ``list.pop`` is one atomic step (the GIL; a per-object lock on free-threaded
    builds), so exactly one of 2a/2b gets the call out of the cell: a claim that comes
    too late finds it empty, and an owner whose call was claimed finds it empty too. It
    then posts its outcome to the ring and unwinds without touching loop state (not
    even ``_inline`` or the watchdog: those are the new owner's). The cell, rather than
    a lock around a compare-and-clear, keeps the owner's fast path to one pop.
    ``_thread_id`` keeps the old owner's id until the new owner sets its own, so
    ``is_running()`` never sees ``None`` mid-hand-over. Claims happen only while a call
    runs inline, and the owner checks the epoch after every handle and every call.

Eager calls and taking the loop back (``call_eager``):
    An eager call runs ``fn`` inside the task step itself, with the watchdog armed and no
    suspension. If it blocks, the claim works as above, except that the blocked thread
    is in the middle of a task step: the coroutine above ``fn`` must not go on until
    that thread owns the loop again. So, when ``fn`` returns, the thread files a *steal
    request*, queues a grant handle (``call_soon_threadsafe``) and waits. The current
    owner grants it when that handle's turn comes (or when it is about to end the run):
    under ``_own_lock`` it bumps the epoch and sets ``_thread_id``, installs the
    requester's ``_owner_state``, lets go of its own thread state, then releases the
    requester; after the handle it sees it is no longer the owner and steps out.
    The requester re-enters its task (``_enter_task``: the new owner had taken it out
    of asyncio's current-task table, keyed by loop, so that it could run other tasks,
    and left it in ``_interrupted_tasks`` before running anything; the grant, a lock
    release, orders that write before the requester's read) and finishes its step; at
    the end of that handle it sees the epoch moved while it owns the loop again, and
    starts a fresh iteration. On 3.14+ asyncio keeps the current task per *thread* (C
    thread state): the new owner's thread has none, ``current_task`` there is None, and
    there is nothing to take out or put back, as the requester's thread still holds its
    task. (3.14+ also files each task in the list of the thread that creates it: see
    ``_alltasks`` for what that means for ``asyncio.all_tasks``.) A run never ends while
    a steal request is pending: the last owner hands over instead, and the requester
    ends it.

Going home (``home_affinity``, on by default):
    The home thread is where the loop should run: the thread that called
    ``run_forever`` (the main thread, under ``asyncio.run``), where Python runs signal
    handlers and where code made before the first migration expects to be called again
    (a sqlite3 connection, thread-locals). So when the home thread is deposed and free
    again (its claimed call returned, or it granted a take-back), it takes the loop back
    as an eager caller does, as a Go thread leaving a system call takes back its P:
      * Who requests: only the home thread, only when deposed and not blocked, with a
        ``_StealRequest`` (``eager=False``) in the same FIFO as eager take-backs.
      * Who grants: the owner, when the queued grant handle's turn comes (the end of a
        handle, never inside a task step or an inline call), or the owner about to end
        the run (``at_stop``; it grants instead of ending, and the home thread ends the
        run itself). The granter is deposed by the grant and returns to the thread
        cache as a spare, as after an eager take-back.
      * The home thread's own call: its outcome is not posted to the ring but kept
        (``HomeRun.returned``) and delivered by the home thread itself once it owns the
        loop again (``_drive_home``), with the jobs queued for it (signal handlers).
      * Several blocked calls returning at once: only the home thread's goes home; the
        others post to the ring and their threads become spares, as before. Requests are
        granted oldest first, one per grant handle.
      * The run ending first: the owner that ends a run sets ``_run_ending`` under
        ``_own_lock`` when it finds no request (``_await_stealer``); the home thread files
        its request under the same lock only while it is not set. So either the request
        is filed first and the ending owner grants it, or the run ends and the home
        thread posts its call's outcome to the ring (the next run, or ``close``, sees it)
        and waits for the end as without the option. A home call that returns after
        ``close()`` cannot happen: ``run_forever`` has not returned, so the loop is
        still running and cannot be closed.
      * Calls predicted to block (``predict_blocking``): on the home thread they are not
        sent to a spare but *handed off*: the owner claims its own call before starting
        it (``_hand_off``: the claim above, minus the watchdog and the wait), so the
        loop goes on elsewhere at once and the call runs on the home thread, like every
        call that starts while the home thread is free. On any other owner they are
        sent to a spare as before (no thread identity to keep there). A hand-off that
        finds no thread leaves the call inline, under the watchdog.
      * Ctrl-C while the home thread waits for its grant: it requests a stop and raises
        the KeyboardInterrupt once it owns the loop again, as it would from a callback.
    Cost: one more hand-over (a lock release and a thread wake-up) per blocked call that
    ran on the home thread; see the benchmark ``blocked_cost`` for what it measures.

When threads run out (a cgroup's pids.max, RLIMIT_NPROC, threads-max, memory):
    The loop is never handed to a thread that does not exist. After the pop (2b) the
    claimer gives the job to an idle worker or starts one; each claim leaves a
    ``_HandOver`` record (under ``_own_lock``, set with the pop), ``_PENDING`` until the
    job has a thread (``_STARTED``) or cannot have one (``_FAILED``: the start raised,
    at a limit or for want of memory). The blocked thread, when its call returns and it
    finds the cell empty, looks at the record for its cell (waiting while it is
    pending, at most one thread start): started, it is deposed as in 2b; failed, nobody
    else has run the loop, so it keeps it, undoes the claim's counts and carries on
    (``_hand_over_failed``). The call stalled the loop until it returned, as a blocking
    callback stalls a stock loop: a *stall* (``stalled_calls``), never a hang. That is
    the one path where a failed start meets a call already running inline, and it
    cannot be closed without a thread reserved before every inline call (the hot path
    this loop exists to keep cheap).
    The failure is noted (``_note_shortage``, logged once with the limit found) and
    makes the loop *short of threads*: ``_max_blocked_now`` drops to 0, so every call
    takes the slow branch of ``_run_pending_calls``, where a call starts inline only if
    a worker is idle (a blocked call's thread that came back), or if no thread can ever
    come back (nothing blocked, sent away or taken over: waiting would be the hang). Any
    other call waits in ``_pending``, as beyond the cap (``waited_for_threads``), and
    the loop sleeps; a worker going idle wakes it (``on_idle``), a completion wakes it,
    and a timer (``_retry_threads``) tries a start with back-off. The first start that
    succeeds ends the shortage and re-reads the limits. While short, calls are not sent
    away (the predictor) and eager calls take the queued path. The cap itself
    (``_cap``) is ``max_blocked`` lowered to what the process's limits leave, read when
    the threads start (``_limits``), so that in a container the shortage is rare.
    A call sent away that the starter cannot start a thread for comes back
    (``on_stranded`` then ``_requeue_stranded``: popped from the backlog under the
    cache's lock, so exactly once) and goes to the head of the queue.

Faults, and what each costs (every one: the loop goes on, each call resolves once, the
cause is logged once):
    * A thread start fails in the claim: the stall above. In ``ensure_spare`` after a
      claim, or in the starter: nothing is lost, the loop is short of threads.
    * The starter thread cannot start: ``_send_away`` takes the call back (the cache
      removes it from its backlog) and the call runs by the short-of-threads rule.
    * The watchdog thread cannot start: the Python one is tried, then ``NoWatchdog``
      (calls run inline to the end: stalls); the retry timer and ``_after_stall`` try
      again. A watchdog that dies (the Python one survives its own faults; see
      ``_pywatchdog``) is noticed by the next call that stalls, and replaced.
    * An exception inside the claim: before the pop (MemoryError for the record, or a
      bug), nothing was claimed and the call keeps the loop (``_claim`` logs it); after
      the pop (MemoryError building the job or starting the thread), the hand-over is
      marked failed, as for a failed start.
    * MemoryError in the successor before it runs the loop (``OwnerThreadState``): the
      loop is already its (the epoch moved), so it waits and tries again
      (``_new_owner_state``); a migration's telemetry failing is logged and skipped
      (``_note_migration``, ``_note_eager_migration``). What is left of ``_own_from``
      before ``_drive`` (the current-task table) allocates nothing.
    * A failure of the ``ThreadCache`` callbacks is reported through
      ``threading.excepthook``; the cache goes on.

Where this departs from stock asyncio, on purpose: a blocking callable runs in the
loop's thread when it does not block, and in whichever thread was the owner when it did
(the home thread, unless the home thread was itself blocked); ``run_forever`` may return
only when its calling thread is free again (its own inline call returned), as stock
asyncio's cannot return in the middle of a blocking callback.

Rejected alternatives
    * Reserving a successor before every inline call, so that a claim never meets a
      failed start: a lock round trip (or a thread start) on the fast path of every
      call, to remove a stall that only a failed start can cause.
    * The claimer reserving the successor (an idle worker, or one it starts) *before*
      it pops the cell: correct, but the call stays inline for the whole thread start
      (100 us to over 10 ms on a loaded VM), so calls that block for a few ms returned
      before they could move, and the loop did not go on any sooner for it.
    * Holding every call while any start has failed, until one succeeds: calls would
      wait on the retry timer even with idle workers, and forever where no start will
      ever succeed again (a cgroup filled by the application itself).
    * Running the call inside the task step by default (what ``call_eager`` does): it
      cannot give ``run_in_executor`` its future, and it needs the take-back protocol
      above, so it is opt-in.
    * The watchdog thread becoming the owner itself (it is awake and holds the GIL when
      it claims): it saves one thread wake-up per migration but leaves no watchdog while
      a replacement starts; a parked spare costs one futex wake instead.
    * The home thread handing the loop to a worker at once and only waiting: no call
      would ever run inline in the caller's thread (a hop on every ``run_forever``), and
      the syslet promise is that nothing moves unless something blocks.
    * A lock around "is this call still inline?": two lock operations per call on the
      fast path where one atomic ``list.pop`` decides the same race.
    * Sending every call to a pool, with the loop merely not waiting: that is
      ``to_thread`` (45-130 us a call here), the cost this loop exists to remove.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import errno
import functools
import heapq
import inspect
import logging
import os
import selectors
import sys
import threading
import time
import warnings
import weakref
from asyncio import base_events
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._alltasks import install as _install_all_tasks
from ._callrecord import CallRecord
from ._home import HomeRun
from ._limits import MACHINERY_THREADS, ThreadLimit, cap_for, read_thread_limit
from ._nowait import WOULD_BLOCK, NowaitReads, positional_read
from ._options import LoopOptions
from ._profile import (
    MAX_PROFILES,
    SLOW_CALL,
    WARN_AFTER_MIGRATIONS,
    CallableStats,
    Profile,
    ProfileTable,
)
from ._ring import CompletionRing
from ._stats import SysletStats
from ._threadcache import Job, ThreadCache
from ._threadstate import OwnerThreadState
from ._watchdog import NoWatchdog, Watchdog, make_watchdog, watchdog_kind

__all__ = ["SysletEventLoop"]

T = TypeVar("T")

logger = logging.getLogger("asyncio")

# asyncio's own tuning of the timer heap and the longest select() (base_events.py).
_MIN_SCHEDULED_TIMER_HANDLES: int = getattr(base_events, "_MIN_SCHEDULED_TIMER_HANDLES", 100)
_MIN_CANCELLED_FRACTION: float = getattr(base_events, "_MIN_CANCELLED_TIMER_HANDLES_FRACTION", 0.5)
_MAXIMUM_SELECT_TIMEOUT: float = getattr(base_events, "MAXIMUM_SELECT_TIMEOUT", 24 * 3600)
_format_handle: Callable[[Any], str] = getattr(base_events, "_format_handle", repr)
# How asyncio turns a pool's concurrent.futures CancelledError/InvalidStateError into its
# own (wrap_future); private in every supported version, hence looked up, not imported.
_convert_future_exc: Callable[[BaseException], BaseException] = vars(asyncio.futures)[
    "_convert_future_exc"
]

_live_loops: weakref.WeakSet[SysletEventLoop] = weakref.WeakSet()

# 3.14+: asyncio.all_tasks() must look at every thread's task list for this loop.
_install_all_tasks()


class _Handle(Protocol):
    """What the loop uses of an asyncio ``Handle`` (private fields included)."""

    _cancelled: bool

    def _run(self) -> None: ...


class _Timer(_Handle, Protocol):
    """... and of a ``TimerHandle``."""

    _when: float
    _scheduled: bool

    def __lt__(self, other: _Timer) -> bool: ...


class SysletEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose blocking calls start inline and migrate only if they
    block. Options: see :class:`sysletloop.LoopOptions`."""

    # Its tasks are created on whichever thread owns the loop at the time (_alltasks).
    _syslet_spans_threads = True

    # The loop's own state lives in slots, not in the instance dict, on 3.11 and 3.12:
    # asyncio's state (24 attributes) then keeps a dict whose keys CPython shares and
    # whose loads it specialises. With all 74 in the dict it gives up (past 30 keys),
    # and every ``self._x`` in asyncio's code and ours was a dict lookup, 16-26% of the
    # instructions of an iteration (callgrind, benchmarks.instructions). 3.13+ gives a
    # class with slots no inline values at all, which made it worse there: no slots.
    if sys.version_info < (3, 13):
        __slots__ = (
            "_blocked_drained", "_blocked_total", "_cancelled_before_start", "_cap",
            "_completions_drained", "_eager_blocked", "_eager_completions",
            "_eager_outstanding", "_eager_profiles", "_eager_redirected", "_epoch",
            "_faults_logged", "_hand_over", "_hand_over_done", "_home", "_home_returns",
            "_inline", "_inline_completions", "_interrupted_tasks", "_limit_read_at",
            "_max_blocked_now", "_migrations", "_nowait", "_nowait_reads",
            "_nowait_would_block", "_own_lock", "_owner_state", "_peak_blocked", "_pending",
            "_pending_counted_over_cap", "_predicted_blocking", "_profiles",
            "_queued_over_cap", "_quiesce_waiters", "_retry_delay", "_retry_handle", "_ring",
            "_run_ending", "_short_of_threads", "_stall_after", "_stalled_calls",
            "_steal_filed", "_steal_requests", "_syslet_closing", "_syslet_options",
            "_thread_limit", "_thread_start_failures", "_threads", "_waited_for_threads",
            "_watchdog",
        )

    if TYPE_CHECKING:
        # asyncio's private state this loop drives (typeshed leaves it out). Present,
        # with these meanings, in CPython 3.11 to 3.13.
        _ready: deque[_Handle]
        _scheduled: list[_Timer]
        _timer_cancelled_count: int
        _clock_resolution: float
        _selector: selectors.BaseSelector
        _debug: bool
        _stopping: bool
        _thread_id: int | None
        _current_handle: _Handle | None
        _default_executor: concurrent.futures.ThreadPoolExecutor | None
        _executor_shutdown_called: bool
        _signal_handlers: dict[int, asyncio.Handle]

        def _process_events(self, event_list: list[Any]) -> None: ...
        def _write_to_self(self) -> None: ...
        def _check_closed(self) -> None: ...
        def _check_running(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...

    def __init__(self, selector: Any = None, **options: Any) -> None:
        self._syslet_options = LoopOptions.from_mapping(options)
        if self._syslet_options.route_anyio:
            from ._anyio_route import install  # imports anyio: only when asked for

            install()
        super().__init__(selector)
        self._pending: deque[CallRecord] = deque()
        self._pending_counted_over_cap = 0
        self._ring: CompletionRing[CallRecord] = CompletionRing(_weak_wake(self))
        self._own_lock = threading.Lock()
        self._epoch = 0
        self._inline: list[object] | None = None
        self._owner_state: OwnerThreadState | None = None
        self._home: HomeRun | None = None
        self._watchdog: Watchdog | None = None
        self._threads: ThreadCache | None = None
        self._syslet_closing = False
        self._quiesce_waiters: list[asyncio.Future[None]] = []
        self._steal_requests: deque[_StealRequest] = deque()
        self._steal_filed = threading.Condition(self._own_lock)
        # The last claim's hand-over (see "When threads run out"); under _own_lock.
        self._hand_over: _HandOver | None = None
        self._hand_over_done = threading.Condition(self._own_lock)
        self._eager_outstanding = 0  # eager calls claimed and not yet taken back
        # Set (under _own_lock) by the owner that ends a run; the home thread may not
        # file a request to go home once it is set. Reset by run_forever.
        self._run_ending = False
        self._profiles = ProfileTable()
        self._eager_profiles: dict[object, Profile] = {}
        # Tasks of eager calls that blocked, by id of their cell, until taken back.
        self._interrupted_tasks: dict[int, asyncio.Task[Any] | None] = {}
        self._nowait = NowaitReads()
        # Thread shortage (see "When threads run out" in the header). _cap: the cap on
        # blocked calls, the option lowered to what the process's limits allow;
        # _max_blocked_now: what the submit path compares against, _cap or 0 while short
        # of threads (so that every call takes the slow branch). Written under _own_lock
        # (any thread may note a shortage), read by the owner without it.
        self._cap = self._syslet_options.max_blocked
        self._max_blocked_now = self._cap
        self._short_of_threads = False
        self._thread_limit: ThreadLimit | None = None
        self._limit_read_at = -1.0
        self._faults_logged: set[str] = set()
        self._retry_delay = _RETRY_MIN
        self._retry_handle: asyncio.TimerHandle | None = None
        self._stall_after = self._syslet_options.block_threshold + _STALL_MARGIN
        self._thread_start_failures = 0  # under _own_lock
        # Counters written by the owner only:
        self._inline_completions = 0
        self._completions_drained = 0
        self._queued_over_cap = 0
        self._cancelled_before_start = 0
        self._predicted_blocking = 0
        self._nowait_reads = 0
        self._nowait_would_block = 0
        self._eager_completions = 0
        self._eager_blocked = 0
        self._eager_redirected = 0
        self._waited_for_threads = 0
        self._stalled_calls = 0
        self._home_returns = 0
        # Counters written under _own_lock (the watchdog's claim writes them too):
        self._migrations = 0
        self._blocked_total = 0
        self._blocked_drained = 0
        self._peak_blocked = 0
        _live_loops.add(self)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not hasattr(self, "_ring"):
            return  # __init__ failed (a bad option): there is nothing to close
        super().__del__(_warn)  # type: ignore[call-arg]  # asyncio's signature has _warn

    # ------------------------------------------------------------------ public API

    @property
    def syslet_options(self) -> LoopOptions:
        return self._syslet_options

    def syslet_call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Submit ``fn(*args, **kwargs)`` to run syslet-style, in a copy of the current
        context; return the future of its outcome. Must be called in the loop's thread."""
        _check_blocking_callable(fn, "syslet_call")
        self._check_closed()
        return self._submit(fn, args, kwargs, contextvars.copy_context())

    def syslet_stats(self) -> SysletStats:
        """A snapshot of this loop's counters."""
        with self._own_lock:
            migrations = self._migrations
            in_flight = self._blocked_total - self._blocked_drained
            peak = self._peak_blocked
            failures = self._thread_start_failures
        threads = self._threads
        watchdog = self._watchdog
        return SysletStats(
            inline_completions=self._inline_completions,
            migrations=migrations,
            blocked_in_flight=in_flight,
            peak_blocked=peak,
            threads_started=threads.started if threads else self._threads_started_before,
            threads_reused=threads.reused if threads else self._threads_reused_before,
            queued_over_cap=self._queued_over_cap,
            completions_drained=self._completions_drained,
            cancelled_before_start=self._cancelled_before_start,
            predicted_blocking=self._predicted_blocking,
            nowait_reads=self._nowait_reads,
            nowait_would_block=self._nowait_would_block,
            eager_completions=self._eager_completions,
            eager_blocked=self._eager_blocked,
            eager_redirected=self._eager_redirected,
            watchdog=watchdog.kind if watchdog else watchdog_kind(),
            waited_for_threads=self._waited_for_threads,
            thread_start_failures=failures,
            stalled_calls=self._stalled_calls,
            max_blocked_now=self._cap,
            home_returns=self._home_returns,
        )

    _threads_started_before = 0
    _threads_reused_before = 0

    def syslet_callables(self) -> list[CallableStats]:
        """Per-callable telemetry, the callables that cost the most blocked time first.
        Call it from the loop's thread (or once the loop has stopped)."""
        stats = self._profiles.snapshots()
        stats.sort(key=lambda s: (s.blocked_seconds, s.migrations), reverse=True)
        return stats

    def syslet_report(self, top: int = 10) -> str:
        """A table of the ``top`` callables by blocked time: what to move off the loop
        (or leave to the predictor), and what the fast path serves."""
        rows = self.syslet_callables()[:top]
        header = (
            f"{'callable':<48} {'inline':>8} {'blocked':>8} {'predicted':>9} "
            f"{'mispred':>7} {'nowait':>7} {'blocked s':>10}"
        )
        lines = [header, "-" * len(header)]
        for r in rows:
            name = r.name if len(r.name) <= 48 else "..." + r.name[-45:]
            lines.append(
                f"{name:<48} {r.inline_completions:>8} {r.migrations:>8} {r.predicted:>9} "
                f"{r.mispredicted:>7} {r.nowait_hits:>7} {r.blocked_seconds:>10.3f}"
            )
        if not rows:
            lines.append("(no blocking calls yet)")
        return "\n".join(lines)

    def syslet_threads(self) -> list[threading.Thread]:
        """The worker threads this loop started that are still alive."""
        out = list(self._threads.threads()) if self._threads else []
        return out

    # ------------------------------------------------------- asyncio API, overridden

    def run_in_executor(  # type: ignore[override]  # typeshed's is variadic-generic
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if (
            executor is None
            and self._syslet_options.route_executor
            and self._default_executor is None
        ):
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            # A pool thread runs func in its own context, not the caller's: so do we,
            # in a fresh one (to_thread passes a ctx.run partial when it wants the
            # caller's).
            return self._submit(func, args, None, contextvars.Context())
        return super().run_in_executor(executor, func, *args)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the syslet calls still running (and queued), then shut down an
        executor set with ``set_default_executor``, as asyncio does."""
        self._executor_shutdown_called = True
        start = self.time()
        if not self._is_quiet():
            waiter: asyncio.Future[None] = self.create_future()
            self._quiesce_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                warnings.warn(
                    f"The executor did not finishing joining its threads within {timeout} seconds.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            finally:
                if waiter in self._quiesce_waiters:
                    self._quiesce_waiters.remove(waiter)
        if sys.version_info >= (3, 12):
            left = None if timeout is None else max(0.0, timeout - (self.time() - start))
            await super().shutdown_default_executor(left)
        else:
            await super().shutdown_default_executor()

    def run_forever(self) -> None:
        """Run until ``stop()`` is called, in this thread and in any the loop moves to.
        Returns (or raises) in this thread."""
        self._check_closed()
        self._check_running()
        home = HomeRun()
        state = OwnerThreadState(self)
        with self._own_lock:
            self._epoch += 1
            self._thread_id = home.ident
            self._home = home
            self._run_ending = False
        self._owner_state = state
        state.enter()
        back: _StealRequest | None = None  # set when this thread has just gone home
        while True:
            try:
                finished = self._drive(resume=False) if back is None else self._drive_home(back)
            except BaseException as exc:
                if not self._hand_over_error(exc):
                    self._end_run(state)
                    raise
                finished = False
            if finished:
                self._end_run(state)
                error = home.error  # left by an owner that handed over while failing
                if error is not None:
                    home.error = None
                    try:
                        raise error
                    finally:
                        error = None
                return
            # Deposed: this thread's inline call blocked and the loop went on elsewhere
            # (the call has returned now), or it granted a take-back. Take the loop back
            # (going home), unless the option is off or the run has ended meanwhile.
            back = self._go_home(home, state) if self._syslet_options.home_affinity else None
            if back is None:
                break
        home.start_serving()
        returned, home.returned = home.returned, None
        if isinstance(returned, CallRecord):
            self._ring.post(returned)  # the run ended first: the next run delivers it
        returned = None
        # Wait for the loop to stop, and report what stopped it.
        error = self._await_loop_end(home)
        self._end_run(None)
        if error is not None:
            try:
                raise error
            finally:
                error = None

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        while self._pending:
            self._pending.popleft().future.cancel()
        with self._own_lock:
            self._syslet_closing = True
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.close()
        threads, self._threads = self._threads, None
        if threads is not None:
            self._threads_started_before = threads.started
            self._threads_reused_before = threads.reused
            threads.close()
        super().close()

    def add_signal_handler(  # type: ignore[override]  # typeshed's is variadic-generic
        self, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        self._on_main_thread(functools.partial(super().add_signal_handler, sig, callback, *args))

    def remove_signal_handler(self, sig: int) -> bool:
        result: list[bool] = []

        def remove() -> None:
            result.append(super(SysletEventLoop, self).remove_signal_handler(sig))

        self._on_main_thread(remove)
        # A deferred removal reports what it will do: whether a handler is set now.
        return result[0] if result else sig in self._signal_handlers

    def _check_thread(self) -> None:
        # Debug mode only. As stock, but: a blocking call running inline must not use
        # the loop's non-thread-safe API (in a pool thread it could not); and Python
        # signal handlers run on the main thread, so when the main thread is the home
        # thread and has lost the loop, asyncio's own SIGINT handler (Runner) may still
        # call_soon from there (it then wakes the loop with call_soon_threadsafe).
        thread_id = self._thread_id
        if thread_id is None:
            return
        ident = threading.get_ident()
        if ident == thread_id:
            cell = self._inline
            if cell and type(cell[0]) is CallRecord:
                raise RuntimeError(
                    "Non-thread-safe operation invoked on an event loop from a blocking "
                    "call it is running (use call_soon_threadsafe)"
                )
            return
        home = self._home
        if home is not None and ident == home.ident == threading.main_thread().ident:
            return
        raise RuntimeError(
            "Non-thread-safe operation invoked on an event loop other than the current one"
        )

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        # Called by set_debug() through call_soon_threadsafe, so on the owner.
        state = self._owner_state
        if state is not None:
            state.set_tracking(bool(enabled))

    # ------------------------------------------------------------- the iterations

    def _drive(self, *, resume: bool) -> bool:
        """Run iterations as the owner until the loop stops (True) or this thread is
        deposed (False). ``resume``: pick up the previous owner's pending calls first."""
        state = self._owner_state
        assert state is not None
        state.deposed = False
        if resume:
            if not self._run_pending_calls():
                return False
            if self._stopping:
                return self._finish_or_hand_over()
        while True:
            # _run_once keeps asyncio's signature (returns None), so code that wraps it
            # keeps working; it marks this thread's state when the thread is deposed.
            self._run_once()
            if state.deposed:
                return False
            if self._stopping:
                return self._finish_or_hand_over()

    def _finish_or_hand_over(self) -> bool:
        """The loop is stopping. True: this owner ends the run. False: a thread whose
        eager call blocked is in the middle of a task step; it gets the loop (and ends
        the run itself)."""
        if self._await_stealer():
            self._grant_steal(at_stop=True)
            return False
        return True

    def _await_stealer(self) -> bool:
        """Owner, about to end the run: if an eager call that blocked has not taken the
        loop back yet, wait for it to ask (its task step is unfinished, exactly as a
        stock loop's run cannot end in the middle of a step). True if one is waiting."""
        with self._steal_filed:
            while not self._steal_requests and self._eager_outstanding:
                self._steal_filed.wait()
            if self._steal_requests:
                return True
            self._run_ending = True  # the home thread must not file a request now
            return False

    def _run_once(self) -> None:
        """One iteration: poll, collect finished calls, run due timers and ready
        handles, then run pending calls inline. asyncio's hook, with its signature; if
        this thread is deposed meanwhile, its ``OwnerThreadState.deposed`` is set."""
        epoch = self._epoch
        state = self._owner_state
        scheduled = self._scheduled
        count = len(scheduled)
        if (
            count > _MIN_SCHEDULED_TIMER_HANDLES
            and self._timer_cancelled_count / count > _MIN_CANCELLED_FRACTION
        ):
            live: list[_Timer] = []
            for timer in scheduled:
                if timer._cancelled:
                    timer._scheduled = False
                else:
                    live.append(timer)
            heapq.heapify(live)
            self._scheduled = scheduled = live
            self._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0]._cancelled:
                self._timer_cancelled_count -= 1
                timer = heapq.heappop(scheduled)
                timer._scheduled = False

        # The syslet additions to an iteration are attribute loads and C-level truth
        # tests (no Python-level calls) while no call is submitted. Pending calls make
        # the poll non-blocking only while under the cap: while short of threads
        # (_max_blocked_now 0) held calls wait for a wake-up (a worker going idle, a
        # completion, the retry timer), and every iteration that has pending calls ends
        # in _run_pending_calls, which decides again.
        ring = self._ring
        posted = ring.items
        pending = self._pending
        timeout: float | None
        if (
            self._ready
            or self._stopping
            or (pending and self._blocked_total - self._blocked_drained < self._max_blocked_now)
        ):
            timeout = 0
        else:
            timeout = None
            if scheduled:
                timeout = min(max(0.0, scheduled[0]._when - self.time()), _MAXIMUM_SELECT_TIMEOUT)
            ring.sleeping = True
            if posted:
                timeout = 0
        event_list: list[Any] | None = self._selector.select(timeout)
        ring.sleeping = False
        self._process_events(event_list)  # type: ignore[arg-type]
        event_list = None  # break reference cycles if an exception follows
        if posted:
            self._drain_completions()

        end_time = self.time() + self._clock_resolution
        ready = self._ready
        while scheduled:
            timer = scheduled[0]
            if timer._when >= end_time:
                break
            timer = heapq.heappop(scheduled)
            timer._scheduled = False
            ready.append(timer)

        # The only place where handles are called. Handles queued by these run next
        # time round, after another poll.
        handle: _Handle | None
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            if self._debug:
                try:
                    self._current_handle = handle
                    t0 = self.time()
                    handle._run()
                    dt = self.time() - t0
                    if dt >= self.slow_callback_duration:
                        # asyncio's logger object, looked up now: tools and tests
                        # that patch asyncio.base_events.logger see this warning too
                        vars(base_events)["logger"].warning(
                            "Executing %s took %.3f seconds", _format_handle(handle), dt
                        )
                finally:
                    self._current_handle = None
            else:
                handle._run()
            if self._epoch != epoch:
                # The loop changed hands inside this handle: it was an eager call that
                # blocked (this thread got here only once it owned the loop again: start
                # a fresh iteration), or the grant of a take-back (not ours any more).
                if self._owner_state is not state and state is not None:
                    state.deposed = True
                return
        handle = None
        if (
            (pending or self._quiesce_waiters)
            and not self._run_pending_calls()
            and state is not None
        ):
            state.deposed = True

    # ------------------------------------------------------------ syslet calls

    def _submit(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        context: contextvars.Context,
        profile_as: object = None,
    ) -> asyncio.Future[T]:
        # profile_as: the callable to learn about, when fn wraps it (_anyio_route).
        if self._debug:
            self._check_thread()
        future: asyncio.Future[T] = self.create_future()
        read = None
        if self._nowait.supported and not kwargs:
            read = positional_read(fn, args)
        profile = self._profiles.get(fn if profile_as is None else profile_as)
        self._pending.append(CallRecord(fn, args, kwargs, context, future, profile, read))
        return future

    def _is_quiet(self) -> bool:
        return not self._pending and self._blocked_total == self._blocked_drained

    def _run_pending_calls(self) -> bool:
        """Run pending calls inline, oldest first, while under the cap. False if this
        thread was deposed (its call blocked; the loop is someone else's now)."""
        pending = self._pending
        while pending:
            # Only the owner's own inline call can be claimed, so the count is stable.
            # _max_blocked_now is re-read each time: a claim that found no thread sets
            # it to 0 while this thread's call ran.
            in_flight = self._blocked_total - self._blocked_drained
            if in_flight >= self._max_blocked_now and not (
                self._short_of_threads and in_flight < self._cap and self._may_start_short()
            ):
                fresh = len(pending) - self._pending_counted_over_cap
                if self._short_of_threads and in_flight < self._cap:
                    self._waited_for_threads += fresh
                else:
                    self._queued_over_cap += fresh
                self._pending_counted_over_cap = len(pending)
                break
            call = pending.popleft()
            if self._pending_counted_over_cap:
                self._pending_counted_over_cap -= 1
            if call.future.done():
                # Cancelled before it started: it never runs.
                self._cancelled_before_start += 1
                call.release()
                continue
            if call.read is not None and self._read_from_cache(call):
                continue
            hand_off = False
            if (
                self._syslet_options.predict_blocking
                and not self._short_of_threads
                and call.profile.should_send_away()
            ):
                call.profile.predicted += 1
                self._predicted_blocking += 1
                if self._is_home_with_affinity():
                    hand_off = True  # it runs here, the loop goes on elsewhere at once
                else:
                    if not self._send_away(call):
                        call.profile.predicted -= 1
                        self._predicted_blocking -= 1
                        pending.appendleft(call)  # no thread for it: decide again, short
                    continue
            if not self._run_inline(call, hand_off=hand_off):
                return False
        if self._quiesce_waiters and self._is_quiet():
            self._release_quiesce_waiters()
        return True

    def _run_inline(self, call: CallRecord, *, hand_off: bool = False) -> bool:
        """Run ``call`` on this thread; False if the loop went on elsewhere meanwhile.
        ``hand_off``: the call is predicted to block, so the loop is handed to another
        thread before it starts, as if the watchdog had claimed it at once."""
        watchdog = self._watchdog
        if watchdog is None:
            watchdog = self._start_threads()
        state = self._owner_state
        assert state is not None
        state.suspend()
        cell: list[object] = [call]
        self._inline = cell
        if hand_off and self._hand_off(cell):
            call.sent_away = True  # its outcome teaches the predictor as a spare's does
            call.started = time.monotonic()
        else:
            call.started = watchdog.arm(cell)
        call.run()
        try:
            cell.pop()
        except IndexError:  # claimed: the loop is someone else's now, unless...
            if self._hand_over_failed(cell, eager=False):
                self._after_stall()  # ...no thread could take it over: still ours
            else:
                call.duration = time.monotonic() - call.started
                self._post_blocked_outcome(call)
                return False
        self._inline = None
        watchdog.disarm()
        state.resume()
        self._inline_completions += 1
        elapsed = time.monotonic() - call.started
        if elapsed > self._stall_after:
            self._note_long_inline()
        call.profile.note_inline(elapsed)
        self._deliver(call)
        return True

    def _is_home_with_affinity(self) -> bool:
        home = self._home
        return (
            self._syslet_options.home_affinity
            and home is not None
            and home.ident == threading.get_ident()
        )

    def _hand_off(self, cell: list[object]) -> bool:
        """Home thread, owner, about to run a call predicted to block: give the loop to
        another thread first (the claim of the watchdog, made by the owner itself), so
        that the call still runs on the home thread, as every call that starts while
        the home thread is free does. False if no thread could take the loop (the call
        is back in ``cell``: it runs inline as usual)."""
        call = cell[0]
        self._claim(cell, predicted=True)
        if cell:
            return False  # nothing was claimed (closing, or a fault in the claim)
        if self._hand_over_failed(cell, eager=False):
            cell.append(call)
            self._inline = cell
            return False
        return True

    def _read_from_cache(self, call: CallRecord) -> bool:
        """A plain os.pread: try it with RWF_NOWAIT. True if the call is dealt with
        (served from the page cache, or sent to a spare because it would block)."""
        assert call.read is not None
        data = self._nowait.try_read(*call.read)
        if data is None:
            return False  # short read, unsupported...: the plain path decides
        if data is WOULD_BLOCK:
            if self._short_of_threads or not self._send_away(call):
                return False  # no thread to send it to: the plain path decides
            self._nowait_would_block += 1
            return True
        call.result = data
        call.profile.nowait_hits += 1
        self._nowait_reads += 1
        self._inline_completions += 1
        self._deliver(call)
        return True

    def _send_away(self, call: CallRecord) -> bool:
        """Run ``call`` on a spare thread from the start: it is known (or predicted) to
        block, so it does not get to stall the loop for the threshold first. False if
        no thread could be had for it (the caller keeps the call)."""
        if self._threads is None:
            self._start_threads()
        assert self._threads is not None
        with self._own_lock:
            self._blocked_total += 1
            in_flight = self._blocked_total - self._blocked_drained
            if in_flight > self._peak_blocked:
                self._peak_blocked = in_flight
        call.sent_away = True
        try:
            self._threads.submit_soon(functools.partial(self._run_sent_away, call))
        except Exception as exc:  # the starter thread could not start (or MemoryError)
            with self._own_lock:
                self._blocked_total -= 1
            call.sent_away = False
            self._note_shortage("starting the thread starter", exc)
            return False
        return True

    def _requeue_stranded(self, job: Job) -> None:
        """Handle (the starter sent it): a call sent away that no thread could be
        started for. It goes back to the head of the queue, as if never sent."""
        assert isinstance(job, functools.partial)
        call: CallRecord = job.args[0]
        with self._own_lock:
            self._blocked_total -= 1
        call.sent_away = False
        self._pending.appendleft(call)

    def _run_sent_away(self, call: CallRecord) -> None:
        """Worker thread: run a call sent away, then post it like any blocked call."""
        call.run_timed()
        self._ring.post(call)

    def _post_blocked_outcome(self, call: CallRecord) -> None:
        """Deposed thread: hand the outcome to whoever owns the loop now, and leave. The
        home thread keeps its own, to deliver when it has the loop back (going home)."""
        home = self._home
        if home is not None and home.ident == threading.get_ident():
            if isinstance(call.exception, KeyboardInterrupt):
                # Ctrl-C raised inside the home thread's own call: as in stock asyncio
                # it must escape run_forever, not just the call's future.
                home.interrupt = call.exception
                self._request_stop()
            if self._syslet_options.home_affinity:
                home.returned = call
                return
            home.start_serving()  # before the post: what it resumes may post jobs
        self._ring.post(call)

    def _drain_completions(self) -> None:
        done = self._ring.drain()
        with self._own_lock:
            self._blocked_drained += len(done)
        self._completions_drained += len(done)
        for call in done:
            self._deliver_blocked(call)
        if self._quiesce_waiters and self._is_quiet():
            self._release_quiesce_waiters()

    def _deliver_blocked(self, call: CallRecord) -> None:
        if call.sent_away:  # sent to a spare, or handed off: it teaches the predictor
            call.profile.note_direct(call.duration)
        else:
            call.profile.blocked_seconds += call.duration
        self._deliver(call)

    def _deliver(self, call: CallRecord) -> None:
        future = call.future
        exc = call.exception
        if future.done():
            # The awaiting task was cancelled while the call ran; its outcome is dropped.
            if exc is not None and self._debug:
                self.call_exception_handler(
                    {
                        "message": f"blocking call {call.profile.name} raised after the "
                        "future awaiting it was cancelled",
                        "exception": exc,
                        "future": future,
                    }
                )
        elif exc is None:
            future.set_result(call.result)
        else:
            if isinstance(exc, StopIteration):
                # A Future cannot hold StopIteration (it would end a coroutine).
                wrapped = RuntimeError(f"blocking call {call.profile.name} raised StopIteration")
                wrapped.__cause__ = exc
                exc = wrapped
            else:
                # As asyncio's wrap_future does for a pool's outcome: the
                # concurrent.futures CancelledError/InvalidStateError become asyncio's.
                exc = _convert_future_exc(exc)
            future.set_exception(exc)
        call.release()
        del exc

    def _release_quiesce_waiters(self) -> None:
        waiters, self._quiesce_waiters = self._quiesce_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------ the hand-over

    def _start_threads(self) -> Watchdog:
        """Owner, at the first blocking call: the thread cache (no thread yet), the
        watchdog (or a fallback, see _watchdog), and the cap the process's limits allow."""
        ref = weakref.ref(self)

        def on_idle() -> None:
            loop = ref()
            if loop is not None and loop._short_of_threads:
                loop._write_to_self()  # held calls may go now: the owner decides

        def on_stranded(job: Job) -> None:
            loop = ref()
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(loop._requeue_stranded, job)

        def on_start_failed(exc: BaseException) -> None:
            loop = ref()
            if loop is not None:
                loop._note_shortage("starting a worker thread", exc)

        limit = self._read_limit(force=True)  # before our own threads are counted
        self._threads = ThreadCache(
            idle_timeout=self._syslet_options.idle_timeout,
            name="sysletloop-worker",
            on_idle=on_idle,
            on_stranded=on_stranded,
            on_start_failed=on_start_failed,
        )
        self._watchdog = watchdog = make_watchdog(
            self._syslet_options.block_threshold,
            watchdog_callback(self),
            name="sysletloop-watchdog",
            fallback=True,
        )
        cap = cap_for(
            limit,
            configured=self._syslet_options.max_blocked,
            blocked_now=0,
            machinery_to_start=MACHINERY_THREADS,
        )
        with self._own_lock:
            self._cap = cap
            if not self._short_of_threads:
                self._max_blocked_now = cap
        if isinstance(watchdog, NoWatchdog):
            self._note_shortage("starting the watchdog", watchdog.error)
        return watchdog

    def _claim(self, cell: object, predicted: bool = False) -> None:
        """Watchdog thread: the inline call in ``cell`` is overdue; take the loop from the
        thread running it and give the loop to another thread, if one can be had. If not
        (or if anything here fails), the call keeps the loop: a stall, never a hang.
        (``predicted``: the owner itself, handing off a call predicted to block.)"""
        try:
            self._claim_and_hand_over(cell, predicted)
        except Exception as exc:  # MemoryError, or a bug: nothing was claimed
            self._note_fault("the watchdog's claim", exc)

    def _claim_and_hand_over(self, cell: object, predicted: bool) -> None:
        # What can fail before the pop (the record, the job) fails with nothing
        # claimed. After it, a failure to give the loop to a thread marks the hand-over
        # failed, and the blocked thread takes the loop back when its call returns.
        assert isinstance(cell, list)
        threads = self._threads
        assert threads is not None
        hand_over = _HandOver(cell, predicted)
        with self._own_lock:
            if self._inline is not cell or self._syslet_closing:
                return
            try:
                token = cell.pop()
            except IndexError:
                return  # the call returned just now: nothing to claim
            self._inline = None
            self._epoch += 1
            epoch = self._epoch
            if not predicted:
                self._migrations += 1
            self._hand_over = hand_over
            if type(token) is not CallRecord:  # an eager call's cell holds its fn
                self._eager_outstanding += 1
            else:  # an eager call posts nothing to the ring; a CallRecord will
                self._blocked_total += 1
                in_flight = self._blocked_total - self._blocked_drained
                if in_flight > self._peak_blocked:
                    self._peak_blocked = in_flight
        try:
            threads.submit(functools.partial(self._own_from, epoch, token, id(cell), predicted))
        except BaseException as exc:  # no thread could be started (or MemoryError)
            with self._hand_over_done:
                hand_over.state = _FAILED
                self._hand_over_done.notify_all()
            self._note_shortage("starting a thread to take over the loop", exc)
            return
        with self._hand_over_done:
            hand_over.state = _STARTED
            self._hand_over_done.notify_all()
        try:
            threads.ensure_spare()
        except Exception as exc:
            self._note_shortage("starting a spare thread", exc)

    def _own_from(self, epoch: int, claimed: object, cell_id: int, predicted: bool) -> None:
        """Worker thread: become the owner of ``epoch`` (taken from the thread running
        the ``claimed`` call) and run the loop until it stops or this thread is deposed
        in turn."""
        home = self._home
        assert home is not None
        state = self._new_owner_state()
        with self._own_lock:
            assert self._epoch == epoch, "only the owner's inline call can be claimed"
            self._thread_id = threading.get_ident()
        self._owner_state = state
        state.enter()
        if type(claimed) is CallRecord:
            if not predicted:
                self._note_migration(claimed)
        else:  # an eager call: ``claimed`` is its fn
            self._note_eager_migration(claimed)
            # The blocked thread is inside a task step: take its task out of asyncio's
            # current-task table so this thread can run others; it puts it back when it
            # has the loop again.
            task = asyncio.current_task(self)
            self._interrupted_tasks[cell_id] = task
            if task is not None:
                _leave_task(self, task)
        try:
            if not self._drive(resume=True):
                return  # deposed (suspended around its call), or handed over
        except BaseException as exc:
            if not self._hand_over_error(exc):
                state.leave()
                home.finish(exc)
            return
        state.leave()
        home.finish(None)

    def _hand_over_error(self, exc: BaseException) -> bool:
        """An exception is escaping the loop while a thread waits to finish its task
        step: stop the loop, leave the exception for the home thread, and hand the loop
        to the waiting thread (which will end the run). True if handed over."""
        if not self._await_stealer():
            return False
        home = self._home
        assert home is not None
        if home.error is None:
            home.error = exc
        self._stopping = True
        self._grant_steal(at_stop=True)
        return True

    # ------------------------------------------------------------ eager calls

    def call_eager(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T | object:
        """Run ``fn`` now, inside the current task step (see :func:`sysletloop.call_eager`).
        Must be called by the loop's owner, from a task. Returns ``SEND_AWAY`` instead
        when the predictor says ``fn`` blocks: the caller then takes the syslet path."""
        try:
            profile = self._eager_profiles.get(fn)
        except TypeError:  # an unhashable callable: the table keys it by its class
            profile = self._profiles.get(fn)
        if profile is not None and profile.last_blocked and self._syslet_options.predict_blocking:
            self._eager_redirected += 1
            return SEND_AWAY
        if self._short_of_threads:
            return SEND_AWAY  # no thread to move to: wait in the queue like any call
        watchdog = self._watchdog
        if watchdog is None:
            watchdog = self._start_threads()
        state = self._owner_state
        cell: list[object] = [fn]  # an eager cell holds fn itself (no CallRecord)
        self._inline = cell
        started = watchdog.arm(cell)
        try:
            return fn(*args, **kwargs)
        finally:
            try:
                cell.pop()
            except IndexError:  # claimed while fn ran: wait for the loop to come back
                assert state is not None
                if self._hand_over_failed(cell, eager=True):
                    self._inline = None  # no thread took it over: still ours
                    watchdog.disarm()
                    self._after_stall()
                else:
                    self._take_back(cell, state)
            else:
                self._inline = None
                watchdog.disarm()
                self._eager_completions += 1
                elapsed = time.monotonic() - started
                if profile is not None or elapsed >= SLOW_CALL:
                    if elapsed > self._stall_after:
                        self._note_long_inline()
                    self._eager_profile(fn).note_inline(elapsed)

    def _eager_profile(self, fn: object) -> Profile:
        """The profile of an eager callable, cached by identity: the fast path pays one
        dict lookup, and only callables seen slow or blocking are in the cache."""
        try:
            profile = self._eager_profiles.get(fn)
        except TypeError:  # unhashable: not cached here
            return self._profiles.get(fn)
        if profile is None:
            if len(self._eager_profiles) >= MAX_PROFILES:
                self._eager_profiles.clear()
            profile = self._eager_profiles[fn] = self._profiles.get(fn)
        return profile

    def _take_back(self, cell: list[object], state: OwnerThreadState) -> None:
        """This thread's eager call blocked and has now returned: wait until the current
        owner hands the loop back, then re-enter the task it was running."""
        request = _StealRequest(threading.get_ident(), state, eager=True)
        with self._steal_filed:
            self._steal_requests.append(request)
            self._steal_filed.notify()
        # The grant waits its turn in the ready queue like any other continuation, so a
        # stream of take-backs cannot starve timers and I/O (granting before each poll
        # did: the loop ping-ponged between eager callers and never polled).
        self.call_soon_threadsafe(self._grant_queued_steal)
        interrupt: BaseException | None = None
        while True:
            try:
                request.granted.acquire()
                break
            except KeyboardInterrupt as exc:  # Ctrl-C while waiting (main thread)
                interrupt = exc
                self._request_stop()
        self._eager_blocked += 1
        task = self._interrupted_tasks.pop(id(cell))
        if task is not None:
            _enter_task(self, task)
        if interrupt is not None:
            try:
                raise interrupt  # now as the owner, as stock asyncio would raise it
            finally:
                interrupt = None

    def _go_home(self, home: HomeRun, state: OwnerThreadState) -> _StealRequest | None:
        """Home thread, deposed and free again: take the loop back from whichever thread
        owns it, at that owner's next safe point. Returns the granted request, or None
        if the run ended (or is ending) without this thread: see "Going home"."""
        request = _StealRequest(home.ident, state, eager=False)
        with self._steal_filed:
            if self._run_ending:
                return None
            self._steal_requests.append(request)
            self._steal_filed.notify()
        self.call_soon_threadsafe(self._grant_queued_steal)
        while True:
            try:
                request.granted.acquire()
                break
            except KeyboardInterrupt as exc:  # Ctrl-C while waiting (main thread)
                if home.interrupt is None:
                    home.interrupt = exc
                self._request_stop()
        return request

    def _drive_home(self, request: _StealRequest) -> bool:
        """Home thread, owner again after going home: deliver its own call's outcome,
        run the jobs queued for it (signal handlers), then drive as ``_drive`` does."""
        self._home_returns += 1
        request.state.enter()
        home = self._home
        assert home is not None
        call, home.returned = home.returned, None
        if isinstance(call, CallRecord):
            with self._own_lock:
                self._blocked_drained += 1
            self._completions_drained += 1
            self._deliver_blocked(call)
            if self._quiesce_waiters and self._is_quiet():
                self._release_quiesce_waiters()
        call = None
        home.run_jobs()
        interrupt, home.interrupt = home.interrupt, None
        if interrupt is not None:
            try:
                raise interrupt  # as the owner: it escapes run_forever, as on a stock loop
            finally:
                interrupt = None
        if request.at_stop:
            # Granted by an owner ending the run: its last iteration is over.
            return self._finish_or_hand_over()
        return self._drive(resume=False)

    def _grant_queued_steal(self) -> None:
        """Handle: the turn of a thread waiting to take the loop back (if it still waits:
        the end of a run may have granted it already)."""
        if self._steal_requests:
            self._grant_steal()

    def _grant_steal(self, *, at_stop: bool = False) -> None:
        """Owner: give the loop to the oldest thread waiting to take it back (an eager
        call's, or the home thread going home). ``at_stop``: the run is stopping and this
        owner's last iteration is over."""
        with self._own_lock:
            request = self._steal_requests.popleft()
            if request.eager:
                self._eager_outstanding -= 1
            self._epoch += 1
            self._thread_id = request.ident
        request.at_stop = at_stop
        mine = self._owner_state
        self._owner_state = request.state
        home = self._home
        if (
            home is not None
            and home.ident == threading.get_ident()
            and not self._syslet_options.home_affinity
        ):
            home.start_serving()  # it will only wait for the end: jobs run at once
        if mine is not None:
            mine.leave()
        request.granted.release()

    def _note_migration(self, call: CallRecord) -> None:
        try:
            self._note_migration_of(call)
        except Exception as exc:  # telemetry only: the new owner must go on regardless
            self._note_fault("recording a migration", exc)

    def _note_eager_migration(self, fn: object) -> None:
        try:
            self._eager_profile(fn).note_migration()
        except Exception as exc:  # telemetry only, as above
            self._note_fault("recording a migration", exc)

    def _note_migration_of(self, call: CallRecord) -> None:
        profile = call.profile
        profile.note_migration()
        if self._debug and profile.migrations >= WARN_AFTER_MIGRATIONS and not profile.warned:
            profile.warned = True
            logger.warning(
                "sysletloop: %s has blocked the loop %d times (each stalled the loop "
                "%.1f ms before it moved); %s",
                profile.name,
                profile.migrations,
                self._syslet_options.block_threshold * 1e3,
                "the predictor now sends it straight to a spare thread while it keeps blocking"
                if self._syslet_options.predict_blocking
                else "consider predict_blocking=True, or calling it with to_thread on a "
                "pool of its own",
            )

    def _await_loop_end(self, home: HomeRun) -> BaseException | None:
        """Home thread, deposed: serve jobs until the last owner stops the loop. A
        KeyboardInterrupt meanwhile (second Ctrl-C) stops the loop and is re-raised."""
        interrupt = home.interrupt
        while True:
            try:
                home.serve_until_finished()
                break
            except KeyboardInterrupt as exc:
                interrupt = exc
                self._request_stop()
        error = home.error if home.error is not None else interrupt
        home.error = home.interrupt = None
        return error

    def _request_stop(self) -> None:
        self._stopping = True
        self._write_to_self()

    def _end_run(self, state: OwnerThreadState | None) -> None:
        if state is not None:
            state.leave()
        self._stopping = False
        self._thread_id = None
        self._home = None
        self._owner_state = None

    def _on_main_thread(self, fn: Callable[[], None]) -> None:
        """Signal registration must run on the main thread. When the loop has moved off
        it, run ``fn`` there: now if the main thread waits for the loop, or as soon as
        its blocked call returns (then errors go to the exception handler)."""
        main = threading.main_thread()
        home = self._home
        if threading.current_thread() is main or home is None or home.ident != main.ident:
            fn()  # stock behaviour (raises RuntimeError off the main thread)
            return

        def deferred() -> None:
            try:
                fn()
            except Exception as exc:
                self.call_exception_handler(
                    {"message": "deferred signal handler registration failed", "exception": exc}
                )

        outcome = home.run_on_home(fn, deferred)
        if isinstance(outcome, BaseException):
            try:
                raise outcome
            finally:
                outcome = None

    def _forget_threads_after_fork(self) -> None:
        self._own_lock = threading.Lock()
        # The conditions must share the new lock (a parent's thread may hold the old).
        self._steal_filed = threading.Condition(self._own_lock)
        self._hand_over_done = threading.Condition(self._own_lock)
        self._hand_over = None
        self._watchdog = None
        self._threads = None
        self._inline = None

    # ------------------------------------------------------ when threads run out

    def _note_shortage(self, where: str, exc: BaseException) -> None:
        """Any thread: starting a thread failed. Until a start succeeds again, calls
        start inline only when a thread is idle to take the loop (see the header)."""
        with self._own_lock:
            self._thread_start_failures += 1
            self._short_of_threads = True
            self._max_blocked_now = 0
        if "threads" in self._faults_logged:
            return
        self._faults_logged.add("threads")
        limit = self._read_limit(force=True)
        err = getattr(exc, "errno", None)
        logger.warning(
            "sysletloop: %s failed (%s: %s; %s); the process limit found: %s. Blocking "
            "calls now wait in the queue until a thread is free to take the loop over "
            "(syslet_stats().waited_for_threads counts them); see 'Thread limits' in "
            "the tuning guide.",
            where,
            type(exc).__name__,
            exc,
            f"errno {errno.errorcode.get(err, err)}"
            if err is not None
            else "no errno reported; a PID or RLIMIT_NPROC limit gives EAGAIN",
            limit if limit is not None else "none readable (a memory limit?)",
        )

    def _note_fault(self, where: str, exc: BaseException) -> None:
        """Any thread: a fault the loop survived. Logged once per kind, with the trace."""
        if where in self._faults_logged:
            return
        self._faults_logged.add(where)
        logger.error("sysletloop: %s failed; the loop goes on", where, exc_info=exc)

    def _read_limit(self, *, force: bool = False) -> ThreadLimit | None:
        """The tightest thread limit, read at most once a second unless forced."""
        now = time.monotonic()
        if force or now - self._limit_read_at >= 1.0:
            self._limit_read_at = now
            try:
                self._thread_limit = read_thread_limit()
            except Exception as exc:  # MemoryError: keep what we knew
                self._note_fault("reading the thread limits", exc)
        return self._thread_limit

    def _may_start_short(self) -> bool:
        """Owner, short of threads, under the cap: may the next call start inline? Yes
        if a worker is idle (it will take the loop), or if no thread will ever come back
        (nothing in flight: waiting would be a hang; the call keeps the loop if it
        blocks). Otherwise no: it waits for a worker to come back, or for the retry."""
        self._schedule_retry()
        threads = self._threads
        if threads is None or threads.has_idle():
            return True
        home = self._home
        mine = 0 if home is None or home.ident == threading.get_ident() else 1
        return (
            self._blocked_total == self._blocked_drained
            and not self._eager_outstanding
            and threads.busy_count() - mine <= 0
        )

    def _schedule_retry(self) -> None:
        if self._retry_handle is None and not self.is_closed():
            self._retry_handle = self.call_later(self._retry_delay, self._retry_threads)

    def _retry_threads(self) -> None:
        """Timer, owner, while short of threads: can threads be started again? Back off
        from _RETRY_MIN to _RETRY_MAX while they cannot."""
        self._retry_handle = None
        threads = self._threads
        if threads is None or not self._short_of_threads:
            return
        self._revive_watchdog()
        try:
            threads.start_spare()
        except Exception:
            with self._own_lock:
                self._thread_start_failures += 1
            self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)
            self._schedule_retry()
            return
        limit = self._read_limit(force=True)
        with self._own_lock:
            self._cap = cap_for(
                limit,
                configured=self._syslet_options.max_blocked,
                blocked_now=self._blocked_total - self._blocked_drained,
                machinery_to_start=1,  # the spare's replacement after the next claim
            )
            self._max_blocked_now = self._cap
            self._short_of_threads = False
        self._retry_delay = _RETRY_MIN
        logger.info("sysletloop: threads can be started again; max_blocked now %d", self._cap)

    def _revive_watchdog(self) -> None:
        """Owner, between calls: replace a watchdog that never started or has died."""
        watchdog = self._watchdog
        if watchdog is None or watchdog.is_alive():
            return
        fresh = make_watchdog(
            self._syslet_options.block_threshold,
            watchdog_callback(self),
            name="sysletloop-watchdog",
            fallback=True,
        )
        if isinstance(fresh, NoWatchdog):
            return
        self._watchdog = fresh
        watchdog.close()

    def _note_long_inline(self) -> None:
        """Owner: an inline call came back long after the threshold, still inline:
        nobody claimed it (the watchdog is missing or dead), or a claim found no thread
        (then counted already, unless the call ran on well past the failed claim)."""
        if self._short_of_threads:
            return  # a failed claim kept it, and counted it
        self._after_stall()

    def _after_stall(self) -> None:
        """Owner: an inline call stalled the loop: a claim found no thread to take the
        loop over, or none came (the watchdog is missing or dead)."""
        self._stalled_calls += 1
        watchdog = self._watchdog
        if watchdog is not None and not watchdog.is_alive():
            if not isinstance(watchdog, NoWatchdog):
                self._note_fault("the watchdog thread", RuntimeError("it is not running"))
            self._revive_watchdog()

    def _hand_over_failed(self, cell: list[object], *, eager: bool) -> bool:
        """A thread whose call was claimed, the call now returned: did the claim fail to
        give the loop to another thread? Then the loop is still this thread's (nobody
        else ever ran it): undo the claim's counts and return True. Waits while the
        claimer is still starting the successor (at most one thread start)."""
        with self._hand_over_done:
            hand_over = self._hand_over
            if hand_over is None or hand_over.cell is not cell:
                return False  # handed over, and the loop has moved on since
            while hand_over.state == _PENDING:
                self._hand_over_done.wait()
            if hand_over.state != _FAILED:
                return False
            self._hand_over = None
            if not hand_over.predicted:
                self._migrations -= 1
            if eager:
                self._eager_outstanding -= 1
            else:
                self._blocked_total -= 1
            return True

    def _new_owner_state(self) -> OwnerThreadState:
        """Worker thread, just handed the loop: its thread state. The loop is this
        thread's now (the claim bumped the epoch), so a MemoryError cannot be allowed to
        end the hand-over: wait and try again (a stall while memory is short)."""
        delay = _RETRY_MIN
        while True:
            try:
                return OwnerThreadState(self)
            except MemoryError as exc:
                self._note_fault("taking over the loop", exc)
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)


SEND_AWAY = object()  # call_eager's answer for "predicted to block: use the syslet path"

# While short of threads, the loop tries to start one after _RETRY_MIN, doubling up to
# _RETRY_MAX: a failed start costs a clone() that fails at once (a few us), so 1 s is
# about how long a process that got its threads back should wait to use them.
_RETRY_MIN = 0.001  # seconds
_RETRY_MAX = 1.0  # seconds
# An inline call that returns this long after the threshold was not claimed in time:
# the watchdog is gone, or no thread could take the loop. 50 ms is far above the
# detection latency even on a loaded VM (a few ms), so a healthy loop never pays for the
# look this triggers.
_STALL_MARGIN = 0.05  # seconds


_PENDING, _STARTED, _FAILED = 0, 1, 2


class _HandOver:
    """One claim's hand-over: is a thread running the loop after it (``_STARTED``), or
    could none be had (``_FAILED``: the claimed call's thread keeps the loop)?"""

    __slots__ = ("cell", "predicted", "state")

    def __init__(self, cell: list[object], predicted: bool) -> None:
        self.cell = cell
        self.predicted = predicted  # a hand-off by the owner, not a watchdog claim
        self.state = _PENDING


def watchdog_callback(loop: SysletEventLoop) -> Callable[[object], None]:
    """The watchdog's ``on_overdue`` for ``loop``: holds it weakly (the watchdog thread
    must not keep a dropped loop alive)."""
    ref = weakref.ref(loop)

    def on_overdue(token: object) -> None:
        target = ref()
        if target is not None:
            target._claim(token)

    return on_overdue


class _StealRequest:
    """A thread waiting to take the loop back: an eager call's that blocked and has
    returned (``eager``), or the home thread going home."""

    __slots__ = ("at_stop", "eager", "granted", "ident", "state")

    def __init__(self, ident: int, state: OwnerThreadState, *, eager: bool) -> None:
        self.ident = ident
        self.state = state
        self.eager = eager
        self.at_stop = False  # written by the granter before it releases ``granted``
        self.granted = threading.Lock()
        self.granted.acquire()


_TaskSwitch = Callable[[asyncio.AbstractEventLoop, "asyncio.Task[Any]"], None]
# asyncio's own bookkeeping of "the task running on this loop" (3.11-3.13: a dict keyed
# by loop, behind these two functions; 3.14+: per thread, in C, where the new owner of an
# interrupted eager call finds no current task and these are not called).
_enter_task: _TaskSwitch = asyncio.tasks._enter_task
_leave_task: _TaskSwitch = asyncio.tasks._leave_task


def _weak_wake(loop: SysletEventLoop) -> Callable[[], None]:
    """The ring's wake-up: the loop's ``_write_to_self``, held weakly. The ring belongs to
    the loop; a strong bound method would make loop -> ring -> loop a reference cycle, and
    a closed loop would wait for the cyclic collector where a stock one is freed at once."""
    method = weakref.WeakMethod(loop._write_to_self)

    def wake() -> None:
        write = method()
        if write is not None:
            write()

    return wake


def _check_blocking_callable(fn: object, api: str) -> None:
    if not callable(fn):
        raise TypeError(f"{api}() expects a callable, got {type(fn).__name__!r} object")
    if inspect.iscoroutine(fn) or inspect.iscoroutinefunction(fn):
        raise TypeError(f"{api}() runs blocking callables; got coroutine {fn!r} (await it instead)")


def _after_fork_in_child() -> None:
    for loop in list(_live_loops):
        loop._forget_threads_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
