"""The statistics a syslet loop reports: a frozen snapshot, taken on demand."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SysletStats"]


@dataclass(frozen=True, slots=True)
class SysletStats:
    """A snapshot of a syslet loop's counters (all counts since the loop was created).

    ``inline_completions``
        Calls that finished inline, in the loop's thread, before the threshold.
    ``migrations``
        Times the loop moved to another thread because its inline call blocked.
    ``blocked_in_flight``
        Calls declared blocked whose outcome the loop has not yet collected.
    ``peak_blocked``
        The largest ``blocked_in_flight`` seen.
    ``threads_started``
        Threads the loop's thread cache created.
    ``threads_reused``
        Times an idle cached thread was given work instead of starting a new one.
    ``queued_over_cap``
        Calls that had to wait because ``max_blocked`` calls were already blocked.
    ``completions_drained``
        Outcomes of blocked calls delivered: collected from the completion ring, or
        (``home_returns``) delivered by the home thread itself on its way back.
    ``cancelled_before_start``
        Calls whose awaiting task was cancelled before they started (they never ran).
    ``predicted_blocking``
        Calls the blocking predictor kept from stalling the loop: sent straight to a
        spare thread or, on the home thread with ``home_affinity``, run there after the
        loop was handed to another thread (so the call keeps the home thread).
    ``nowait_reads``
        Positional reads served inline from the page cache (``RWF_NOWAIT``).
    ``nowait_would_block``
        Positional reads that ``RWF_NOWAIT`` said would block: sent to a spare thread
        at once, without waiting out the threshold (with ``uring_reads``: those that
        io_uring could not take).
    ``uring_reads``
        Positional reads done by io_uring (the ``uring_reads`` option): would block, or
        on a file system that cannot say.
    ``eager_completions``
        Eager calls (``call_eager``) that returned within the threshold.
    ``eager_blocked``
        Eager calls that blocked: the loop moved on, and the task took it back after.
    ``eager_redirected``
        Eager calls the blocking predictor sent down :func:`call`'s path instead.
    ``watchdog``
        Which watchdog detects blocking: ``"c"`` (the extension) or ``"python"``;
        ``"none"`` when no watchdog thread could be started (calls then run inline to
        the end, as on a stock loop, until one can).
    ``waited_for_threads``
        Times calls were held in the queue because no thread could be had for the loop
        to move to (a PID limit, RLIMIT_NPROC, memory): counted once per call held.
    ``thread_start_failures``
        Thread starts that failed (the first one is logged, with the limit found).
    ``stalled_calls``
        Calls that kept the loop well past the threshold (no thread to move to, or no
        watchdog): the loop stalled, as a stock loop does on a blocking callback.
    ``max_blocked_now``
        The cap on blocked calls in force: ``max_blocked``, lowered to what the
        process's thread limits leave (see the tuning guide).
    ``home_returns``
        Times the loop went back to its home thread when a blocked call that ran there
        returned (``home_affinity``); that call's outcome was delivered there directly.
    ``claimed_steps``
        Task steps (or callbacks) that blocked in a call nobody wrapped and were claimed:
        the loop went on on another thread until the step's call returned
        (``migrate_steps``; where they blocked: ``loop.syslet_blocked_sites()``).
    ``steps_at_cap``
        Looks at a blocked step that found ``max_blocked_now`` calls and steps already
        blocked: the step kept the loop (a stall, as on a stock loop) while it lasted.
    ``predicted_steps``
        Of ``claimed_steps``, those claimed at the call itself, before it started: the
        call was made at a place where a step blocked before (``predict_blocking``).
    """

    inline_completions: int
    migrations: int
    blocked_in_flight: int
    peak_blocked: int
    threads_started: int
    threads_reused: int
    queued_over_cap: int
    completions_drained: int
    cancelled_before_start: int
    predicted_blocking: int
    nowait_reads: int
    nowait_would_block: int
    eager_completions: int
    eager_blocked: int
    eager_redirected: int
    watchdog: str
    waited_for_threads: int
    thread_start_failures: int
    stalled_calls: int
    max_blocked_now: int
    home_returns: int
    claimed_steps: int = 0
    steps_at_cap: int = 0
    predicted_steps: int = 0
    uring_reads: int = 0
