"""The hand-over: how a syslet loop changes threads, and how it gets its thread back.

This is the one place where the protocol is written down. The loop (``_loop``) drives
the iterations and runs blocking calls inline; this module gives the loop to another
thread when an inline call blocks (the claim, the successor, a hand-over that found no
thread); ``_takeback`` is the other half, a thread taking the loop back (an eager call
that blocked, the home thread going home); ``_shortage`` is what the loop does while no
thread can be had. Their code follows the rules below, and their headers point here.
The state they share is one ``SysletState`` (``_state``): the names below are its
fields, ``loop._syslet.<name>``; ``_thread_id`` is asyncio's own.

Glossary
    owner      the one thread allowed to run the loop's iterations at a given instant.
    epoch      a counter bumped at every change of owner; an owner remembers the epoch it
               started with and stops touching the loop once the counter has moved.
    inline     the call the owner is running right now, in a one-item list, the *cell*
               (``inline``); ``None`` between calls.
    claim      the watchdog's verdict "this inline call blocked": it empties the cell,
               bumps the epoch and hands the loop to a new owner.
    deposed    what the thread running a claimed call is, once the call returns: it
               posts the outcome to the ring and leaves the loop's code at once (the
               home thread instead keeps it and goes home: see "Going home"). A thread
               marks itself deposed (``OwnerThreadState.deposed``) where it learns it,
               ``_run_inline`` (its call was claimed) or ``_grant_steal`` (it gave the
               loop away), and its ``_drive`` steps out at the end of the iteration.
    home       the thread that called ``run_forever``; it must also be the one to return
               from it (see ``_home``).
    pending    calls submitted but not yet started (FIFO, ``pending``).
    blocked    calls claimed whose outcome has not been drained from the ring yet.

Thread rules
    Loop state (everything asyncio keeps: ready queue, timers, selector; and ours:
    ``pending``, the counters without a lock) is touched only by the owner, as in stock
    asyncio. ``own_lock`` guards the hand-over: the claimer's reads of ``inline``, ``epoch``,
    ``blocked_total``/``blocked_drained``/``peak_blocked``/``migrations`` and
    ``_thread_id`` writes after the first. The shortage state (``short_of_threads``,
    ``max_blocked_now``, ``cap``, ``thread_start_failures``) is written under
    ``own_lock`` by any thread that saw a start fail, and read by the owner without it:
    a stale read lets at most one more call start inline, which then stalls instead of
    moving (assumed: the GIL makes the store visible; a free-threaded build would want
    these reads under the lock, off the fast path as they are). The ring, the watchdog
    and the thread cache state their own rules.

The hand-over, step by step (the race between a call returning and the watchdog):
    1. The owner puts the call in a fresh cell, sets ``inline = cell``, arms the
       watchdog with the cell, runs the call.
    2a. The call returns. The owner pops the cell: it got the call back, so nobody
        claimed it; it clears ``inline`` and carries on as owner.
    2b. The watchdog fires. Under ``own_lock`` it checks ``inline is cell`` and pops
        the cell: it got the call, so it bumps the epoch, then (outside the lock) gives
        a thread the job "own the loop from this epoch".
    ``list.pop`` is one atomic step (the GIL; a per-object lock on free-threaded
    builds), so exactly one of 2a/2b gets the call out of the cell: a claim that comes
    too late finds it empty, and an owner whose call was claimed finds it empty too. It
    then posts its outcome to the ring and unwinds without touching loop state (not
    even ``inline`` or the watchdog: those are the new owner's). The cell, rather than
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
    under ``own_lock`` it bumps the epoch and sets ``_thread_id``, installs the
    requester's ``owner_state``, lets go of its own thread state, then releases the
    requester; after the handle it sees it is no longer the owner and steps out.
    The requester re-enters its task (``_enter_task``: the new owner had taken it out
    of asyncio's current-task table, keyed by loop, so that it could run other tasks,
    and left it in ``interrupted_tasks`` before running anything; the grant, a lock
    release, orders that write before the requester's read) and finishes its step; at
    the end of that handle it sees the epoch moved while it owns the loop again, and
    starts a fresh iteration. On 3.14+ asyncio keeps the current task per *thread* (C
    thread state): the new owner's thread has none, ``current_task`` there is None, and
    there is nothing to take out or put back, as the requester's thread still holds its
    task. (3.14+ also files each task in the list of the thread that creates it: see
    ``_alltasks`` for what that means for ``asyncio.all_tasks``.) A run never ends while
    a steal request is pending: the last owner hands over instead, and the requester
    ends it.

Take-backs before anything else, after a claim:
    A thread that took the loop over because its owner blocked (``_own_from``) grants a
    waiting take-back before it runs a single handle. The waiter may hold what the next
    handles need: a step held at its next bytecode right after its blocking call
    acquired a lock (``logging``'s handler lock, in CPython's own test_ssl) keeps that
    lock until it owns the loop again. With its grant queued behind those handles, each
    owner reaching one blocked on the lock, was claimed, and the next did the same, until
    ``max_blocked`` threads (1,024) were blocked and the last owner stalled for good. A
    new owner exists only because the previous one blocked, so granting first costs no
    poll and no timer: the owner that blocked was not going to run them either.

Going home (``home_affinity``, on by default):
    The home thread is where the loop should run: the thread that called
    ``run_forever`` (the main thread, under ``asyncio.run``), where Python runs signal
    handlers and where code made before the first migration expects to be called again
    (a sqlite3 connection, thread-locals). So when the home thread is deposed and free
    again (its claimed call returned, or it granted a take-back), it takes the loop back
    as an eager caller does, as a Go thread leaving a system call takes back its P:
      * Who requests: only the home thread, only when deposed and not blocked, with a
        ``StealRequest`` (``eager=False``) in the same FIFO as eager take-backs.
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
      * The run ending first: the owner that ends a run sets ``run_ending`` under
        ``own_lock`` when it finds no request (``_await_stealer``); the home thread files
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

Steps that block unwrapped (``migrate_steps``, 3.12+; the code is in ``_steps``):
    A task step (or a callback with a Python frame of its own) that blocks in a call
    nobody wrapped is claimed like an eager call, with two differences: nothing marks
    the call (the *step sampler*, ``_stepsampler``, finds it: the owner's CPU clock still
    and its innermost frame at the same instruction inside ``Handle._run``, for the
    threshold, or once at a site that blocked before), and there is no cell for the
    step's thread to pop when its call returns (it is in the middle of user code). That
    thread is stopped instead: ``sys.monitoring`` INSTRUCTION events on the code objects
    of its frames, innermost up to the step's root (``_stephold``), run a callback on it
    before it executes one more bytecode of the step. The state of the *hold* (under
    ``own_lock``) decides the race that the cell's pop decides for calls:
      0. Only a thread that waits in a call: L must be a call-like instruction that goes
         on in the same frame (CALL, ``with``'s, FOR_ITER, SEND, IMPORT_NAME), and the
         kernel must say T is asleep (``/proc``: S or D, not R). A thread the OS has
         merely preempted also has a still CPU clock, and it may be anywhere: at a
         RETURN or YIELD it would leave the step without running an armed instruction
         and drive the loop beside its successor (CPython's test_locks hung so, under
         load); at a CALL not yet made, a Python callee would run unarmed.
      1. The sampler builds the hold (ARMED) for the owner T, seen still at frame F and
         instruction L, and arms its codes. From here T stops at its next instruction
         in any frame of the step.
      2. It reads T's innermost frame again, and T's state. Not F at L, or not asleep:
         T moved (or may) before the events were on, and nothing would stop it; the
         claim is off (CANCELLED, disarmed). Still F at L and asleep (or back there: the
         same frames, armed all the same): go on.
      3. Under ``own_lock``: the hold still ARMED, the epoch the one seen, no inline or
         eager call running, T still ``_thread_id``: the claim is made (CLAIMED), the
         epoch bumped, the hold counted in ``eager_outstanding`` (a run cannot end
         before T takes the loop back, as a stock loop's cannot end inside a step), a
         ``HandOverRecord`` left, and a worker given the job "own the loop from this
         epoch" (``_start_successor(soon=True)``: never waiting for a thread to start,
         as the sampler must keep looking; the job marks the record STARTED when it
         runs, FAILED if the thread cache strands it, and spares are kept for a burst).
      4. T's call returns (or raises): the callback runs on T first. Under ``own_lock``:
         ARMED means the call returned before the claim: RELEASED, T goes on as the
         owner it still is. CLAIMED: T disarms its hold, then, as an eager call whose
         cell was popped, keeps the loop if the hand-over FAILED (a stall), else files a
         take-back (``_take_back``) and waits in the callback for its grant. The step
         then goes on as the owner; the loop's iteration that ran it sees the epoch
         moved and starts a fresh one.
    Exactly one of 3 and 4 sees ARMED, so the step is claimed or not, never both. A
    claimed thread stays ``_thread_id`` until its successor sets its own; the sampler
    may see it again meanwhile, and ``_claim_step`` skips a thread that is held. A
    thread back from a handle in which the epoch moved, that is not ``_thread_id`` and
    was not marked deposed, was claimed and not held (a fault of rule 0): it steps out
    as a deposed thread does and the fault is logged once (``_check_deposed``).
    What fires first on T: INSTRUCTION at the instruction after the returned CALL in the
    innermost frame; if the call raised, at the first instruction of the handler that
    catches it, in whichever armed frame that is (a coroutine body always has one; a
    plain callback's exception goes to ``Handle._run``, armed too for that case).
    Generator frames, ``with`` blocks, ``await``-free helper functions: all frames of the
    chain. Several held threads at once: one hold each, codes armed by reference count;
    a thread running armed code without a hold (the new owner running other tasks of
    the same coroutine function) pays one callback per instruction of it while held.
    Not held (documented in the README): Python that C code runs on T after its call
    returns and before T is back in an armed frame -- a GC finalizer, a weakref
    callback, a sqlite3 user function called after a busy wait -- runs beside the
    loop; a Python signal handler run inside the call (main thread) too, as it does
    while any call of the main thread is migrated; a bare C callback
    (``call_soon(time.sleep, 1)``) has no frame to hold and is not claimed (it stalls
    the loop, as on stock asyncio); nor is a step while ``max_blocked`` calls and
    steps are blocked (``steps_at_cap``).
    What a step may notice: the blocking call becomes a point where other tasks run,
    as an ``await`` is; and the step goes on on whichever thread was held.
    Claimed at the call (``predict_blocking``, on by default; ``_stepcalls``): a claim
    by the sampler makes its *place* (the innermost frame's code object and call
    instruction) known, and CALL events go on for that code object. When the owner,
    inside a step the iteration runs, is about to make a C call at a known place, the
    CALL callback runs on it first and the owner claims its own step (Go's
    ``entersyscallblock``, by place): steps 1 and 3 above, made by T itself before the
    call starts. Step 0 and 2 are not needed: T is in the callback, at the call, not yet
    in it; the next bytecode it can run in the chain is the instruction after the call
    (or a handler), armed before the claim. Then the call runs, with the loop already
    going on elsewhere, and 4 is unchanged. Not claimed so: a Python callee (its
    bytecode would run beside the loop, unheld; the sampler never claims one either),
    a call outside a step (an inline call, another thread), a step at the cap. A call
    that returns within ``MISS_TIME`` of such a claim did not block: a *miss*; the place
    is forgotten, until the sampler claims a step there again. A sampler's claim and
    the owner's own claim of the same thread meet in ``_stephold.arm``, which allows
    one hold per thread (the second arm fails and claims nothing), then under
    ``own_lock`` by the epoch. Cost: twenty tasks made ready together that block at one
    line stalled the loop for a sampler look and a hand-over each (0.45 ms); at the
    call it is the hand-over alone.
    The sampler's naps: after looks that find the loop polling, the sampler backs off
    (to ``IDLE_MAX``) and naps on its condition with ``sampler_napping`` set (it writes
    it; the owner clears it). The owner, back from a poll that could wait, finds the
    flag and wakes it (``_wake_step_sampler``): a step run after an idle spell is looked
    at within a base period, not a backed-off one. A wake lost to the race (the loop
    left its poll before the flag was set) costs that nap, as before the flag.
    Threads for a burst: a claim, or the sampler's first sight of a still step, asks
    the thread cache for spares, one per handle waiting in ``_ready`` behind the step
    (``SPARES_AHEAD`` at most), since a burst of claims needs one new owner each and a
    thread start costs 100-250 us here; spares nobody takes age out as idle workers do.

When threads run out (a cgroup's pids.max, RLIMIT_NPROC, threads-max, memory):
    The loop is never handed to a thread that does not exist. After the pop (2b) the
    claimer gives the job to an idle worker or starts one; each claim leaves a
    ``HandOverRecord`` record (under ``own_lock``, set with the pop), ``PENDING`` until the
    job has a thread (``STARTED``) or cannot have one (``FAILED``: the start raised,
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
    makes the loop *short of threads*: ``max_blocked_now`` drops to 0, so every call
    takes the slow branch of ``_run_pending_calls``, where a call starts inline only if
    a worker is idle (a blocked call's thread that came back), or if no thread can ever
    come back (nothing blocked, sent away or taken over: waiting would be the hang). Any
    other call waits in ``pending``, as beyond the cap (``waited_for_threads``), and
    the loop sleeps; a worker going idle wakes it (``on_idle``), a completion wakes it,
    and a timer (``_retry_threads``) tries a start with back-off. The first start that
    succeeds ends the shortage and re-reads the limits. While short, calls are not sent
    away (the predictor) and eager calls take the queued path. The cap itself
    (``cap``) is ``max_blocked`` lowered to what the process's limits leave, read when
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
    * Steps at known places: INSTRUCTION events at the call instead of CALL events
      (a callback per instruction of the watched code, not per call); ``DISABLE`` for
      the calls that are not places (a second place in the same code would need
      ``restart_events()``, which re-enables every tool's disabled events); claiming a
      Python callee at the call (its frames would run unheld).
    * Steps: catching Python that C code runs after the block with the global
      PY_START/PY_RESUME/PY_THROW events: 3.6-4.1x on call-heavy code in every thread
      while any step is held (the feasibility study, ``../shared/design/STEPS.md``).
      Returning ``DISABLE`` to threads that are not held: it disables the event at that
      instruction for every thread, the held one too. LINE events: the rest of the line
      runs first. ``sys.settrace``/``threading.settrace``: the calling thread or new
      threads only. On 3.11, the private ``_PyEval_SetTrace`` on another thread: it
      replaces any tracer (coverage, debuggers) and is no supported API, so 3.11 has no
      ``migrate_steps``. Moving a step without holding its thread (monkey-patching the
      blocking calls, as gevent does): the step's code would run beside the loop.
    * Steps: a counter per handle for the sampler to read (a store on every handle);
      a timer armed per handle (a futex wake each).
    * Sending every call to a pool, with the loop merely not waiting: that is
      ``to_thread`` (45-130 us a call here), the cost this loop exists to remove.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ._callrecord import CallRecord
from ._limits import MACHINERY_THREADS, cap_for
from ._profile import WARN_AFTER_MIGRATIONS, Profile
from ._shortage import ThreadShortageLoop
from ._state import RETRY_MAX, RETRY_MIN
from ._stephold import StepHold
from ._threadcache import Job, ThreadCache
from ._threadstate import OwnerThreadState
from ._watchdog import NoWatchdog, Watchdog

__all__ = ["FAILED", "PENDING", "STARTED", "HandOverLoop", "HandOverRecord"]

logger = logging.getLogger("asyncio")


class HandOverLoop(ThreadShortageLoop):
    """The claim of a blocked inline call and the successor that carries the loop on.
    The layers above supply the hooks: the iterations (``_drive``), the take-back
    (``_await_stealer``, ``_grant_steal``, ``_eager_profile``) and the submit path's
    ``_requeue_stranded``."""

    def _drive(self, *, resume: bool) -> bool:
        """Run iterations as the owner until the loop stops (True) or this thread is
        deposed (False): ``_loop``."""
        raise NotImplementedError

    def _await_stealer(self) -> bool:
        """Owner, ending the run: does a thread wait to take the loop back? ``_takeback``."""
        raise NotImplementedError

    def _grant_steal(self, *, at_stop: bool = False) -> None:
        """Owner: give the loop to the oldest thread waiting for it: ``_takeback``."""
        raise NotImplementedError

    def _eager_profile(self, fn: object) -> Profile:
        """The profile of an eager callable: ``_takeback``."""
        raise NotImplementedError

    def _requeue_stranded(self, job: Job) -> None:
        """A call sent away that no thread could be started for: ``_loop``."""
        raise NotImplementedError

    def _start_threads(self) -> Watchdog:
        """Owner, at the first blocking call: the thread cache (no thread yet), the
        watchdog (or a fallback, see _watchdog), and the cap the process's limits allow."""
        sy = self._syslet
        ref = weakref.ref(self)

        def on_idle() -> None:
            loop = ref()
            if loop is not None and loop._syslet.short_of_threads:
                loop._write_to_self()  # held calls may go now: the owner decides

        def on_stranded(job: Job) -> None:
            loop = ref()
            if isinstance(job, SuccessorJob):
                job.stranded()  # nobody runs the loop: the claimed thread must keep it
            elif loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(loop._requeue_stranded, job)

        def on_start_failed(exc: BaseException) -> None:
            loop = ref()
            if loop is not None:
                loop._note_shortage("starting a worker thread", exc)

        limit = self._read_limit(force=True)  # before our own threads are counted
        sy.threads = ThreadCache(
            idle_timeout=sy.options.idle_timeout,
            name="sysletloop-worker",
            on_idle=on_idle,
            on_stranded=on_stranded,
            on_start_failed=on_start_failed,
        )
        sy.watchdog = watchdog = self._new_watchdog()
        cap = cap_for(
            limit,
            configured=sy.options.max_blocked,
            blocked_now=0,
            machinery_to_start=MACHINERY_THREADS,
        )
        with sy.own_lock:
            sy.cap = cap
            if not sy.short_of_threads:
                sy.max_blocked_now = cap
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
        sy = self._syslet
        assert isinstance(cell, list)
        hand_over = HandOverRecord(cell, migration=not predicted)
        with sy.own_lock:
            if sy.inline is not cell or sy.closing:
                return
            try:
                token = cell.pop()
            except IndexError:
                return  # the call returned just now: nothing to claim
            sy.inline = None
            sy.epoch += 1
            epoch = sy.epoch
            if not predicted:
                sy.migrations += 1
            sy.hand_over = hand_over
            if type(token) is not CallRecord:  # an eager call's cell holds its fn
                sy.eager_outstanding += 1
            else:  # an eager call posts nothing to the ring; a CallRecord will
                sy.blocked_total += 1
                in_flight = sy.blocked_total - sy.blocked_drained
                if in_flight > sy.peak_blocked:
                    sy.peak_blocked = in_flight
        self._start_successor(hand_over, epoch, token, id(cell), predicted)

    def _start_successor(
        self,
        hand_over: HandOverRecord,
        epoch: int,
        token: object,
        cell_id: int,
        predicted: bool,
        *,
        soon: bool = False,
    ) -> None:
        """Claimer, after the pop: give the loop (from ``epoch`` on) to a worker thread,
        and record on ``hand_over`` whether one could be had. ``soon``: never wait for a
        thread to start (the step sampler, which must go on looking): the job goes to an
        idle worker or the starter's backlog, and is STARTED when it runs (FAILED if the
        starter strands it)."""
        sy = self._syslet
        threads = sy.threads
        assert threads is not None
        if soon:
            job = SuccessorJob(self, hand_over, epoch, token, cell_id)
            try:
                threads.submit_soon(job)
                # More claims tend to follow (many tasks blocking at once): have spares.
                threads.want_spares(SPARES_IN_A_BURST, time.monotonic() + SPARES_FOR)
            except BaseException as exc:  # no starter thread (or MemoryError)
                job.stranded()
                self._note_shortage("starting a thread to take over the loop", exc)
            return
        try:
            threads.submit(functools.partial(self._own_from, epoch, token, cell_id, predicted))
        except BaseException as exc:  # no thread could be started (or MemoryError)
            with sy.hand_over_done:
                hand_over.state = FAILED
                sy.hand_over_done.notify_all()
            self._note_shortage("starting a thread to take over the loop", exc)
            return
        with sy.hand_over_done:
            hand_over.state = STARTED
            sy.hand_over_done.notify_all()
        try:
            threads.ensure_spare()
        except Exception as exc:
            self._note_shortage("starting a spare thread", exc)

    def _own_from(self, epoch: int, claimed: object, cell_id: int, predicted: bool) -> None:
        """Worker thread: become the owner of ``epoch`` (taken from the thread running
        the ``claimed`` call) and run the loop until it stops or this thread is deposed
        in turn."""
        sy = self._syslet
        home = sy.home
        assert home is not None
        state = self._new_owner_state()
        with sy.own_lock:
            assert sy.epoch == epoch, "only the owner's inline call can be claimed"
            self._thread_id = threading.get_ident()
        sy.owner_state = state
        state.enter()
        if type(claimed) is CallRecord:
            if not predicted:
                self._note_migration(claimed)
        else:  # an eager call (``claimed`` is its fn), or a step that blocked unwrapped
            if not isinstance(claimed, StepHold):
                self._note_eager_migration(claimed)
            # The blocked thread is inside a task step: take its task out of asyncio's
            # current-task table so this thread can run others; it puts it back when it
            # has the loop again.
            task = asyncio.current_task(self)
            sy.interrupted_tasks[cell_id] = task
            if task is not None:
                leave_task(self, task)
        if sy.steal_requests:
            # A thread waits to take the loop back: it goes first (see "Take-backs
            # before anything else").
            self._grant_steal()
            return
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
        home = self._syslet.home
        assert home is not None
        if home.error is None:
            home.error = exc
        self._stopping = True
        self._grant_steal(at_stop=True)
        return True

    def _hand_over_failed(self, cell: object, *, eager: bool) -> bool:
        """A thread whose call was claimed, the call now returned: did the claim fail to
        give the loop to another thread? Then the loop is still this thread's (nobody
        else ever ran it): undo the claim's counts and return True. Waits while the
        claimer is still starting the successor (at most one thread start)."""
        sy = self._syslet
        with sy.hand_over_done:
            hand_over = sy.hand_over
            if hand_over is None or hand_over.cell is not cell:
                return False  # handed over, and the loop has moved on since
            while hand_over.state == PENDING:
                sy.hand_over_done.wait()
            if hand_over.state != FAILED:
                return False
            sy.hand_over = None
            if hand_over.migration:
                sy.migrations -= 1
            if eager:
                sy.eager_outstanding -= 1
            else:
                sy.blocked_total -= 1
            return True

    def _new_owner_state(self) -> OwnerThreadState:
        """Worker thread, just handed the loop: its thread state. The loop is this
        thread's now (the claim bumped the epoch), so a MemoryError cannot be allowed to
        end the hand-over: wait and try again (a stall while memory is short)."""
        delay = RETRY_MIN
        while True:
            try:
                return OwnerThreadState(self)
            except MemoryError as exc:
                self._note_fault("taking over the loop", exc)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

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
            self._syslet.inline = cell
            return False
        return True

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
        sy = self._syslet
        profile = call.profile
        profile.note_migration()
        if self._debug and profile.migrations >= WARN_AFTER_MIGRATIONS and not profile.warned:
            profile.warned = True
            logger.warning(
                "sysletloop: %s has blocked the loop %d times (each stalled the loop "
                "%.1f ms before it moved); %s",
                profile.name,
                profile.migrations,
                sy.options.block_threshold * 1e3,
                "the predictor now sends it straight to a spare thread while it keeps blocking"
                if sy.options.predict_blocking
                else "consider predict_blocking=True, or calling it with to_thread on a "
                "pool of its own",
            )


PENDING, STARTED, FAILED = 0, 1, 2

# After a step's claim (``soon``), the thread cache keeps this many workers idle for this
# long, so that the next claims find a thread waiting instead of each waiting ~100-300 us
# for one to start (twenty tasks that block at once: measured 0.4-0.5 ms a claim without
# spares). They age out with the cache's idle timeout.
SPARES_IN_A_BURST = 4
SPARES_FOR = 0.05  # seconds


class SuccessorJob:
    """A worker's job "own the loop from this epoch", given without waiting for a thread
    (``_start_successor(soon=True)``): it marks its hand-over STARTED when a worker runs
    it, or FAILED when the thread cache strands it (no thread could be started)."""

    __slots__ = ("cell_id", "epoch", "hand_over", "loop", "token")

    def __init__(
        self, loop: HandOverLoop, hand_over: HandOverRecord, epoch: int, token: object, cell_id: int
    ) -> None:
        self.loop = loop
        self.hand_over = hand_over
        self.epoch = epoch
        self.token = token
        self.cell_id = cell_id

    def _settle(self, state: int) -> None:
        done = self.loop._syslet.hand_over_done
        with done:
            self.hand_over.state = state
            done.notify_all()

    def stranded(self) -> None:
        self._settle(FAILED)

    def __call__(self) -> None:
        self._settle(STARTED)
        self.loop._own_from(self.epoch, self.token, self.cell_id, False)



class HandOverRecord:
    """One claim's hand-over: is a thread running the loop after it (``STARTED``), or
    could none be had (``FAILED``: the claimed call's thread keeps the loop)? ``cell``
    is what was claimed: an inline or eager call's cell, or a step's hold."""

    __slots__ = ("cell", "migration", "state")

    def __init__(self, cell: object, *, migration: bool) -> None:
        self.cell = cell
        # The claim counted a migration (a watchdog's claim of a call; not a hand-off by
        # the owner, nor a step's claim, which counts in claimed_steps).
        self.migration = migration
        self.state = PENDING


_TaskSwitch = Callable[[asyncio.AbstractEventLoop, "asyncio.Task[Any]"], None]
# asyncio's own bookkeeping of "the task running on this loop" (3.11-3.13: a dict keyed
# by loop, behind these two functions; 3.14+: per thread, in C, where the new owner of an
# interrupted eager call finds no current task and these are not called).
enter_task: _TaskSwitch = asyncio.tasks._enter_task
leave_task: _TaskSwitch = asyncio.tasks._leave_task
