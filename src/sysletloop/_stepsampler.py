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
       it waits in the kernel: report it when it has been seen so for at least
       ``threshold`` (``on_blocked``; the loop decides whether to claim it), and again
       at each look until it is claimed or moves.

A *known* site -- the same code and instruction as a step claimed before -- is reported
at the first look that finds the owner there, without waiting out the threshold or for
its CPU clock to be seen still (the sampler holds the GIL as it looks, so the owner is
not running bytecode: it waits in that call, or for the GIL; a wrong guess costs one
hand-over and one take-back)
(Go's ``entersyscallblock``, by place rather than by call): when twenty tasks made ready
together each block at the same line, each stalls the loop for one look, not for a
threshold. After a claim the sampler looks every ``BURST_PERIOD`` for ``BURST_TIME``,
since more claims tend to follow.

While the loop polls, the sampler backs off and *naps* where the loop can wake it: the
owner, back from a poll that could wait, wakes a napping sampler (``napping`` tells the
loop), so a step that blocks after an idle spell is seen within a base period, not a
backed-off one. At its first sight of a still step it tells the loop (``on_sighted``),
which has spare threads started for the claims that may follow. (The protocol:
``_handover``'s header.)

Glossary
    look       one sample: the three questions above, with the GIL held.
    sighting   a step chain seen at a look; a *candidate* once seen with the CPU still.
    back-off   after looks that find the loop polling with its CPU still, the period
               doubles up to ``IDLE_MAX``; any look that finds work resets it.
    park       with no owner (the loop is not running) the sampler waits for ``wake``.
    nap        backed off, the sampler waits for ``wake``: one period, or up to
               ``NAP_MAX`` when the owner is in its iteration's poll (``_nap``).

Thread rules
    The sampler thread reads the owner's ident and epoch through ``owner()`` (the loop
    says how), and frames through ``sys._current_frames()``, all with the GIL. It
    writes only its own fields, and the loop's napping flag through ``napping`` (set
    before a nap, cleared after it; the owner clears it too, then calls ``wake``: a
    bool store under the GIL each). ``wake``/``close`` may be called from any thread.

A thread waiting for the GIL also looks still (no CPU, same instruction). The sampler
holds the GIL at each look, so the owner was not running bytecode then either way; a
GIL wait longer than a threshold (a switch interval is 5 ms) can be mistaken for a
block. The claim that follows is still correct (the step is held and taken back), only
wasted: one hand-over and one take-back.

Cost: the sampler waits for a still interval in C (``_cwatchdog.wait_still``), reading
the owner's CPU clock every period *without the GIL*, and takes the GIL only when the
owner was still (then the owner is not using it) or every ``MAX_WAIT``. A Python sampler
needs the GIL to read a clock at all, and took it from a computing loop at every poll:
10% of the wall time of a loop doing nothing but ``await asyncio.sleep(0)`` (7 paired
runs, CPython 3.12), against none added to an iteration by the sampler itself. The
Python wait remains as the fallback where the extension was not built.

Rejected: a counter bumped per handle and read by the sampler (a store per handle on the
hot path); arming a timer per handle (a futex wake per handle, ~15-20 us of CPU);
a Python sampler reading the clock (the GIL cost above).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import types
from collections.abc import Callable

from ._stephold import is_held as _is_held
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
# The longest wait for a still interval before the sampler takes the GIL to look at the
# owner again (it may have changed, or the loop closed): 50 GIL acquisitions a second
# from a loop that computes all along, and what ``close()`` may wait for the thread.
MAX_WAIT = 0.02  # seconds
# The longest nap while the loop is in its poll: the loop wakes the sampler when the poll
# returns, so this only bounds how long a sampler idles unseen (and ``close`` wakes it).
NAP_MAX = 1.0  # seconds
# While the owner is a thread just claimed (its successor not yet running), look again
# this soon: the successor needs a thread wake-up and the GIL, 20-100 us.
HELD_NAP = 0.00002  # seconds
# Known sites kept at most (code object, instruction offset); the set starts again past it.
MAX_KNOWN = 4096

_monotonic = time.monotonic
_cpu_clock = time.pthread_getcpuclockid
_clock_gettime = time.clock_gettime
_current_frames = sys._current_frames


class BlockedStep:
    """A step seen blocked: its thread, the epoch it owned, the frame chain (innermost
    first, up to the step's root), the instruction and when it was first seen still."""

    __slots__ = ("capped", "chain", "epoch", "frame", "ident", "lasti", "reported", "since")

    def __init__(
        self, ident: int, epoch: int, chain: list[types.FrameType], since: float
    ) -> None:
        self.ident = ident
        self.epoch = epoch
        self.chain = chain
        self.frame = chain[0]
        self.lasti = chain[0].f_lasti
        self.since = since
        self.reported = False  # claimed: not to be reported again
        self.capped = False  # the loop's: counted once as stalled at the cap


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
        on_sighted: Callable[[BlockedStep], None],
        napping: Callable[[bool], None],
        handle_code: types.CodeType,
        loop_code: types.CodeType,
        poll_code: types.CodeType | None,
        name: str,
    ) -> None:
        self._threshold = threshold
        # Half the threshold (a block is seen twice before it is claimed), within
        # [200 us, IDLE_MAX]: a long threshold needs no slower looks (a claim still waits
        # for the threshold), and ``close`` joins the thread within one look.
        self._period = min(max(threshold / 2, 0.0002), IDLE_MAX)
        self._owner = owner
        self._on_blocked = on_blocked
        self._on_sighted = on_sighted
        self._napping = napping
        self._handle_code = handle_code
        self._loop_code = loop_code
        self._poll_code = poll_code  # the selector's select(), as _run_once calls it
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
        period = self._period
        while not self._closed:
            try:
                period = self._sample(period)
            except Exception as exc:  # a bug, or MemoryError: keep watching
                logger.error("sysletloop: the step sampler's look failed", exc_info=exc)
                period = self._threshold
                time.sleep(period)

    def _park(self) -> None:
        with self._cond:
            while not self._closed and not self._woken:
                self._cond.wait()
            self._woken = False

    def _next(self, now: float) -> float:
        return BURST_PERIOD if now < self._burst_until else self._period

    def _sample(self, period: float) -> float:
        """Wait for the owner to be still for one ``period``, then look where it is;
        returns the next period."""
        who = self._owner()
        if who is None:
            self._candidate = None
            self._park()
            return self._period
        ident, epoch = who
        if _is_held(ident):
            # Claimed: its successor has not taken the loop yet (it is still
            # ``_thread_id``). Its clock is still, and a look would be wasted: wait for
            # the successor, without the GIL.
            time.sleep(HELD_NAP)
            return self._next(_monotonic())
        if ident != self._ident or epoch != self._epoch:
            self._ident, self._epoch = ident, epoch
            self._candidate = None
        try:
            clock = _cpu_clock(ident)
        except (OSError, OverflowError):  # the thread is gone: the owner changes
            clock = None
        if clock is None:
            still = -1.0
        elif period > self._period:
            still = self._nap(ident, clock, period)
        else:
            still = _wait_still(clock, period, CPU_SHARE, MAX_WAIT)
        self.looks += 1
        now = _monotonic()
        if still <= 0.0 or self._owner() != who:
            # It computed all along (0), or is gone (-1), or the loop changed hands.
            self._candidate = None
            if still < 0.0:
                time.sleep(self._period)
            return self._next(now)
        # Still for the last ``still`` seconds: waiting in the kernel, polling, or
        # waiting for the GIL. Where?
        chain = step_chain(_current_frames().get(ident), self._handle_code, self._loop_code)
        if chain is None:
            self._candidate = None  # polling (or an inline call): back off
            return max(self._next(now), min(2 * period, IDLE_MAX))
        candidate = self._candidate
        top = chain[0]
        if candidate is None or candidate.frame is not top or candidate.lasti != top.f_lasti:
            self._candidate = candidate = BlockedStep(ident, epoch, chain, now - still)
            if (top.f_code, candidate.lasti) not in self._known:
                with contextlib.suppress(Exception):  # the loop logs its own faults
                    self._on_sighted(candidate)
                return self._next(now)
        elif candidate.reported or now - candidate.since < self._threshold:
            return self._next(now)
        candidate.chain = chain
        claimed = False
        with contextlib.suppress(Exception):  # the loop logs its own faults
            claimed = self._on_blocked(candidate)
        # Not claimed (at the cap, the loop's own code, a race): asked again next look.
        candidate.reported = claimed
        if claimed:
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
            self._known.add((top.f_code, candidate.lasti))
            self._burst_until = now + BURST_TIME
        return self._next(now)

    def _nap(self, ident: int, clock: int, period: float) -> float:
        """Backed off (the loop was polling): ``_wait_still``'s answer for one nap,
        waiting where the loop can end the wait when its poll returns (``wake``). Woken,
        the loop is about to run handles: 0.0, so that the next look comes at the base
        period. The flag is written first, then the owner looked at: if it is in its
        iteration's poll now, it will read the flag when the poll returns (it needs the
        GIL for that, after this write), so the nap may last ``NAP_MAX``; if not (it left
        the poll before the flag was written, and may be in a step), one ``period``."""
        try:
            cpu0 = _clock_gettime(clock)
        except OSError:
            return -1.0
        t0 = _monotonic()
        self._napping(True)
        nap = NAP_MAX if self._in_poll(ident) else period
        with self._cond:
            if not self._woken and not self._closed:
                self._cond.wait(nap)
            woken, self._woken = self._woken, False
        self._napping(False)
        if woken:
            return 0.0
        elapsed = _monotonic() - t0
        try:
            cpu = _clock_gettime(clock)
        except OSError:
            return -1.0
        return elapsed if cpu - cpu0 < CPU_SHARE * elapsed else 0.0

    def _in_poll(self, ident: int) -> bool:
        """Is thread ``ident`` in the loop's poll: the selector's ``select`` called by the
        iteration itself (not a selector a step uses, as ``subprocess.run`` does)?"""
        frame = _current_frames().get(ident)
        if frame is None or frame.f_code is not self._poll_code:
            return False
        back = frame.f_back
        return back is not None and back.f_code is self._loop_code


def _wait_still_in_python(clock: int, period: float, share: float, max_wait: float) -> float:
    """``_cwatchdog.wait_still``'s contract, for when the extension was not built: the
    same answers, but every look takes the GIL (from an owner that computes, at its next
    poll), which the C version never does while the owner runs."""
    try:
        cpu0 = _clock_gettime(clock)
    except OSError:
        return -1.0
    start = t0 = _monotonic()
    nap = min(period, max_wait) if max_wait > 0 else period
    while True:
        time.sleep(nap)
        now = _monotonic()
        try:
            cpu = _clock_gettime(clock)
        except OSError:
            return -1.0
        if now > t0 and cpu - cpu0 < share * (now - t0):
            return now - t0
        if now - start >= max_wait:
            return 0.0
        t0, cpu0 = now, cpu


def _choose_wait_still() -> Callable[[int, float, float, float], float]:
    try:
        from ._cwatchdog import wait_still
    except ImportError:
        return _wait_still_in_python
    chosen: Callable[[int, float, float, float], float] = wait_still
    return chosen


_wait_still = _choose_wait_still()
