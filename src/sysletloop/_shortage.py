"""Running out of threads: what the loop does when a thread cannot be started.

The rules are part of the hand-over protocol and are written there, once (``_handover``,
"When threads run out" and "Faults"); this module is their code. In short: a failed
start makes the loop *short of threads* (``SysletState.short_of_threads``,
``max_blocked_now`` 0), so that a call starts inline only when a thread could take the
loop over; a retry timer with back-off looks for threads again; a stall (an inline call
that nobody took over) is counted and a dead watchdog replaced.

Thread rules: ``_note_shortage`` and ``_note_fault`` may be called by any thread (the
watchdog's claim, the thread cache's starter); the shortage flags are written under
``own_lock``. Everything else here is the owner's, between calls.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
import weakref
from collections.abc import Callable

from ._limits import ThreadLimit, cap_for, read_thread_limit
from ._state import RETRY_MAX, RETRY_MIN, SysletLoopBase
from ._watchdog import NoWatchdog, Watchdog, make_watchdog

__all__ = ["ThreadShortageLoop"]

logger = logging.getLogger("asyncio")


class ThreadShortageLoop(SysletLoopBase):
    """The selector loop plus the syslet state, its watchdog's making, and the answers
    to a thread that cannot be started. The hand-over (``_handover``) builds on it."""

    def _claim(self, cell: object, predicted: bool = False) -> None:
        """The watchdog's verdict on an inline call (``_handover``)."""
        raise NotImplementedError

    def _new_watchdog(self) -> Watchdog:
        """A watchdog for this loop (or a fallback, see ``_watchdog``). It holds the loop
        weakly: the watchdog thread must not keep a dropped loop alive."""
        return make_watchdog(
            self._syslet.options.block_threshold,
            _weak_claim(self),
            name="sysletloop-watchdog",
            fallback=True,
        )

    def _note_shortage(self, where: str, exc: BaseException) -> None:
        """Any thread: starting a thread failed. Until a start succeeds again, calls
        start inline only when a thread is idle to take the loop (``_handover``, "When
        threads run out")."""
        sy = self._syslet
        with sy.own_lock:
            sy.thread_start_failures += 1
            sy.short_of_threads = True
            sy.max_blocked_now = 0
        if "threads" in sy.faults_logged:
            return
        sy.faults_logged.add("threads")
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
        sy = self._syslet
        if where in sy.faults_logged:
            return
        sy.faults_logged.add(where)
        logger.error("sysletloop: %s failed; the loop goes on", where, exc_info=exc)

    def _read_limit(self, *, force: bool = False) -> ThreadLimit | None:
        """The tightest thread limit, read at most once a second unless forced."""
        sy = self._syslet
        now = time.monotonic()
        if force or now - sy.limit_read_at >= 1.0:
            sy.limit_read_at = now
            try:
                sy.thread_limit = read_thread_limit()
            except Exception as exc:  # MemoryError: keep what we knew
                self._note_fault("reading the thread limits", exc)
        return sy.thread_limit

    def _may_start_short(self) -> bool:
        """Owner, short of threads, under the cap: may the next call start inline? Yes
        if a worker is idle (it will take the loop), or if no thread will ever come back
        (nothing in flight: waiting would be a hang; the call keeps the loop if it
        blocks). Otherwise no: it waits for a worker to come back, or for the retry."""
        sy = self._syslet
        self._schedule_retry()
        threads = sy.threads
        if threads is None or threads.has_idle():
            return True
        home = sy.home
        mine = 0 if home is None or home.ident == threading.get_ident() else 1
        return (
            sy.blocked_total == sy.blocked_drained
            and not sy.eager_outstanding
            and threads.busy_count() - mine <= 0
        )

    def _schedule_retry(self) -> None:
        sy = self._syslet
        if sy.retry_handle is None and not self.is_closed():
            sy.retry_handle = self.call_later(sy.retry_delay, self._retry_threads)

    def _retry_threads(self) -> None:
        """Timer, owner, while short of threads: can threads be started again? Back off
        from RETRY_MIN to RETRY_MAX while they cannot."""
        sy = self._syslet
        sy.retry_handle = None
        threads = sy.threads
        if threads is None or not sy.short_of_threads:
            return
        self._revive_watchdog()
        try:
            threads.start_spare()
        except Exception:
            with sy.own_lock:
                sy.thread_start_failures += 1
            sy.retry_delay = min(sy.retry_delay * 2, RETRY_MAX)
            self._schedule_retry()
            return
        limit = self._read_limit(force=True)
        with sy.own_lock:
            sy.cap = cap_for(
                limit,
                configured=sy.options.max_blocked,
                blocked_now=sy.blocked_total - sy.blocked_drained,
                machinery_to_start=1,  # the spare's replacement after the next claim
            )
            sy.max_blocked_now = sy.cap
            sy.short_of_threads = False
        sy.retry_delay = RETRY_MIN
        logger.info("sysletloop: threads can be started again; max_blocked now %d", sy.cap)

    def _revive_watchdog(self) -> None:
        """Owner, between calls: replace a watchdog that never started or has died."""
        sy = self._syslet
        watchdog = sy.watchdog
        if watchdog is None or watchdog.is_alive():
            return
        fresh = self._new_watchdog()
        if isinstance(fresh, NoWatchdog):
            return
        sy.watchdog = fresh
        watchdog.close()

    def _note_long_inline(self) -> None:
        """Owner: an inline call came back long after the threshold, still inline:
        nobody claimed it (the watchdog is missing or dead), or a claim found no thread
        (then counted already, unless the call ran on well past the failed claim)."""
        if self._syslet.short_of_threads:
            return  # a failed claim kept it, and counted it
        self._after_stall()

    def _after_stall(self) -> None:
        """Owner: an inline call stalled the loop: a claim found no thread to take the
        loop over, or none came (the watchdog is missing or dead)."""
        sy = self._syslet
        sy.stalled_calls += 1
        watchdog = sy.watchdog
        if watchdog is not None and not watchdog.is_alive():
            if not isinstance(watchdog, NoWatchdog):
                self._note_fault("the watchdog thread", RuntimeError("it is not running"))
            self._revive_watchdog()


def _weak_claim(loop: ThreadShortageLoop) -> Callable[[object], None]:
    """The watchdog's ``on_overdue``: ``loop._claim``, held weakly."""
    ref = weakref.ref(loop)

    def on_overdue(token: object) -> None:
        target = ref()
        if target is not None:
            target._claim(token)

    return on_overdue
