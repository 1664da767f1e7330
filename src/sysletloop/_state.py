"""A syslet loop's own state, in one slotted object beside asyncio's.

A ``SysletEventLoop`` keeps its state in ``loop._syslet``, one :class:`SysletState`,
rather than in some fifty instance attributes. The reason is the hot path: CPython shares
the keys of an instance dict, and specialises the attribute loads on it, only up to 30
keys. asyncio's selector loop has 24 to 27 attributes (3.11 to 3.15); with ours beside
them every ``self._x`` in an iteration -- asyncio's code and ours -- became a dictionary
lookup, 16-26% of an iteration's instructions (callgrind, ``benchmarks.instructions``).
Slots on the loop class itself cured 3.11 and 3.12 but not 3.13+, which gives a class
with slots no inline values. One more attribute holding a slotted object keeps the
loop's dict at asyncio's size on every version, and a field of ours costs one more
specialised load (the hot paths bind ``self._syslet`` to a local once).

Thread rules: each field's comment says who may write it. The hand-over protocol that
these rules serve is written once, at the top of ``_handover``; in short, the owner of
the loop (one thread at a time) touches everything not marked otherwise, as in stock
asyncio, and ``own_lock`` guards what other threads touch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import threading
import types
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from ._callrecord import CallRecord
from ._nowait import NowaitReads
from ._options import LoopOptions
from ._profile import Profile, ProfileTable
from ._ring import CompletionRing

if TYPE_CHECKING:
    from ._handover import HandOverRecord
    from ._home import HomeRun
    from ._limits import ThreadLimit
    from ._stepsampler import StepSampler
    from ._takeback import StealRequest
    from ._threadcache import ThreadCache
    from ._threadstate import OwnerThreadState
    from ._uringreads import UringReads
    from ._watchdog import Watchdog

__all__ = ["Handle", "SysletLoopBase", "SysletState", "Timer"]

# An inline call that returns this long after the threshold was not claimed in time:
# the watchdog is gone, or no thread could take the loop. 50 ms is far above the
# detection latency even on a loaded VM (a few ms), so a healthy loop never pays for the
# look this triggers.
STALL_MARGIN = 0.05  # seconds
# While short of threads, the loop tries to start one after RETRY_MIN, doubling up to
# RETRY_MAX: a failed start costs a clone() that fails at once (a few us), so 1 s is
# about how long a process that got its threads back should wait to use them.
RETRY_MIN = 0.001  # seconds
RETRY_MAX = 1.0  # seconds


class SysletState:
    __slots__ = (
        "blocked_drained",
        "blocked_total",
        "cancelled_before_start",
        "cap",
        "claimed_steps",
        "closing",
        "completions_drained",
        "eager_blocked",
        "eager_completions",
        "eager_outstanding",
        "eager_profiles",
        "eager_redirected",
        "epoch",
        "faults_logged",
        "hand_over",
        "hand_over_done",
        "home",
        "home_returns",
        "inline",
        "inline_completions",
        "interrupted_tasks",
        "limit_read_at",
        "max_blocked_now",
        "migrations",
        "nowait",
        "nowait_reads",
        "nowait_would_block",
        "options",
        "own_lock",
        "owner_state",
        "peak_blocked",
        "pending",
        "pending_counted_over_cap",
        "predicted_blocking",
        "predicted_steps",
        "profiles",
        "queued_over_cap",
        "quiesce_waiters",
        "retry_delay",
        "retry_handle",
        "ring",
        "run_ending",
        "sampler_napping",
        "short_of_threads",
        "stall_after",
        "stalled_calls",
        "steal_filed",
        "steal_requests",
        "step_loop_code",
        "step_sampler",
        "step_sites",
        "steps_at_cap",
        "thread_limit",
        "thread_start_failures",
        "threads",
        "threads_reused_before",
        "threads_started_before",
        "uring_failed",
        "uring_flush_due",
        "uring_reads",
        "uring_sent",
        "waited_for_threads",
        "watchdog",
    )  # fmt: skip

    def __init__(self, options: LoopOptions, ring: CompletionRing[CallRecord]) -> None:
        self.options = options
        # --- the hand-over (see _handover). own_lock guards epoch, the claim's reads of
        # inline, thread_id's writes after the first, hand_over and the conditions.
        self.own_lock = threading.Lock()
        self.epoch = 0
        self.inline: list[object] | None = None  # the cell of the call running inline
        self.owner_state: OwnerThreadState | None = None
        self.home: HomeRun | None = None
        self.watchdog: Watchdog | None = None
        self.threads: ThreadCache | None = None
        self.closing = False  # under own_lock
        # The last claim's hand-over (see "When threads run out"); under own_lock.
        self.hand_over: HandOverRecord | None = None
        self.hand_over_done = threading.Condition(self.own_lock)
        # --- taking the loop back (eager calls, going home); under own_lock.
        self.steal_requests: deque[StealRequest] = deque()
        self.steal_filed = threading.Condition(self.own_lock)
        self.eager_outstanding = 0  # eager calls claimed and not yet taken back
        # Set by the owner that ends a run; the home thread may not file a request to go
        # home once it is set. Reset by run_forever.
        self.run_ending = False
        # Tasks of eager calls that blocked, by id of their cell, until taken back.
        self.interrupted_tasks: dict[int, asyncio.Task[Any] | None] = {}
        # --- calls: the owner's.
        self.pending: deque[CallRecord] = deque()
        self.pending_counted_over_cap = 0
        self.ring = ring
        self.quiesce_waiters: list[asyncio.Future[None]] = []
        self.profiles = ProfileTable()
        self.eager_profiles: dict[object, Profile] = {}
        self.nowait = NowaitReads()
        # --- the uring_reads option (_uringreads): the owner's ring, made at the first
        # read that would block; uring_failed once it could not be made (said once).
        self.uring_reads: UringReads | None = None
        self.uring_failed = False
        self.uring_flush_due = False  # a _flush_uring_reads callback is in _ready
        self.uring_sent = 0
        # --- thread shortage (see "When threads run out" in _handover). cap: the cap on
        # blocked calls, the option lowered to what the process's limits allow;
        # max_blocked_now: what the submit path compares against, cap or 0 while short
        # of threads (so that every call takes the slow branch). Written under own_lock
        # (any thread may note a shortage), read by the owner without it.
        self.cap = options.max_blocked
        self.max_blocked_now = self.cap
        self.short_of_threads = False
        self.thread_limit: ThreadLimit | None = None
        self.limit_read_at = -1.0
        self.faults_logged: set[str] = set()
        self.retry_delay = RETRY_MIN
        self.retry_handle: asyncio.TimerHandle | None = None
        self.stall_after = options.block_threshold + STALL_MARGIN
        self.thread_start_failures = 0  # under own_lock
        # --- counters written by the owner only:
        self.inline_completions = 0
        self.completions_drained = 0
        self.queued_over_cap = 0
        self.cancelled_before_start = 0
        self.predicted_blocking = 0
        self.nowait_reads = 0
        self.nowait_would_block = 0
        self.eager_completions = 0
        self.eager_blocked = 0
        self.eager_redirected = 0
        self.waited_for_threads = 0
        self.stalled_calls = 0
        self.home_returns = 0
        self.threads_started_before = 0  # the thread cache's, kept at close
        self.threads_reused_before = 0
        # --- steps that block unwrapped (_steps): the sampler (made by the owner at
        # run_forever, closed by close), the claims (under own_lock), the claims given up
        # at the cap (the sampler's thread only), and the sites (the owner's).
        self.step_sampler: StepSampler | None = None
        self.step_loop_code: types.CodeType | None = None
        # The sampler naps (backed off) while the loop polls; set by the sampler,
        # cleared by the owner, which then wakes it after a poll (_wake_step_sampler).
        self.sampler_napping = False
        self.claimed_steps = 0
        self.predicted_steps = 0  # of claimed_steps: claimed by the owner, at the call
        self.steps_at_cap = 0
        self.step_sites: dict[tuple[types.CodeType, int, types.CodeType, int], list[Any]] = {}
        # --- counters written under own_lock (the watchdog's claim writes them too):
        self.migrations = 0
        self.blocked_total = 0
        self.blocked_drained = 0
        self.peak_blocked = 0

    def is_quiet(self) -> bool:
        """No call pending or blocked (owner)."""
        return (
            not self.pending
            and self.blocked_total == self.blocked_drained
            and not (self.uring_reads is not None and self.uring_reads.in_flight)
        )


class Handle(Protocol):
    """What the loop uses of an asyncio ``Handle`` (private fields included)."""

    _cancelled: bool

    def _run(self) -> None: ...


class Timer(Handle, Protocol):
    """... and of a ``TimerHandle``."""

    _when: float
    _scheduled: bool

    def __lt__(self, other: Timer) -> bool: ...


class SysletLoopBase(asyncio.SelectorEventLoop):
    """The bottom layer of a syslet loop: asyncio's selector loop, our state beside it
    (``_syslet``), and the private asyncio state the layers above drive, declared."""

    _syslet: SysletState

    if TYPE_CHECKING:
        # asyncio's private state this loop drives (typeshed leaves it out). Present,
        # with these meanings, in CPython 3.11 to 3.15.
        _ready: deque[Handle]
        _scheduled: list[Timer]
        _timer_cancelled_count: int
        _clock_resolution: float
        _selector: selectors.BaseSelector
        _debug: bool
        _stopping: bool
        _thread_id: int | None
        _current_handle: Handle | None
        _default_executor: concurrent.futures.ThreadPoolExecutor | None
        _executor_shutdown_called: bool
        _signal_handlers: dict[int, asyncio.Handle]

        def _process_events(self, event_list: list[Any]) -> None: ...
        def _process_self_data(self, data: bytes) -> None: ...
        def _write_to_self(self) -> None: ...
        def _check_closed(self) -> None: ...
        def _check_running(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...
