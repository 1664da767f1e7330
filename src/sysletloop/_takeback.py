"""Taking the loop back: a thread that lost the loop in the middle of something gets it
back at the owner's next safe point.

Two kinds of thread do: a thread whose eager call (``call_eager``, run inside a task
step) blocked and has returned, which must finish its task step as the owner; and the
home thread, deposed and free again, going home (``home_affinity``). Both file a
``StealRequest`` in one FIFO and wait; the owner grants the oldest when a queued grant
handle's turn comes, or instead of ending the run. The protocol, its races and the
alternatives rejected are written once, in ``_handover`` ("Eager calls and taking the
loop back", "Going home"); this module is its code.

Thread rules: ``steal_requests``, ``eager_outstanding`` and ``run_ending`` are under
``own_lock`` (``steal_filed`` is its condition); a requester touches loop state only
after its grant; ``call_eager`` runs on the owner, inside a task step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._callrecord import CallRecord
from ._handover import HandOverLoop, enter_task
from ._home import HomeRun
from ._profile import MAX_PROFILES, SLOW_CALL, Profile
from ._threadstate import OwnerThreadState

__all__ = ["SEND_AWAY", "StealRequest", "TakeBackLoop"]

T = TypeVar("T")

SEND_AWAY = object()  # call_eager's answer for "predicted to block: use the syslet path"


class TakeBackLoop(HandOverLoop):
    """Eager calls, and the grants that give a waiting thread the loop back. The loop
    (``_loop``) supplies ``_deliver_returned``."""

    def _deliver_returned(self, call: CallRecord) -> None:
        """Owner: resolve a blocked call whose outcome did not go through the ring (the
        home thread's own, delivered on going home): ``_loop``."""
        raise NotImplementedError

    def _request_stop(self) -> None:
        """Any thread: stop the loop at its next iteration (a stored Ctrl-C)."""
        self._stopping = True
        self._write_to_self()

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
        sy = self._syslet
        with sy.steal_filed:
            while not sy.steal_requests and sy.eager_outstanding:
                sy.steal_filed.wait()
            if sy.steal_requests:
                return True
            sy.run_ending = True  # the home thread must not file a request now
            return False

    def call_eager(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T | object:
        """Run ``fn`` now, inside the current task step (see :func:`sysletloop.call_eager`).
        Must be called by the loop's owner, from a task. Returns ``SEND_AWAY`` instead
        when the predictor says ``fn`` blocks: the caller then takes the syslet path."""
        sy = self._syslet
        try:
            profile = sy.eager_profiles.get(fn)
        except TypeError:  # an unhashable callable: the table keys it by its class
            profile = sy.profiles.get(fn)
        if profile is not None and profile.last_blocked and sy.options.predict_blocking:
            sy.eager_redirected += 1
            return SEND_AWAY
        if sy.short_of_threads:
            return SEND_AWAY  # no thread to move to: wait in the queue like any call
        watchdog = sy.watchdog
        if watchdog is None:
            watchdog = self._start_threads()
        state = sy.owner_state
        cell: list[object] = [fn]  # an eager cell holds fn itself (no CallRecord)
        sy.inline = cell
        started = watchdog.arm(cell)
        try:
            return fn(*args, **kwargs)
        finally:
            try:
                cell.pop()
            except IndexError:  # claimed while fn ran: wait for the loop to come back
                assert state is not None
                if self._hand_over_failed(cell, eager=True):
                    sy.inline = None  # no thread took it over: still ours
                    watchdog.disarm()
                    self._after_stall()
                else:
                    self._take_back(cell, state)
                    sy.eager_blocked += 1
            else:
                sy.inline = None
                watchdog.disarm()
                sy.eager_completions += 1
                elapsed = time.monotonic() - started
                if profile is not None or elapsed >= SLOW_CALL:
                    if elapsed > sy.stall_after:
                        self._note_long_inline()
                    self._eager_profile(fn).note_inline(elapsed)

    def _eager_profile(self, fn: object) -> Profile:
        """The profile of an eager callable, cached by identity: the fast path pays one
        dict lookup, and only callables seen slow or blocking are in the cache."""
        sy = self._syslet
        try:
            profile = sy.eager_profiles.get(fn)
        except TypeError:  # unhashable: not cached here
            return sy.profiles.get(fn)
        if profile is None:
            if len(sy.eager_profiles) >= MAX_PROFILES:
                sy.eager_profiles.clear()
            profile = sy.eager_profiles[fn] = sy.profiles.get(fn)
        return profile

    def _take_back(self, cell: object, state: OwnerThreadState) -> None:
        """This thread's eager call (or task step, ``_steps``) blocked and has now
        returned: wait until the current owner hands the loop back, then re-enter the
        task it was running."""
        sy = self._syslet
        request = StealRequest(threading.get_ident(), state, eager=True)
        with sy.steal_filed:
            sy.steal_requests.append(request)
            sy.steal_filed.notify()
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
        task = sy.interrupted_tasks.pop(id(cell))
        if task is not None:
            enter_task(self, task)
        if interrupt is not None:
            try:
                raise interrupt  # now as the owner, as stock asyncio would raise it
            finally:
                interrupt = None

    def _go_home(self, home: HomeRun, state: OwnerThreadState) -> StealRequest | None:
        """Home thread, deposed and free again: take the loop back from whichever thread
        owns it, at that owner's next safe point. Returns the granted request, or None
        if the run ended (or is ending) without this thread: see "Going home"."""
        sy = self._syslet
        request = StealRequest(home.ident, state, eager=False)
        with sy.steal_filed:
            if sy.run_ending:
                return None
            sy.steal_requests.append(request)
            sy.steal_filed.notify()
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

    def _drive_home(self, request: StealRequest) -> bool:
        """Home thread, owner again after going home: deliver its own call's outcome,
        run the jobs queued for it (signal handlers), then drive as ``_drive`` does."""
        sy = self._syslet
        sy.home_returns += 1
        request.state.enter()
        home = sy.home
        assert home is not None
        call, home.returned = home.returned, None
        if isinstance(call, CallRecord):
            self._deliver_returned(call)
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
        if self._syslet.steal_requests:
            self._grant_steal()

    def _grant_steal(self, *, at_stop: bool = False) -> None:
        """Owner: give the loop to the oldest thread waiting to take it back (an eager
        call's, or the home thread going home). ``at_stop``: the run is stopping and this
        owner's last iteration is over."""
        sy = self._syslet
        with sy.own_lock:
            request = sy.steal_requests.popleft()
            if request.eager:
                sy.eager_outstanding -= 1
            sy.epoch += 1
            self._thread_id = request.ident
        request.at_stop = at_stop
        mine = sy.owner_state
        sy.owner_state = request.state
        home = sy.home
        if (
            home is not None
            and home.ident == threading.get_ident()
            and not sy.options.home_affinity
        ):
            home.start_serving()  # it will only wait for the end: jobs run at once
        if mine is not None:
            mine.deposed = True  # this thread's _drive steps out after this handle
            mine.leave()
        request.granted.release()


class StealRequest:
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
