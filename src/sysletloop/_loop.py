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

The pieces, in layers as asyncio's own loop is built (``base_events`` under
``selector_events``), each layer a module with one job:

    ``_shortage``   ThreadShortageLoop   no thread can be started: hold calls, retry
    ``_handover``   HandOverLoop         an inline call blocked: the loop moves on
    ``_takeback``   TakeBackLoop         a thread takes the loop back (eager, home)
    ``_steps``      StepClaimLoop        a task step blocked unwrapped: the loop moves on
    ``_loop``       SysletEventLoop      the iterations, the calls, the run (this one)

The protocol (who may touch what, the races and how each is decided, the alternatives
rejected) is written once, at the top of ``_handover``; the state is in ``_state``. This
module is the loop proper: ``_run_once`` (asyncio's iteration, with the completion ring
drained after the poll and the pending calls run after the ready handles), the pending
queue and the submit paths (``run_in_executor``, ``syslet_call``, the predictor, the
``RWF_NOWAIT`` reads), running one call inline under the watchdog, delivering outcomes,
and the run's life cycle (``run_forever`` on the home thread, ``close``, signal
registration on the main thread). Thread rules: everything here is the owner's, as in
stock asyncio, except ``run_forever``'s home-thread half and ``_check_thread``.

Where this departs from stock asyncio, on purpose: a blocking callable runs in the
loop's thread when it does not block, and in whichever thread was the owner when it did
(the home thread, unless the home thread was itself blocked); ``run_forever`` may return
only when its calling thread is free again (its own inline call returned), as stock
asyncio's cannot return in the middle of a blocking callback.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import inspect
import logging
import os
import sys
import threading
import time
import types
import warnings
import weakref
from asyncio import base_events
from collections.abc import Callable
from typing import Any, TypeVar

from . import _profile, _stepcalls
from ._alltasks import install as _install_all_tasks
from ._callrecord import CallRecord
from ._home import HomeRun
from ._nowait import WOULD_BLOCK, is_direct, positional_read
from ._options import LoopOptions
from ._profile import (
    CallableStats,
)
from ._ring import CompletionRing
from ._state import Handle, SysletState, Timer
from ._stats import SysletStats
from ._steps import BlockedSite, StepClaimLoop
from ._takeback import StealRequest
from ._threadcache import Job
from ._threadstate import OwnerThreadState, driving
from ._watchdog import watchdog_kind

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
_pread = os.pread
_preadv = getattr(os, "preadv", None)
_convert_future_exc: Callable[[BaseException], BaseException] = vars(asyncio.futures)[
    "_convert_future_exc"
]

# asyncio's slow-callback warning, and ours for a handle that blocked while the loop went
# on elsewhere (a claimed step or eager call: it took long, but stalled nothing).
_SLOW = "Executing %s took %.3f seconds"
_SLOW_MOVED = _SLOW + "; it blocked, and the loop went on on another thread meanwhile"

_live_loops: weakref.WeakSet[SysletEventLoop] = weakref.WeakSet()

# 3.14+: asyncio.all_tasks() must look at every thread's task list for this loop.
_install_all_tasks()


class SysletEventLoop(StepClaimLoop):
    """An asyncio event loop whose blocking calls start inline and migrate only if they
    block. Options: see :class:`sysletloop.LoopOptions`."""

    # Its tasks are created on whichever thread owns the loop at the time (_alltasks).
    _syslet_spans_threads = True

    def __init__(self, selector: Any = None, **options: Any) -> None:
        opts = LoopOptions.from_mapping(options)
        if opts.route_anyio:
            from ._anyio_route import install  # imports anyio: only when asked for

            install()
        super().__init__(selector)
        # Our state, in one slotted object: the instance dict stays at asyncio's size
        # (see _state for why that matters to every iteration).
        self._syslet = SysletState(opts, CompletionRing(_weak_wake(self)))
        _live_loops.add(self)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not hasattr(self, "_syslet"):
            return  # __init__ failed (a bad option): there is nothing to close
        super().__del__(_warn)  # type: ignore[call-arg]  # asyncio's signature has _warn

    # ------------------------------------------------------------------ public API

    @property
    def syslet_options(self) -> LoopOptions:
        return self._syslet.options

    def syslet_call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Submit ``fn(*args, **kwargs)`` to run syslet-style, in a copy of the current
        context; return the future of its outcome. Must be called in the loop's thread."""
        _check_blocking_callable(fn, "syslet_call")
        self._check_closed()
        return self._submit(fn, args, kwargs, contextvars.copy_context())

    def syslet_stats(self) -> SysletStats:
        """A snapshot of this loop's counters."""
        sy = self._syslet
        with sy.own_lock:
            migrations = sy.migrations
            in_flight = sy.blocked_total - sy.blocked_drained
            peak = sy.peak_blocked
            failures = sy.thread_start_failures
        threads = sy.threads
        watchdog = sy.watchdog
        return SysletStats(
            inline_completions=sy.inline_completions,
            migrations=migrations,
            blocked_in_flight=in_flight,
            peak_blocked=peak,
            threads_started=threads.started if threads else sy.threads_started_before,
            threads_reused=threads.reused if threads else sy.threads_reused_before,
            queued_over_cap=sy.queued_over_cap,
            completions_drained=sy.completions_drained,
            cancelled_before_start=sy.cancelled_before_start,
            predicted_blocking=sy.predicted_blocking,
            nowait_reads=sy.nowait_reads,
            nowait_would_block=sy.nowait_would_block,
            uring_reads=sy.uring_sent,
            eager_completions=sy.eager_completions,
            eager_blocked=sy.eager_blocked,
            eager_redirected=sy.eager_redirected,
            watchdog=watchdog.kind if watchdog else watchdog_kind(),
            waited_for_threads=sy.waited_for_threads,
            thread_start_failures=failures,
            stalled_calls=sy.stalled_calls,
            max_blocked_now=sy.cap,
            home_returns=sy.home_returns,
            claimed_steps=sy.claimed_steps,
            steps_at_cap=sy.steps_at_cap,
            predicted_steps=sy.predicted_steps,
        )

    def syslet_callables(self) -> list[CallableStats]:
        """Per-callable telemetry, the callables that cost the most blocked time first.
        Call it from the loop's thread (or once the loop has stopped)."""
        stats = self._syslet.profiles.snapshots()
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
        sites = self.syslet_blocked_sites()[:top]
        if sites:
            lines += ["", _sites_table(sites)]
        return "\n".join(lines)

    def syslet_threads(self) -> list[threading.Thread]:
        """The worker threads this loop started that are still alive."""
        sy = self._syslet
        out = list(sy.threads.threads()) if sy.threads else []
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
            and self._syslet.options.route_executor
            and self._default_executor is None
        ):
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            # A pool thread runs func in its own context, not the caller's: so do we,
            # in a fresh one. asyncio.to_thread passes partial(ctx.run, fn, *args,
            # **kwargs) when it wants the caller's: we run fn in ctx ourselves, which is
            # the same call one partial and one fresh context cheaper.
            if type(func) is functools.partial and func.args:
                ctx = getattr(func.func, "__self__", None)
                if type(ctx) is contextvars.Context:
                    return self._submit(
                        func.args[0], func.args[1:] + args, func.keywords or None, ctx
                    )
            return self._submit(func, args, None, contextvars.Context())
        return super().run_in_executor(executor, func, *args)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the syslet calls still running (and queued), then shut down an
        executor set with ``set_default_executor``, as asyncio does."""
        self._executor_shutdown_called = True
        start = self.time()
        if not self._syslet.is_quiet():
            waiter: asyncio.Future[None] = self.create_future()
            self._syslet.quiesce_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                warnings.warn(
                    f"The executor did not finishing joining its threads within {timeout} seconds.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            finally:
                if waiter in self._syslet.quiesce_waiters:
                    self._syslet.quiesce_waiters.remove(waiter)
        if sys.version_info >= (3, 12):
            left = None if timeout is None else max(0.0, timeout - (self.time() - start))
            await super().shutdown_default_executor(left)
        else:
            await super().shutdown_default_executor()

    def run_forever(self) -> None:
        """Run until ``stop()`` is called, in this thread and in any the loop moves to.
        Returns (or raises) in this thread."""
        sy = self._syslet
        self._check_closed()
        self._check_running()
        home = HomeRun()
        state = OwnerThreadState(self)
        with sy.own_lock:
            sy.epoch += 1
            self._thread_id = home.ident
            sy.home = home
            sy.run_ending = False
        sy.owner_state = state
        state.enter()
        if sy.options.migrate_steps:
            self._start_step_sampler(_RUN_ONCE)
        back: StealRequest | None = None  # set when this thread has just gone home
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
            back = self._go_home(home, state) if sy.options.home_affinity else None
            if back is None:
                break
        home.start_serving()
        returned, home.returned = home.returned, None
        if isinstance(returned, CallRecord):
            sy.ring.post(returned)  # the run ended first: the next run delivers it
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
        sy = self._syslet
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        while sy.pending:
            sy.pending.popleft().future.cancel()
        with sy.own_lock:
            sy.closing = True
        if sy.retry_handle is not None:
            sy.retry_handle.cancel()
            sy.retry_handle = None
        watchdog, sy.watchdog = sy.watchdog, None
        if watchdog is not None:
            watchdog.close()
        sampler, sy.step_sampler = sy.step_sampler, None
        if sampler is not None:
            sampler.close()
            _stepcalls.forget_loop(self)
        reads, sy.uring_reads = sy.uring_reads, None
        if reads is not None:
            self.remove_reader(reads.efd)
            for call in reads.close():
                assert isinstance(call, CallRecord)
                call.future.cancel()
                call.release()
        threads, sy.threads = sy.threads, None
        if threads is not None:
            sy.threads_started_before = threads.started
            sy.threads_reused_before = threads.reused
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
        sy = self._syslet
        thread_id = self._thread_id
        if thread_id is None:
            return
        ident = threading.get_ident()
        if ident == thread_id:
            cell = sy.inline
            if cell and type(cell[0]) is CallRecord:
                raise RuntimeError(
                    "Non-thread-safe operation invoked on an event loop from a blocking "
                    "call it is running (use call_soon_threadsafe)"
                )
            return
        home = sy.home
        if home is not None and ident == home.ident == threading.main_thread().ident:
            return
        raise RuntimeError(
            "Non-thread-safe operation invoked on an event loop other than the current one"
        )

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        # Called by set_debug() through call_soon_threadsafe, so on the owner.
        state = self._syslet.owner_state
        if state is not None:
            state.set_tracking(bool(enabled))

    # ------------------------------------------------------------- the iterations

    def _drive(self, *, resume: bool) -> bool:
        """Run iterations as the owner until the loop stops (True) or this thread is
        deposed (False). ``resume``: pick up the previous owner's pending calls first."""
        state = self._syslet.owner_state
        assert state is not None
        state.deposed = False
        driving.state = state
        try:
            if resume:
                if not self._run_pending_calls():
                    return False
                if self._stopping:
                    return self._finish_or_hand_over()
            while True:
                # _run_once keeps asyncio's signature (returns None), so code that wraps
                # it keeps working; it marks this thread's state when it is deposed.
                self._run_once()
                if state.deposed:
                    return False
                if self._stopping:
                    return self._finish_or_hand_over()
        finally:
            driving.state = None  # it holds the loop: a closed loop must be freed

    def _run_once(self) -> None:
        """One iteration: poll, collect finished calls, run due timers and ready
        handles, then run pending calls inline. asyncio's hook, with its signature; if
        this thread is deposed meanwhile, its ``OwnerThreadState.deposed`` is set."""
        sy = self._syslet
        epoch = sy.epoch
        scheduled = self._scheduled
        count = len(scheduled)
        if (
            count > _MIN_SCHEDULED_TIMER_HANDLES
            and self._timer_cancelled_count / count > _MIN_CANCELLED_FRACTION
        ):
            live: list[Timer] = []
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
        # (max_blocked_now 0) held calls wait for a wake-up (a worker going idle, a
        # completion, the retry timer), and every iteration that has pending calls ends
        # in _run_pending_calls, which decides again.
        pending = sy.pending
        # Finished blocked calls wake the poll through the self-pipe and are drained
        # when it is read (_process_self_data), not tested for here.
        event_list: list[Any] | None
        if (
            self._ready
            or self._stopping
            or (pending and sy.blocked_total - sy.blocked_drained < sy.max_blocked_now)
        ):
            event_list = self._selector.select(0)
        else:
            timeout: float | None = None
            if scheduled:
                timeout = min(max(0.0, scheduled[0]._when - self.time()), _MAXIMUM_SELECT_TIMEOUT)
            event_list = self._selector.select(timeout)
            if sy.sampler_napping:  # migrate_steps: the sampler naps while the loop polls
                self._wake_step_sampler()
        self._process_events(event_list)
        event_list = None  # break reference cycles if an exception follows

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
        handle: Handle | None
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
                            _SLOW_MOVED if sy.epoch is not epoch else _SLOW,
                            _format_handle(handle),
                            dt,
                        )
                finally:
                    self._current_handle = None
            else:
                handle._run()
            if sy.epoch is not epoch:  # the same int object while nobody bumps it
                # The loop changed hands inside this handle: it was an eager call or a
                # step that blocked (this thread got here only once it owned the loop
                # again: start a fresh iteration), or the grant of a take-back (not ours
                # any more; _grant_steal marked this thread deposed).
                if self._thread_id != threading.get_ident():
                    self._check_deposed()  # granted away, or a claimed step got here unheld
                return
        handle = None
        if pending:
            # Marks this thread deposed if its call blocked. (shutdown_default_executor's
            # waiters need no look here: every path that makes the loop quiet, the end of
            # this one, a drain, a home call's delivery, releases them.)
            self._run_pending_calls()

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
        sy = self._syslet
        if self._debug:
            self._check_thread()
        future: asyncio.Future[T] = self.create_future()
        read = None
        if (fn is _pread or type(fn) is functools.partial or fn is _preadv) and not kwargs:
            uring = sy.options.uring_reads
            if sy.nowait.supported or uring:
                read = positional_read(fn, args, vectored=uring)
        profile = sy.profiles.get(fn if profile_as is None else profile_as)
        call = CallRecord(fn, args, kwargs, context, future, profile, read)
        # With uring_reads, a read known to wait starts here, in the submitting step, as a
        # pool's would (an io_uring submission does not block): a task that goes on to
        # compute (hash the last piece) overlaps it.
        if (
            read is not None
            and sy.options.uring_reads
            and not sy.uring_failed
            and self._start_waiting_read(call)
        ):
            return future
        sy.pending.append(call)
        return future

    def _run_pending_calls(self) -> bool:
        """Run pending calls inline, oldest first, while under the cap. False if this
        thread was deposed (its call blocked; the loop is someone else's now)."""
        sy = self._syslet
        pending = sy.pending
        while pending:
            # Only the owner's own inline call can be claimed, so the count is stable.
            # max_blocked_now is re-read each time: a claim that found no thread sets
            # it to 0 while this thread's call ran.
            in_flight = sy.blocked_total - sy.blocked_drained
            if in_flight >= sy.max_blocked_now and not (
                sy.short_of_threads and in_flight < sy.cap and self._may_start_short()
            ):
                fresh = len(pending) - sy.pending_counted_over_cap
                if sy.short_of_threads and in_flight < sy.cap:
                    sy.waited_for_threads += fresh
                else:
                    sy.queued_over_cap += fresh
                sy.pending_counted_over_cap = len(pending)
                break
            call = pending.popleft()
            if sy.pending_counted_over_cap:
                sy.pending_counted_over_cap -= 1
            if call.future.done():
                # Cancelled before it started: it never runs.
                sy.cancelled_before_start += 1
                call.release()
                continue
            if call.read is not None and self._read_from_cache(call):
                continue
            hand_off = False
            if (
                call.profile.last_blocked  # should_send_away's first test, without a call
                and sy.options.predict_blocking
                and not sy.short_of_threads
                and call.profile.should_send_away()
            ):
                call.profile.predicted += 1
                sy.predicted_blocking += 1
                if self._is_home_with_affinity():
                    hand_off = True  # it runs here, the loop goes on elsewhere at once
                else:
                    if not self._send_away(call):
                        call.profile.predicted -= 1
                        sy.predicted_blocking -= 1
                        pending.appendleft(call)  # no thread for it: decide again, short
                    continue
            if not self._run_inline(call, hand_off=hand_off):
                return False
        if sy.quiesce_waiters and sy.is_quiet():
            self._release_quiesce_waiters()
        return True

    def _run_inline(self, call: CallRecord, *, hand_off: bool = False) -> bool:
        """Run ``call`` on this thread; False if the loop went on elsewhere meanwhile.
        ``hand_off``: the call is predicted to block, so the loop is handed to another
        thread before it starts, as if the watchdog had claimed it at once."""
        sy = self._syslet
        watchdog = sy.watchdog
        if watchdog is None:
            watchdog = self._start_threads()
        state = sy.owner_state
        assert state is not None
        state.suspend()
        cell: list[object] = [call]
        sy.inline = cell
        profile = call.profile
        cpu = time.thread_time() if profile.timed_cpu else -1.0  # see _profile: waiting
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
                state.deposed = True  # _drive steps out
                self._post_blocked_outcome(call)
                return False
        sy.inline = None
        watchdog.disarm()
        state.resume()
        sy.inline_completions += 1
        elapsed = time.monotonic() - call.started
        if elapsed > sy.stall_after:
            self._note_long_inline()
        if elapsed < _profile.SLOW_CALL and not (profile.last_blocked or profile.slow_streak):
            profile.inline += 1  # note_inline's common case (nothing to forget), inlined
        else:
            profile.note_inline(elapsed, time.thread_time() - cpu if cpu >= 0 else None)
        self._deliver(call)
        return True

    def _is_home_with_affinity(self) -> bool:
        sy = self._syslet
        home = sy.home
        return sy.options.home_affinity and home is not None and home.ident == threading.get_ident()

    def _start_waiting_read(self, call: CallRecord) -> bool:
        """uring_reads: a positional read known to wait goes to io_uring (True), without
        trying RWF_NOWAIT: an O_DIRECT one waits for the device whatever RWF_NOWAIT says,
        and a file system without RWF_NOWAIT cannot say. At submission only such a read
        starts; one that may be cached is tried in the pending queue, so that a hit
        resolves its future at the iteration's end and its task yields, as with any call
        (an awaited future that is done already does not yield: a task reading a cached
        file would keep every other task waiting)."""
        assert call.read is not None
        if is_direct(call.read[0]) or not self._syslet.nowait.supported:
            return self._send_to_uring(call)
        return False

    def _read_from_cache(self, call: CallRecord) -> bool:
        """A plain os.pread: try it with RWF_NOWAIT. True if the call is dealt with
        (served from the page cache, or sent to io_uring or a spare because it would
        block)."""
        sy = self._syslet
        assert call.read is not None
        if sy.options.uring_reads and self._start_waiting_read(call):
            return True
        data = sy.nowait.try_read(*call.read)
        if data is None:
            # Short read, or a file system that cannot try without blocking: the plain
            # path decides, or with uring_reads io_uring takes the latter.
            return (
                not sy.nowait.supported and sy.options.uring_reads and self._send_to_uring(call)
            )
        if data is WOULD_BLOCK:
            if sy.options.uring_reads and self._send_to_uring(call):
                return True
            if sy.short_of_threads or not self._send_away(call):
                return False  # no thread to send it to: the plain path decides
            sy.nowait_would_block += 1
            return True
        call.result = data
        call.profile.nowait_hits += 1
        sy.nowait_reads += 1
        sy.inline_completions += 1
        self._deliver(call)
        return True

    def _send_to_uring(self, call: CallRecord) -> bool:
        """The uring_reads option: start ``call`` (a positional read) on the loop's
        io_uring; the ring's eventfd reader resolves it. False if io_uring cannot be had
        or cannot take it now (the caller's other path runs it)."""
        sy = self._syslet
        reads = sy.uring_reads
        if reads is None:
            if sy.uring_failed:
                return False
            from ._uringreads import UringReads  # only with the option: io_uring's modules

            try:
                reads = UringReads.open()
            except OSError as exc:  # UringError is one
                sy.uring_failed = True
                logger.warning(
                    "sysletloop: uring_reads cannot have io_uring (%s); reads that would "
                    "block go to threads",
                    exc,
                )
                return False
            self.add_reader(reads.efd, self._reap_uring_reads)
            sy.uring_reads = reads
        assert call.read is not None
        taken = reads.submit(call, *call.read)
        if taken is False:
            return False
        if taken is None and not sy.uring_flush_due:  # batched: entered next iteration
            sy.uring_flush_due = True
            self.call_soon(self._flush_uring_reads)
        sy.uring_sent += 1
        return True

    def _flush_uring_reads(self) -> None:
        """Enter the reads batched in the ring (owner). Any the kernel would not take run
        as plain calls, never through the ring again."""
        sy = self._syslet
        sy.uring_flush_due = False
        reads = sy.uring_reads
        if reads is None:
            return
        for call in reads.flush():
            assert isinstance(call, CallRecord)
            sy.uring_sent -= 1
            call.read = None
            sy.pending.append(call)

    def _reap_uring_reads(self) -> None:
        """The ring's eventfd is readable: resolve the reads that completed (owner)."""
        sy = self._syslet
        reads = sy.uring_reads
        if reads is None:
            return
        for call, outcome in reads.reap():
            assert isinstance(call, CallRecord)
            if isinstance(outcome, OSError):
                call.exception = outcome
            else:
                call.result = outcome
            self._deliver(call)
        if sy.quiesce_waiters and sy.is_quiet():
            self._release_quiesce_waiters()

    def _send_away(self, call: CallRecord) -> bool:
        """Run ``call`` on a spare thread from the start: it is known (or predicted) to
        block, so it does not get to stall the loop for the threshold first. False if
        no thread could be had for it (the caller keeps the call)."""
        sy = self._syslet
        if sy.threads is None:
            self._start_threads()
        assert sy.threads is not None
        with sy.own_lock:
            sy.blocked_total += 1
            in_flight = sy.blocked_total - sy.blocked_drained
            if in_flight > sy.peak_blocked:
                sy.peak_blocked = in_flight
        call.sent_away = True
        try:
            sy.threads.submit_soon(functools.partial(self._run_sent_away, call))
        except Exception as exc:  # the starter thread could not start (or MemoryError)
            with sy.own_lock:
                sy.blocked_total -= 1
            call.sent_away = False
            self._note_shortage("starting the thread starter", exc)
            return False
        return True

    def _requeue_stranded(self, job: Job) -> None:
        """Handle (the starter sent it): a call sent away that no thread could be
        started for. It goes back to the head of the queue, as if never sent."""
        sy = self._syslet
        assert isinstance(job, functools.partial)
        call: CallRecord = job.args[0]
        with sy.own_lock:
            sy.blocked_total -= 1
        call.sent_away = False
        sy.pending.appendleft(call)

    def _run_sent_away(self, call: CallRecord) -> None:
        """Worker thread: run a call sent away, then post it like any blocked call."""
        call.run_timed()
        self._syslet.ring.post(call)

    def _post_blocked_outcome(self, call: CallRecord) -> None:
        """Deposed thread: hand the outcome to whoever owns the loop now, and leave. The
        home thread keeps its own, to deliver when it has the loop back (going home)."""
        sy = self._syslet
        home = sy.home
        if home is not None and home.ident == threading.get_ident():
            if isinstance(call.exception, KeyboardInterrupt):
                # Ctrl-C raised inside the home thread's own call: as in stock asyncio
                # it must escape run_forever, not just the call's future.
                home.interrupt = call.exception
                self._request_stop()
            if sy.options.home_affinity:
                home.returned = call
                return
            home.start_serving()  # before the post: what it resumes may post jobs
        sy.ring.post(call)

    def _process_self_data(self, data: bytes) -> None:
        """Owner, reading the self-pipe: asyncio's signal numbers, then the ring (every
        post wrote a byte; see _ring)."""
        super()._process_self_data(data)
        if self._syslet.ring.items:
            self._drain_completions()

    def _drain_completions(self) -> None:
        sy = self._syslet
        done = sy.ring.drain()
        with sy.own_lock:
            sy.blocked_drained += len(done)
        sy.completions_drained += len(done)
        for call in done:
            self._deliver_blocked(call)
        if sy.quiesce_waiters and sy.is_quiet():
            self._release_quiesce_waiters()

    def _deliver_returned(self, call: CallRecord) -> None:
        sy = self._syslet
        with sy.own_lock:
            sy.blocked_drained += 1
        sy.completions_drained += 1
        self._deliver_blocked(call)
        if sy.quiesce_waiters and sy.is_quiet():
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
            return  # nothing here points back at the record: no release needed
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
        sy = self._syslet
        waiters, sy.quiesce_waiters = sy.quiesce_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------ the run's end

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

    def _end_run(self, state: OwnerThreadState | None) -> None:
        sy = self._syslet
        if state is not None:
            state.leave()
        self._stopping = False
        self._thread_id = None
        sy.home = None
        sy.owner_state = None

    def _on_main_thread(self, fn: Callable[[], None]) -> None:
        """Signal registration must run on the main thread. When the loop has moved off
        it, run ``fn`` there: now if the main thread waits for the loop, or as soon as
        its blocked call returns (then errors go to the exception handler)."""
        main = threading.main_thread()
        home = self._syslet.home
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
        sy = self._syslet
        sy.own_lock = threading.Lock()
        # The conditions must share the new lock (a parent's thread may hold the old).
        sy.steal_filed = threading.Condition(sy.own_lock)
        sy.hand_over_done = threading.Condition(sy.own_lock)
        sy.hand_over = None
        sy.watchdog = None
        sy.threads = None
        sy.step_sampler = None
        sy.inline = None


_RUN_ONCE: types.CodeType = SysletEventLoop._run_once.__code__


def _sites_table(sites: list[BlockedSite]) -> str:
    """The report's second table: where steps blocked unwrapped (``migrate_steps``): the
    step's line in the application, and the call that blocked (with its own line)."""
    header = (
        f"{'step blocked unwrapped at':<44} {'call (where)':<44} {'claims':>7} {'blocked s':>10}"
    )
    lines = [header, "-" * len(header)]
    for site in sites:
        step = _tail(site.step.split(" in ")[0], 44)
        call = _tail(f"{site.call} ({os.path.basename(site.where)})", 44)
        lines.append(f"{step:<44} {call:<44} {site.claims:>7} {site.blocked_seconds:>10.3f}")
    return "\n".join(lines)


def _tail(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


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


_BuiltinFunction = types.BuiltinFunctionType
_Function = types.FunctionType


def _check_blocking_callable(fn: object, api: str) -> None:
    kind = type(fn)
    if kind is _BuiltinFunction:
        return  # C: never a coroutine function
    if (
        kind is _Function
        and not fn.__dict__  # no markcoroutinefunction() marker
        and not fn.__code__.co_flags & inspect.CO_COROUTINE  # type: ignore[attr-defined]
    ):
        return  # inspect.iscoroutinefunction's answer for a plain function, without a call
    if not callable(fn):
        raise TypeError(f"{api}() expects a callable, got {type(fn).__name__!r} object")
    if inspect.iscoroutine(fn) or inspect.iscoroutinefunction(fn):
        raise TypeError(f"{api}() runs blocking callables; got coroutine {fn!r} (await it instead)")


def _after_fork_in_child() -> None:
    for loop in list(_live_loops):
        loop._forget_threads_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
