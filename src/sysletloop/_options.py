"""The syslet loop's options: their names, defaults, and validation.

Every option is checked once, when the loop is created, and a bad one raises a typed
error naming the option and the value it got: ``TypeError`` for a value of the wrong type
(or an unknown option name), ``ValueError`` for a value out of range.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["LoopOptions"]

# A call still running after this long is treated as blocked and the loop moves on to
# another thread. 1 ms sits well above what a call that does not block costs (a cached
# 4 KiB pread is ~2 us, a stat ~3 us) and below what a caller notices as a stall; the
# pure-Python watchdog wakes at most once per threshold while calls run, so a smaller
# value costs watchdog CPU (~15-20 us per wake-up on a small VM, see docs/design).
DEFAULT_BLOCK_THRESHOLD = 0.001  # seconds

# At most this many calls may be blocked at once (one thread each); further calls wait in
# FIFO order. Go and tokio allow hundreds to thousands of blocked threads; a blocked
# Python thread costs tens of KiB of resident memory (its 8 MiB stack is virtual and
# mostly untouched), so 1024 blocked calls cost tens of MiB. See the benchmark
# "cost of a blocked operation" for the measured figure on a given machine.
DEFAULT_MAX_BLOCKED = 1024

# Spare threads that have had nothing to do for this long exit. Same order as trio's
# thread cache (10 s): long enough that a bursty server keeps its threads between bursts,
# short enough that an idle process sheds them. Not performance-critical.
DEFAULT_IDLE_TIMEOUT = 10.0  # seconds


@dataclass(frozen=True, slots=True)
class LoopOptions:
    """Validated options of a :class:`~sysletloop.SysletEventLoop`.

    ``block_threshold``
        Seconds an inline call may run before the watchdog declares it blocked and the
        loop continues on another thread.
    ``max_blocked``
        The cap on concurrently blocked calls; calls beyond it wait in FIFO order.
    ``idle_timeout``
        Seconds a spare thread waits for work before it exits.
    ``predict_blocking``
        Whether a callable whose last call blocked is sent straight to a spare thread
        (the blocking predictor) instead of running inline and stalling the loop for
        the threshold first. With ``False`` every call starts inline.
    ``route_executor``
        Whether ``run_in_executor(None, ...)`` (and so ``asyncio.to_thread``) takes the
        syslet path. With ``False`` they use asyncio's default thread pool as usual.
    ``route_anyio``
        Whether ``anyio.to_thread.run_sync`` (and so FastAPI's and Starlette's ``def``
        endpoints, sync dependencies, ``run_in_threadpool``, file responses) takes the
        syslet path on this loop instead of anyio's worker threads. Off by default: it
        changes which thread runs the callable. Needs anyio 4.4 to 4.16; an anyio
        sysletloop does not know is refused when the loop is created.
    ``home_affinity``
        Whether the loop goes back to its home thread (the one that called
        ``run_forever``) when a blocked call that ran there returns, as a Go thread
        takes back its processor after a system call. Calls that do not block then run
        on the home thread except while it is itself blocked, so thread-bound objects
        (a sqlite3 connection, thread-locals) made in one such call work in the next,
        and Python's signal handlers run promptly. With ``False`` the loop stays on
        whichever thread it moved to, and the home thread only waits for the run to end.
    ``migrate_steps``
        Whether a task step (or callback) that blocks in a call nobody wrapped
        (``time.sleep``, ``socket.recv``, a sync driver, written straight in an
        ``async def``) moves the loop to another thread, as a blocked inline call does;
        the step's thread is held at its next bytecode until it has the loop back, so
        no code of the step ever runs beside the loop. Needs ``sys.monitoring``
        (CPython 3.12+): ``True`` on 3.11 is a ``ValueError``. Off by default (see the
        README for why).
    ``uring_reads``
        Whether a positional read (``os.pread``, ``os.preadv`` into one buffer) that
        ``RWF_NOWAIT`` says would block, or that a file system cannot try without
        blocking (FUSE), is done by io_uring, the loop resolving it from the ring's
        completion, instead of by a spare thread. Off by default. Where io_uring cannot
        be had (disabled, seccomp, not Linux) the reads take the thread path; the loop
        logs why, once.
    """

    block_threshold: float = DEFAULT_BLOCK_THRESHOLD
    max_blocked: int = DEFAULT_MAX_BLOCKED
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    route_executor: bool = True
    predict_blocking: bool = True
    route_anyio: bool = False
    home_affinity: bool = True
    migrate_steps: bool = False
    uring_reads: bool = False

    def __post_init__(self) -> None:
        _check_seconds("block_threshold", self.block_threshold, upper=60.0)
        _check_seconds("idle_timeout", self.idle_timeout, upper=math.inf)
        if isinstance(self.max_blocked, bool) or not isinstance(self.max_blocked, int):
            raise TypeError(f"max_blocked must be an int, got {type(self.max_blocked).__name__}")
        if self.max_blocked < 1:
            raise ValueError(f"max_blocked must be at least 1, got {self.max_blocked}")
        for name in (
            "route_executor", "predict_blocking", "route_anyio", "home_affinity", "migrate_steps",
            "uring_reads",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        if self.migrate_steps and not hasattr(sys, "monitoring"):
            raise ValueError(
                "migrate_steps=True needs sys.monitoring (CPython 3.12+) to hold a blocked "
                f"step's thread; this is Python {sys.version_info[0]}.{sys.version_info[1]}"
            )

    @classmethod
    def from_mapping(cls, options: Mapping[str, object]) -> LoopOptions:
        """Build options from keyword arguments, rejecting unknown names."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown sysletloop option(s): {', '.join(unknown)}; "
                f"known options are: {', '.join(sorted(known))}"
            )
        return cls(**options)  # type: ignore[arg-type]  # values are checked in __post_init__


def _check_seconds(name: str, value: object, *, upper: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0) or math.isnan(value):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if value > upper:
        raise ValueError(f"{name} must be at most {upper} seconds, got {value!r}")
