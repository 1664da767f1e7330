"""The pure-Python watchdog: notices that the inline call has run past the threshold.

The loop's owner runs a blocking callable inline. Before the call it *arms* the watchdog
with a token (the call); after the call it *disarms* it. If the same token is still armed
``threshold`` seconds after it was armed, the watchdog calls ``on_overdue(token)`` from
its own thread. The watchdog decides nothing else: whether the call is really still
running, and what to do about it, is the loop's business (it re-checks under its own
lock, so a report about a call that has just returned is harmless).

Glossary
    slot      ``(token, armed_at)``, or ``None``: what is armed now. Stored as one tuple
              so the watchdog never pairs one call's token with another call's time.
    poll      the watchdog sleeps until the armed call's deadline, looks, repeats.
    park      with nothing armed and no call since its last look, it sleeps until kicked.
    kick      notify the parked (or over-sleeping) watchdog; done by ``arm``.

Thread rules
    ``arm``/``disarm`` are called by the loop's current owner only (one thread at a time;
    a deposed owner must not call ``disarm``, or it would clear its successor's slot).
    They write ``_slot`` and ``_arms`` without a lock. The watchdog thread reads them and
    writes ``_wake_at``, under ``_cond``'s lock; ``kick`` takes that lock.

No lost kick (Dekker order, both sides publish then check):
    1. ``arm`` stores the slot, then reads ``_wake_at``; if the watchdog would sleep past
       the new deadline, it kicks (taking the lock, so the kick cannot fall between the
       watchdog's check and its wait).
    2. The watchdog stores ``_wake_at``, then re-reads the slot; if it changed, it looks
       again instead of sleeping.

A fault in the watchdog's own thread (a MemoryError while it looks or waits) must not
end it silently, or calls would stall forever unwatched: it is logged once, the thread
pauses one threshold and looks again. Only ``close`` ends the thread.

Cost: while calls keep coming the watchdog wakes once per threshold (polling), and an
``arm`` after a quiet spell costs one kick. With nothing armed for a whole threshold it
parks. A pure-Python watchdog needs the GIL to look, so a call that holds the GIL (pure
Python computing) is noticed only at the next GIL switch (``sys.getswitchinterval()``,
5 ms by default).

Rejected: a fixed-rate poll (costs CPU when idle); a timer per call (one futex wake per
call, ~15-20 us of CPU each on a small VM, more than the call being watched); signals
(interrupting the blocked call is not what we want: it must finish where it is).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable

from ._timerslack import _prctl, reduce_timer_slack

_prctl()  # look libc up now, not in the watchdog's thread while it should be watching

__all__ = ["PythonWatchdog"]

_monotonic = time.monotonic
logger = logging.getLogger("sysletloop")


class PythonWatchdog:
    """Reports a token armed for longer than ``threshold`` seconds, once per arming."""

    kind = "python"

    def __init__(
        self, threshold: float, on_overdue: Callable[[object], None], *, name: str
    ) -> None:
        self._threshold = threshold
        self._on_overdue = on_overdue
        self._slot: tuple[object, float] | None = None
        self._arms = 0
        self._wake_at = math.inf
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    # -- the owner's side --------------------------------------------------------

    def arm(self, token: object) -> float:
        """Start watching ``token``; returns the arming time (``time.monotonic()``)."""
        now = _monotonic()
        self._slot = (token, now)
        self._arms += 1
        if self._wake_at > now + self._threshold:
            self._kick()
        return now

    def disarm(self) -> None:
        self._slot = None

    # -- any thread ----------------------------------------------------------------

    def close(self) -> None:
        """Stop the watchdog thread and wait for it (unless called from it)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def native_id(self) -> int | None:
        return self._thread.native_id

    def _kick(self) -> None:
        with self._cond:
            self._cond.notify()

    # -- the watchdog thread -------------------------------------------------------

    def _main(self) -> None:
        with contextlib.suppress(Exception):  # failing: a coarser timer, no more
            reduce_timer_slack()
        logged = False
        while not self._closed:
            try:
                self._watch()
            except Exception:
                # A fault in the watchdog itself (MemoryError): report once, go on.
                if not logged:
                    logged = True
                    logger.exception("sysletloop watchdog: fault in the watchdog thread")
                time.sleep(self._threshold)

    def _watch(self) -> None:
        threshold = self._threshold
        seen_arms = -1
        reported: tuple[object, float] | None = None
        cond = self._cond
        while True:
            overdue: object = None
            with cond:
                while True:
                    if self._closed:
                        return
                    slot = self._slot
                    now = _monotonic()
                    if slot is not None and slot is not reported:
                        deadline = slot[1] + threshold
                        if now >= deadline:
                            reported = slot
                            overdue = slot[0]
                            break
                        timeout: float | None = deadline - now
                    elif self._arms != seen_arms:
                        # Calls happened since the last look: keep polling.
                        seen_arms = self._arms
                        timeout = threshold
                    else:
                        timeout = None  # park
                    self._wake_at = math.inf if timeout is None else now + timeout
                    if self._slot is not slot:
                        continue
                    cond.wait(timeout)
                    self._wake_at = 0.0  # awake: about to look, no kick needed
            try:
                self._on_overdue(overdue)
            except Exception:
                # A bug in the callback must not end the watchdog: report it, go on.
                logger.exception("sysletloop watchdog: on_overdue(%r) failed", overdue)
