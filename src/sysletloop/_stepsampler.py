"""The step sampler: notices that the loop's thread is blocked inside a handle.

A syslet loop with ``migrate_steps`` watches the handles it runs (task steps, callbacks)
without touching them: no per-handle work on the loop's thread at all. A sampling
thread, in the manner of Go's sysmon, looks at the owner thread every ``period``
seconds and asks three questions:

    1. Did its CPU clock advance (``time.pthread_getcpuclockid``)? Then it computes (or
       ran several handles): nothing to do. A handle that holds the GIL is never moved,
       as nothing would be gained and its Python code would interleave with others'.
    2. If not, where is it? ``sys._current_frames()``: a *step chain* is the frames from
       the innermost up to the one that ``Handle._run`` called, when ``Handle._run`` was
       called by the loop's ``_run_once``. No chain: it polls, or runs an inline call
       (the watchdog's business), or is not in the loop at all.
    3. Is it at the same frame and the same instruction as at the previous look, with
       the CPU clock still (less than ``CPU_SHARE`` of the time between the looks)? Then
       it waits in the kernel: report it, once, when it has been seen so for at least
       ``threshold`` (``on_blocked``; the loop decides whether to claim it).

A *known* site -- the same code and instruction as a step claimed before -- is reported
at the first look that finds the owner there, without waiting out the threshold or for
its CPU clock to be seen still (the sampler holds the GIL as it looks, so the owner is
not running bytecode: it waits in that call, or for the GIL; a wrong guess costs one
hand-over and one take-back)
(Go's ``entersyscallblock``, by place rather than by call): when twenty tasks made ready
together each block at the same line, each stalls the loop for one look, not for a
threshold. After a claim the sampler looks every ``BURST_PERIOD`` for ``BURST_TIME``,
since more claims tend to follow.

Glossary
    look       one sample: the three questions above, with the GIL held.
    sighting   a step chain seen at a look; a *candidate* once seen with the CPU still.
    back-off   after looks that find the loop polling with its CPU still, the period
               doubles up to ``IDLE_MAX``; any look that finds work resets it.
    park       with no owner (the loop is not running) the sampler waits for ``wake``.

Thread rules
    The sampler thread reads the owner's ident and epoch through ``owner()`` (the loop
    says how), and frames through ``sys._current_frames()``, all with the GIL. It
    writes only its own fields. ``wake``/``close`` may be called from any thread.

A thread waiting for the GIL also looks still (no CPU, same instruction). The sampler
holds the GIL at each look, so the owner was not running bytecode then either way; a
GIL wait longer than a threshold (a switch interval is 5 ms) can be mistaken for a
block. The claim that follows is still correct (the step is held and taken back), only
wasted: one hand-over and one take-back.

Cost: a look reads two clocks while the owner computes (its CPU moves), and reads the
frames only while the owner is still. Measured with ``python -m benchmarks.instructions``
(the loop thread's own work is unchanged: the sampler adds none to an iteration) and by
its CPU time in ``benchmarks.watchdog_cost``-style runs (see docs/design.rst).

Rejected: a counter bumped per handle and read by the sampler (a store per handle on the
hot path); arming a timer per handle (a futex wake per handle, ~15-20 us of CPU); the C
watchdog reading the CPU clock without the GIL (it must take the GIL to read frames
anyway, and a still owner leaves the GIL free).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import types
from collections.abc import Callable

from ._timerslack import reduce_timer_slack

__all__ = ["BlockedStep", "StepSampler"]

logger = logging.getLogger("sysletloop")

# The owner counts as still when its CPU clock advanced by less than this share of the
# time between two looks. A step waiting in the kernel uses none; a short sleep in a loop
# (time.sleep(0.0001) repeated) uses about 5-10 us of CPU per 100 us: mostly waiting, and
# worth moving.
CPU_SHARE = 0.2
# Longest period after back-off: the most a block that starts after a quiet spell waits
# before it is first seen (then one more period to confirm it). 10 ms, as Go's sysmon.
IDLE_MAX = 0.01  # seconds
# After a claim, look this often, for this long (each further claim extends it). A look
# that finds the owner computing costs two clock reads, a few us: at 100 us that is a few
# percent of a core, paid only while steps keep blocking.
BURST_PERIOD = 0.0001  # seconds
BURST_TIME = 0.05  # seconds
# Known sites kept at most (code object, instruction offset); the set starts again past it.
MAX_KNOWN = 4096

_monotonic = time.monotonic
_cpu_clock = time.pthread_getcpuclockid
_clock_gettime = time.clock_gettime
_current_frames = sys._current_frames


class BlockedStep:
    """A step seen blocked: its thread, the epoch it owned, the frame chain (innermost
    first, up to the step's root), the instruction and when it was first seen still."""

    __slots__ = ("chain", "epoch", "frame", "ident", "lasti", "reported", "since")

    def __init__(
        self, ident: int, epoch: int, chain: list[types.FrameType], since: float
    ) -> None:
        self.ident = ident
        self.epoch = epoch
        self.chain = chain
        self.frame = chain[0]
        self.lasti = chain[0].f_lasti
        self.since = since
        self.reported = False


def step_chain(
    frame: types.FrameType | None, handle_code: types.CodeType, loop_code: types.CodeType
) -> list[types.FrameType] | None:
    """The frames of the handle ``frame`` is in, innermost first, up to the one
    ``Handle._run`` called, if ``Handle._run`` was called by the loop's iteration; else
    None (polling, an inline call, a bare C callback with no frame of its own)."""
    chain: list[types.FrameType] = []
    while frame is not None:
        code = frame.f_code
        if code is handle_code:
            back = frame.f_back
            if chain and back is not None and back.f_code is loop_code:
                return chain
            return None
        if code is loop_code:
            return None
        chain.append(frame)
        frame = frame.f_back
    return None


class StepSampler:
    """Reports, once per step, a handle blocked for at least ``threshold`` seconds."""

    def __init__(
        self,
        *,
        threshold: float,
        owner: Callable[[], tuple[int, int] | None],
        on_blocked: Callable[[BlockedStep], bool],
        handle_code: types.CodeType,
        loop_code: types.CodeType,
        name: str,
    ) -> None:
        self._threshold = threshold
        self._period = max(threshold / 2, 0.0002)
        self._owner = owner
        self._on_blocked = on_blocked
        self._handle_code = handle_code
        self._loop_code = loop_code
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._woken = False
        # The sampler thread's own state (see "Thread rules").
        self._ident = 0
        self._epoch = -1
        self._at = 0.0
        self._cpu = 0.0
        self._candidate: BlockedStep | None = None
        self._known: set[tuple[types.CodeType, int]] = set()
        self._burst_until = 0.0
        self.looks = 0  # for tests and stats: looks taken
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Any thread: the loop (re)started; look soon."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def close(self) -> None:
        """Any thread but the sampler's: stop and join the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def native_id(self) -> int | None:
        return self._thread.native_id

    def _main(self) -> None:
        reduce_timer_slack()  # 50 us of default slack on a 100 us burst period is half
        delay: float | None = self._period
        while True:
            with self._cond:
                if not self._closed and not self._woken:
                    self._cond.wait(delay)
                self._woken = False
                if self._closed:
                    return
            try:
                delay = self._look()
            except Exception as exc:  # a bug, or MemoryError: keep watching
                logger.error("sysletloop: the step sampler's look failed", exc_info=exc)
                delay = self._threshold

    def _next(self, now: float) -> float:
        return BURST_PERIOD if now < self._burst_until else self._period

    def _look(self) -> float | None:
        """One sample; returns the delay before the next (None: park until woken)."""
        self.looks += 1
        who = self._owner()
        if who is None:
            self._ident = 0
            self._candidate = None
            return None
        ident, epoch = who
        now = _monotonic()
        try:
            cpu = _clock_gettime(_cpu_clock(ident))
        except (OSError, OverflowError):  # the thread is gone: the owner changes
            self._ident = 0
            self._candidate = None
            return self._next(now)
        if ident != self._ident or epoch != self._epoch:
            self._ident, self._epoch, self._at, self._cpu = ident, epoch, now, cpu
            self._candidate = None
            return self._next(now)
        elapsed = now - self._at
        used = cpu - self._cpu
        self._at, self._cpu = now, cpu
        known = self._known
        if used > CPU_SHARE * elapsed and not known:
            self._candidate = None  # it computes
            return self._next(now)
        chain = step_chain(_current_frames().get(ident), self._handle_code, self._loop_code)
        if chain is None:
            self._candidate = None
            if used > CPU_SHARE * elapsed:
                return self._next(now)
            return min(2 * elapsed, IDLE_MAX)  # polling (or an inline call): back off
        candidate = self._candidate
        top = chain[0]
        if candidate is None or candidate.frame is not top or candidate.lasti != top.f_lasti:
            self._candidate = candidate = BlockedStep(ident, epoch, chain, now - elapsed)
            if (top.f_code, candidate.lasti) not in known:
                return self._next(now)
        elif used > CPU_SHARE * elapsed:
            self._candidate = None  # the same place, but it computed meanwhile
            return self._next(now)
        elif candidate.reported or now - candidate.since < self._threshold:
            return self._next(now)
        candidate.reported = True
        candidate.chain = chain
        claimed = False
        with contextlib.suppress(Exception):  # the loop logs its own faults
            claimed = self._on_blocked(candidate)
        if claimed:
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
            self._known.add((top.f_code, candidate.lasti))
            self._burst_until = now + BURST_TIME
        return self._next(now)
