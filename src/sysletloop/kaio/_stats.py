"""Counters for the KAIO loop, and the frozen snapshot callers read.

Only the loop's thread updates :class:`KaioCounters` (in ``_loop.py``); ``kaio_stats()``
copies them into a :class:`KaioStats` on that same thread, so no lock is needed and no
snapshot is ever half-updated. (Reading the counters from another thread would race with
the loop under free-threaded Python; under the GIL it could only see a snapshot a few
operations old. Neither is supported: ask the loop, e.g. with ``call_soon_threadsafe``.)

What is measured and why: the paper's complaint about KAIO is that ``io_submit`` *blocks*
on buffered files (it performs the I/O before returning) and even on O_DIRECT when request
structures run out. Every ``io_submit`` call is therefore timed with ``perf_counter_ns``
and its total and maximum kept: time the loop's thread spent unable to run callbacks.
Rejected: timing only a sample of calls (the worst call is the point), and a histogram in
the loop (the benchmark derives distributions from per-call deltas instead).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class KaioCounters:
    """The loop's live, mutable counters (loop thread only)."""

    submitted: int = 0  # iocbs io_submit accepted
    completed: int = 0  # io_events harvested (including those nobody awaits any more)
    cancelled: int = 0  # operations whose caller stopped waiting before the outcome
    cancel_accepted: int = 0  # of those, io_cancel calls the kernel accepted
    rejected: int = 0  # operations failed before the kernel took them (io_submit error)
    failed: int = 0  # completions with a negative result (delivered as exceptions)
    submit_calls: int = 0
    submit_ns: int = 0  # total time inside io_submit
    submit_max_ns: int = 0  # the longest single io_submit


@dataclass(frozen=True, slots=True)
class KaioStats:
    """A consistent snapshot of a KAIO loop's activity (see ``loop.kaio_stats()``)."""

    backend: str  # "libaio" or "syscall"
    ring_size: int  # operations the context holds in flight at once
    submitted: int
    completed: int
    cancelled: int
    cancel_accepted: int
    rejected: int
    failed: int
    in_flight: int  # submitted and not yet harvested (== submitted - completed)
    queued: int  # waiting, in FIFO order, for a free slot in the ring
    submit_calls: int
    submit_seconds: float  # total time spent inside io_submit
    submit_max_seconds: float  # the longest single io_submit

    @property
    def submit_mean_seconds(self) -> float:
        """Mean time per ``io_submit`` call (0.0 before the first)."""
        return self.submit_seconds / self.submit_calls if self.submit_calls else 0.0
