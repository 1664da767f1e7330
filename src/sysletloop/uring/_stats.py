"""Counters for the io_uring loop, and the frozen snapshot callers read.

Only the loop's thread updates :class:`UringCounters` (in ``_loop.py``); ``uring_stats()``
copies them into a :class:`UringStats` on that same thread, so no lock is needed and no
snapshot is ever half-updated. (Reading the counters from another thread would race with
the loop under free-threaded Python; under the GIL it could only see a snapshot a few
operations old. Neither is supported: ask the loop, e.g. with ``call_soon_threadsafe``.)

What is measured and why: the comparison with KAIO is about what a submission costs the
loop's thread. ``io_uring_enter`` is timed like ``io_submit`` is in the KAIO loop (total and
worst call): io_uring promises that it never performs blocking work inside the call (it
punts to its io-wq workers instead), and ``enter_max_seconds`` is where a broken promise
would show. ``reaps`` and ``reaped`` tell how completions were batched, ``eventfd_wakeups``
how often the loop had to be woken rather than finding completions on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class UringCounters:
    """The loop's live, mutable counters (loop thread only)."""

    submitted: int = 0  # SQEs the kernel consumed (operations, not the loop's cancels)
    completed: int = 0  # CQEs of operations reaped (including those nobody awaits any more)
    cancelled: int = 0  # operations whose caller stopped waiting before the outcome
    cancel_requests: int = 0  # IORING_OP_ASYNC_CANCEL SQEs sent
    cancel_found: int = 0  # of those, how many found their target still cancellable
    failed: int = 0  # completions with a negative result (delivered as exceptions)
    orphans_closed: int = 0  # fds from openat whose caller was gone, closed by the loop
    enter_calls: int = 0
    enter_ns: int = 0  # total time inside io_uring_enter
    enter_max_ns: int = 0  # the longest single io_uring_enter
    reaps: int = 0  # passes over the CQ ring that found something
    eventfd_wakeups: int = 0  # times the selector reported the completion eventfd


@dataclass(frozen=True, slots=True)
class UringStats:
    """A consistent snapshot of an io_uring loop's activity (see ``loop.uring_stats()``)."""

    sq_entries: int  # submission ring size
    cq_entries: int  # completion ring size: the most operations in flight at once
    features: int  # IORING_FEAT_* bits the kernel reported
    submitted: int
    completed: int
    cancelled: int
    cancel_requests: int
    cancel_found: int
    failed: int
    orphans_closed: int
    in_flight: int  # submitted and not yet reaped (== submitted - completed)
    queued: int  # waiting, in FIFO order, for room in the rings
    enter_calls: int
    enter_seconds: float  # total time spent inside io_uring_enter
    enter_max_seconds: float  # the longest single io_uring_enter
    reaps: int
    eventfd_wakeups: int

    @property
    def enter_mean_seconds(self) -> float:
        """Mean time per ``io_uring_enter`` call (0.0 before the first)."""
        return self.enter_seconds / self.enter_calls if self.enter_calls else 0.0

    @property
    def ops_per_enter(self) -> float:
        """Operations submitted per ``io_uring_enter`` (batching; 0.0 before the first)."""
        return self.submitted / self.enter_calls if self.enter_calls else 0.0
