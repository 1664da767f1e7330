"""Steps that block unwrapped: the loop moves on while a task step waits in the kernel.

With ``migrate_steps``, a task step (or a callback with a Python frame of its own) that
blocks in a call nobody wrapped -- ``time.sleep``, ``socket.recv``, a sync driver --
is *claimed* as an inline call is: the loop goes on on another thread, and the step's
thread, once its call returns, takes the loop back before it runs one more bytecode of
the step (the eager calls' take-back, in ``_takeback``). The pieces:

    ``_stepsampler``  the sampling thread that sees the owner still inside a handle;
    ``_stephold``     the ``sys.monitoring`` catch that holds the step's thread at its
                      next instruction;
    this module       the claim and the held thread's return, as a layer of the loop.

The protocol (the claim, the race with the call returning, the take-back, what is not
caught, the alternatives rejected) is written once, in ``_handover``, "Steps that block
unwrapped". Thread rules: ``_claim_step`` runs on the sampler's thread and touches loop
state only under ``own_lock``, as the watchdog's claim does; ``_held_step_resumed`` runs
on the held thread, inside the monitoring callback, and touches loop state only after
its take-back is granted (it is the owner then). ``step_sites`` is the owner's.
"""

from __future__ import annotations

import asyncio
import dis
import linecache
import os
import sys
import threading
import time
import traceback
import types
import weakref
from dataclasses import dataclass

from . import _stepcalls, _stephold
from ._handover import HandOverRecord
from ._stephold import StepHold
from ._stepsampler import BlockedStep, StepSampler, step_chain
from ._takeback import TakeBackLoop
from ._threadstate import OwnerThreadState, driving

__all__ = ["BlockedSite", "ClaimedStep", "StepClaimLoop"]

# Spares kept ahead of a burst of claims (see _want_step_spares), and for how long.
SPARES_AHEAD = 16
SPARES_FOR = 0.05  # seconds

# Hold states, under own_lock: ARMED until the claimer commits (CLAIMED) or gives up
# (CANCELLED), or the held thread resumes first (RELEASED: its call returned in time).
ARMED, CLAIMED, CANCELLED, RELEASED = 0, 1, 2, 3

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_HANDLE_RUN: types.CodeType = asyncio.Handle._run.__code__
# CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR
_GENERATOR_LIKE = 0x20 | 0x80 | 0x100 | 0x200

# Instructions a step can be blocked in (a C call in progress) that go on in the same
# frame when the call is over: its next instruction, or a handler, is armed. Not the ones
# that leave the frame (RETURN_*, YIELD_VALUE, RAISE_VARARGS, RERAISE): a thread stopped
# at one of those (preempted, not blocked) would leave the step without running an armed
# instruction. With and without sys.monitoring's INSTRUMENTED_ prefix.
_CALL_LIKE = frozenset(
    dis.opmap[prefix + name]
    for name in (
        "CALL", "CALL_FUNCTION_EX", "CALL_KW", "BEFORE_WITH", "FOR_ITER", "IMPORT_NAME", "SEND"
    )
    for prefix in ("", "INSTRUMENTED_")
    if prefix + name in dis.opmap
)  # fmt: skip


class ClaimedStep(StepHold):
    """A blocked step's hold, with what the claim and the report need."""

    __slots__ = ("owner_state", "predicted", "since", "site", "state")

    def __init__(
        self, blocked: BlockedStep, codes: tuple[types.CodeType, ...], loop: object
    ) -> None:
        ref = weakref.ref(loop)

        def on_resume(hold: StepHold) -> None:
            target = ref()
            if target is not None:
                target._held_step_resumed(hold)  # type: ignore[attr-defined]

        super().__init__(blocked.ident, codes, on_resume)
        root = blocked.chain[-1]
        self.site = (blocked.frame.f_code, blocked.lasti, root.f_code, root.f_lasti)
        self.since = blocked.since
        self.state = ARMED
        self.owner_state: object = None
        self.predicted = False  # claimed by the owner at a watched site (_stepcalls)


@dataclass(frozen=True, slots=True)
class BlockedSite:
    """Where unwrapped calls blocked a step: ``file:line`` of the innermost Python frame
    (``where``), its function, the source of the call there (``call``: the C function
    that blocked, as written), the step's own frame at that moment (``step``: the line
    of the coroutine or callback that the loop ran, in the application's code even when
    the block was deep in a library), how often and for how long."""

    where: str
    function: str
    call: str
    step: str
    claims: int
    blocked_seconds: float


class StepClaimLoop(TakeBackLoop):
    """The claim of a step that blocked unwrapped (``migrate_steps``)."""

    def _start_step_sampler(self, loop_code: types.CodeType) -> None:
        """Owner, at ``run_forever``: make sure the sampler runs (and the thread cache and
        watchdog exist: a claim hands the loop to a worker, from the sampler's thread)."""
        sy = self._syslet
        sy.step_loop_code = loop_code
        if sy.watchdog is None:
            self._start_threads()
        sampler = sy.step_sampler
        if sampler is not None and sampler.is_alive():
            sampler.wake()
            return
        ref = weakref.ref(self)

        def owner() -> tuple[int, int] | None:
            loop = ref()
            if loop is None:
                return None
            ident = loop._thread_id
            return None if ident is None else (ident, loop._syslet.epoch)

        def on_blocked(blocked: BlockedStep) -> bool:
            loop = ref()
            return loop is not None and loop._claim_step(blocked)

        def on_sighted(blocked: BlockedStep) -> None:
            loop = ref()
            if loop is not None:
                loop._step_sighted(blocked)

        def napping(value: bool) -> None:
            loop = ref()
            if loop is not None:
                loop._syslet.sampler_napping = value

        try:
            _stephold.tool_id()  # every sys.monitoring id we could use may be taken
        except RuntimeError as exc:
            # Steps stall as on a stock loop; said once, never a failed run.
            self._note_fault("holding blocked steps (migrate_steps is off for this loop)", exc)
            return
        try:
            sy.step_sampler = StepSampler(
                threshold=sy.options.block_threshold,
                owner=owner,
                on_blocked=on_blocked,
                on_sighted=on_sighted,
                napping=napping,
                handle_code=_HANDLE_RUN,
                loop_code=loop_code,
                poll_code=getattr(type(self._selector).select, "__code__", None),
                name="sysletloop-sampler",
            )
        except Exception as exc:  # no thread (a PID limit, memory): steps stall until
            # threads can be started again (_revive_watchdog, on the retry timer)
            self._note_shortage("starting the step sampler", exc)
            self._schedule_retry()

    def _revive_watchdog(self) -> None:
        """Owner, between calls: replace a watchdog, or a step sampler, that never
        started or has died."""
        super()._revive_watchdog()
        sy = self._syslet
        sampler = sy.step_sampler
        loop_code = sy.step_loop_code
        if (
            sy.options.migrate_steps
            and loop_code is not None
            and (sampler is None or not sampler.is_alive())
            and self.is_running()
        ):
            self._start_step_sampler(loop_code)

    def _step_sighted(self, blocked: BlockedStep) -> None:
        """Sampler thread: a step seen still for the first time. If it waits in the
        kernel at a call (rule 0 of the claim; not a thread the OS merely preempted),
        claims may follow: have spares started for them."""
        if _asleep_at_call(blocked) is not None:
            self._want_step_spares()

    def _want_step_spares(self) -> None:
        """Sampler thread (a step seen still for the first time, or claimed), or the
        owner (a claim at a watched site): a claim, or more, may follow, each needing a
        thread to take the loop over; a thread start costs 100-250 us here, so have the
        starter make spares now, one per handle waiting behind this step (the tasks
        made ready with it tend to block alike), up to ``SPARES_AHEAD``."""
        threads = self._syslet.threads
        if threads is None:
            return
        try:
            wanted = min(len(self._ready) + 1, SPARES_AHEAD)
            threads.want_spares(wanted, time.monotonic() + SPARES_FOR)
        except Exception as exc:  # the starter thread could not start (or MemoryError)
            self._note_shortage("starting a spare thread", exc)

    def _wake_step_sampler(self) -> None:
        """Owner, just back from a poll that could wait: the sampler naps (it found the
        loop polling), and what runs next may block: have it look again now."""
        sy = self._syslet
        sy.sampler_napping = False
        sampler = sy.step_sampler
        if sampler is not None:
            sampler.wake()

    def _claim_step(self, blocked: BlockedStep) -> bool:
        """Sampler thread: the owner has been still inside a handle (for the threshold,
        or at a site known to block). Hold its thread at its next bytecode, then claim
        the loop from it, if it is still there; else undo the hold. True if claimed."""
        try:
            return self._claim_step_and_hand_over(blocked)
        except Exception as exc:  # MemoryError, or a bug: nothing was claimed
            self._note_fault("the claim of a blocked step", exc)
            return False

    def _claim_step_and_hand_over(self, blocked: BlockedStep) -> bool:
        sy = self._syslet
        if sy.inline is not None or sy.closing or sy.epoch != blocked.epoch:
            return False  # an inline or eager call (the watchdog's), or the owner changed
        if _stephold.is_held(blocked.ident):
            return False  # claimed already: its successor has not set _thread_id yet
        if self._steps_at_cap():
            if not blocked.capped:
                blocked.capped = True
                sy.steps_at_cap += 1
            return False
        tid = _asleep_at_call(blocked)
        if tid is None:
            return False  # not waiting in the kernel at a call: preempted, or the GIL
        codes = _codes_to_arm(blocked.chain)
        if codes is None:
            return False  # the loop's own code, not a user's step
        hold = ClaimedStep(blocked, codes, self)
        if not _stephold.arm(hold):
            return False  # the owner held itself meanwhile, at a watched site
        # Armed: from here the thread stops at its next instruction in any of these
        # codes. Is it still where it was seen, and still asleep in the kernel? (If it
        # moved on, it either passed through the callback already, RELEASED, or is past
        # the chain: undo. If it is runnable at that call, it may be about to enter a
        # Python callee, which is not armed: undo.)
        frame = sys._current_frames().get(blocked.ident)
        if frame is not blocked.frame or frame.f_lasti != blocked.lasti or not _sleeping(tid):
            self._cancel_hold(hold)
            return False
        if not self._commit_step_claim(hold, blocked):
            return False
        if sy.options.predict_blocking:
            _stepcalls.watch(blocked.frame.f_code, blocked.lasti, self)
        return True

    def _commit_step_claim(self, hold: ClaimedStep, blocked: BlockedStep) -> bool:
        """Either claimer (the sampler, or the owner at a watched site), ``hold`` armed:
        take the loop from the step's thread if nothing moved meanwhile (under
        ``own_lock``: the hold still armed, the same epoch, no inline call, not closing,
        that thread still the owner), start the successor and ask for spares; else undo
        the hold. True if claimed."""
        sy = self._syslet
        hand_over = HandOverRecord(hold, migration=False)
        with sy.own_lock:
            claimed = (
                hold.state == ARMED
                and sy.epoch == blocked.epoch
                and sy.inline is None
                and not sy.closing
                and self._thread_id == blocked.ident
            )
            if claimed:
                hold.state = CLAIMED
                hold.owner_state = sy.owner_state
                sy.epoch += 1
                epoch = sy.epoch
                sy.hand_over = hand_over
                sy.eager_outstanding += 1  # a run cannot end before it takes the loop back
                sy.claimed_steps += 1
                if hold.predicted:
                    sy.predicted_steps += 1
        if not claimed:
            self._cancel_hold(hold)
            return False
        self._start_successor(hand_over, epoch, hold, id(hold), False, soon=True)
        self._want_step_spares()
        return True

    def _steps_at_cap(self) -> bool:
        """At the cap: a step that blocks now stalls, as on a stock loop. Unless a thread
        waits to take the loop back: the successor grants it at once (it may hold what
        this step waits for), so the claim adds no thread for long."""
        sy = self._syslet
        return (
            sy.blocked_total - sy.blocked_drained + sy.eager_outstanding >= sy.max_blocked_now
            and not sy.steal_requests
        )

    def _claim_called_step(self, frame: types.FrameType, offset: int) -> None:
        """The owner, in ``_stepcalls``' CALL callback, about to make a C call at a site
        where a step blocked before: claim the step itself, before the call starts, so
        the loop goes on elsewhere at once. The call then runs, and the thread is held
        at its next instruction as after the sampler's claim. Nothing is claimed unless
        this thread owns the loop and runs a step of it (not an inline call)."""
        try:
            self._claim_called_step_and_hand_over(frame, offset)
        except Exception as exc:  # MemoryError, or a bug: nothing was claimed
            self._note_fault("the claim of a step at a watched site", exc)

    def _claim_called_step_and_hand_over(self, frame: types.FrameType, offset: int) -> None:
        sy = self._syslet
        ident = threading.get_ident()
        if (
            self._thread_id != ident
            or sy.inline is not None
            or sy.closing
            or frame.f_lasti != offset
            or _stephold.is_held(ident)
            or self._steps_at_cap()
        ):
            return
        loop_code = sy.step_loop_code
        chain = None if loop_code is None else step_chain(frame, _HANDLE_RUN, loop_code)
        if chain is None:
            return  # not inside a step the iteration runs (an eager task's first step)
        codes = _codes_to_arm(chain)
        if codes is None:
            return
        blocked = BlockedStep(ident, sy.epoch, chain, time.monotonic())
        hold = ClaimedStep(blocked, codes, self)
        hold.predicted = True
        if not _stephold.arm(hold):
            return
        # Armed: this thread stops at its next instruction in the step's frames, which is
        # after the call (it runs no bytecode of the step before that).
        if self._commit_step_claim(hold, blocked):
            hold.since = time.monotonic()  # the call starts now: a miss is judged from here

    def _cancel_hold(self, hold: ClaimedStep) -> None:
        sy = self._syslet
        with sy.own_lock:
            if hold.state == ARMED:
                hold.state = CANCELLED
        _stephold.release(hold)

    def _held_step_resumed(self, hold: StepHold) -> None:
        """The held thread, in the monitoring callback, before its next bytecode: if the
        step was claimed, wait to own the loop again; else just go on."""
        assert isinstance(hold, ClaimedStep)
        sy = self._syslet
        with sy.own_lock:
            state = hold.state
            if state == ARMED:
                hold.state = RELEASED  # returned before the claim: nothing moved
        _stephold.release(hold)
        if state != CLAIMED:
            return
        if hold.predicted and time.monotonic() - hold.since < _stepcalls.MISS_TIME:
            code, lasti = hold.site[0], hold.site[1]
            _stepcalls.forget(code, lasti, self)  # it did not block: a miss
        owner_state = hold.owner_state
        assert isinstance(owner_state, OwnerThreadState)
        if self._hand_over_failed(hold, eager=True):
            self._after_stall()  # no thread took the loop over: it is still ours
        else:
            self._take_back(hold, owner_state)
        self._note_blocked_site(hold)

    def _check_deposed(self) -> None:
        """A thread back from a handle finds the loop someone else's. It granted a
        take-back in that handle (then it is marked ``deposed`` already), or else a
        claimed step left its frames without running an armed instruction: a fault of
        the claim's checks. Then this thread must not drive on: it steps out as a
        deposed owner does (the home thread then goes home), and the fault is logged."""
        mine = getattr(driving, "state", None)
        if mine is None or mine.deposed:
            return
        mine.deposed = True
        where = "".join(traceback.format_stack(limit=12))
        self._note_fault(
            "holding a claimed step",
            RuntimeError(f"a claimed step ran on unheld; this thread came back from:\n{where}"),
        )

    def _note_blocked_site(self, hold: ClaimedStep) -> None:
        """Owner: count a claimed step at its site (where its innermost frame blocked)."""
        blocked = time.monotonic() - hold.since
        sites = self._syslet.step_sites
        entry = sites.get(hold.site)
        if entry is None:
            sites[hold.site] = [1, blocked]
        else:
            entry[0] += 1
            entry[1] += blocked

    def syslet_blocked_sites(self) -> list[BlockedSite]:
        """Where task steps blocked in calls nobody wrapped and the loop moved on
        (``migrate_steps``), the most blocked time first. From the loop's thread, or once
        it has stopped."""
        out = []
        for (code, lasti, root, root_lasti), (count, seconds) in list(
            self._syslet.step_sites.items()
        ):
            out.append(
                BlockedSite(
                    where=f"{code.co_filename}:{_line_of(code, lasti)}",
                    function=code.co_qualname,
                    call=_call_source(code, lasti),
                    step=f"{root.co_filename}:{_line_of(root, root_lasti)} in {root.co_qualname}",
                    claims=count,
                    blocked_seconds=seconds,
                )
            )
        out.sort(key=lambda s: (s.blocked_seconds, s.claims), reverse=True)
        return out


def _native_id(ident: int) -> int | None:
    """The kernel's id of the thread ``ident`` (``threading.get_ident()``'s), if Python
    knows the thread (every thread that can own a loop does)."""
    thread = threading._active.get(ident)  # type: ignore[attr-defined]
    return None if thread is None else thread.native_id


def _asleep_at_call(blocked: BlockedStep) -> int | None:
    """Rule 0 of a claim: the native id of the step's thread if it waits in the kernel at
    a call instruction; None if it is elsewhere (preempted by the OS between two
    bytecodes, or waiting for the GIL) or cannot be told."""
    if blocked.frame.f_code.co_code[blocked.lasti] not in _CALL_LIKE:
        return None
    tid = _native_id(blocked.ident)
    return tid if tid is not None and _sleeping(tid) else None


def _sleeping(tid: int) -> bool:
    """Is thread ``tid`` of this process asleep in the kernel (state S or D), not
    runnable (R: running, or preempted and waiting for a CPU)?"""
    try:
        with open(f"/proc/self/task/{tid}/stat", "rb") as stat:
            fields = stat.read()
    except OSError:
        return False
    state = fields[fields.rfind(b")") + 2 : fields.rfind(b")") + 3]
    return state in (b"S", b"D")


def _codes_to_arm(chain: list[types.FrameType]) -> tuple[types.CodeType, ...] | None:
    """The code objects to arm for a blocked step's frames, innermost first (each once),
    and ``Handle._run``'s when the root is a plain function (an exception leaving it is
    caught there). None if a frame is the loop's own code."""
    codes: list[types.CodeType] = []
    for frame in chain:
        code = frame.f_code
        if code.co_filename.startswith(_PACKAGE_DIR):
            return None
        if code not in codes:
            codes.append(code)
    if not chain[-1].f_code.co_flags & _GENERATOR_LIKE:
        codes.append(_HANDLE_RUN)
    return tuple(codes)


def _line_of(code: types.CodeType, lasti: int) -> int:
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


def _call_source(code: types.CodeType, lasti: int) -> str:
    """The source text of the call at ``lasti`` (``time.sleep(0.05)``), if it can be read."""
    positions = list(code.co_positions())
    index = lasti // 2
    if index >= len(positions):
        return ""
    line, end_line, col, end_col = positions[index]
    if line is None or line != end_line or col is None or end_col is None:
        text = linecache.getline(code.co_filename, line or 0).strip()
        return text
    return linecache.getline(code.co_filename, line)[col:end_col]
