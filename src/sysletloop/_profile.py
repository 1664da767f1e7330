"""What the loop learns about each callable: the blocking predictor and its telemetry.

A *profile* is kept per callable (keyed by what the call really runs: ``to_thread``'s
``partial(ctx.run, fn, ...)`` and other partials are unwrapped, bound methods count as
their function, and functions sharing a code object -- a lambda written once and
created afresh on every call -- share a profile).

The predictor (Go's ``entersyscallblock``, learned instead of declared): a callable is
*predicted to block* when its last call blocked past the threshold, or when its last two
inline calls each *waited* at least ``SLOW_CALL`` (a 100 us O_DIRECT read never reaches
a 1 ms threshold, but run inline one after another such reads cannot overlap, and each
stalls the loop). Waiting is the time a call spends off the CPU (its wall time less its
thread's CPU time): what a spare thread could overlap with the loop's work. A call that
spends its time computing (a sqlite3 query on a cached database, parsing, hashing a
small buffer) gains nothing from a spare and pays the hand-overs, so it stays inline
however long it takes, short of the threshold. The CPU time is read
(``time.thread_time``, a system call) only for callables already seen slow: the first
slow call counts as waiting, and the next one tells. A predicted call is handed to a
spare thread at once instead of running inline. The predictor forgets in two ways:

* its time on the spare is measured, and under ``SLOW_CALL`` means it would not have
  hurt inline: the prediction is dropped. (A slow time there proves little: a call that
  releases the GIL waits to get it back while the loop runs, and that wait is counted.)
* every ``PROBE_FIRST`` predictions, doubling up to ``PROBE_MAX``, one call runs inline
  as a probe, measured where the measure is honest; a fast probe drops the prediction.

So a callable that blocks now and then costs one thread hand-off per block, and one that
always blocks costs one threshold stall per ``PROBE_MAX`` calls at most: never a
lasting exile from the inline path, and never a lasting tax on it.

Thread rules: profiles are read and written by the loop's owner only (the owner of the
moment: a new owner records the claim that made it owner). The table is bounded:
beyond ``MAX_PROFILES`` callables, the least recently used profile is forgotten.
"""

from __future__ import annotations

import contextvars
import functools
import os
import types
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["MAX_PROFILES", "CallableStats", "Profile", "ProfileTable", "profile_key"]

# Enough for every distinct blocking callable a real program has; small enough that a
# program creating fresh callables (not sharing code) cannot grow it without bound.
MAX_PROFILES = 1024

# A call waiting this long inline is "slow": long enough that a thread hand-off (tens of
# us) costs less than the stall, far above what calls that do not block take (cached
# pread, stat, getaddrinfo of an address, a keyed sqlite query: p99 <= 10 us measured by
# benchmarks.threshold_choice), and below an O_DIRECT 4 KiB read on a VM (~100 us).
SLOW_CALL = 50e-6  # seconds

# Probe a predicted callable inline after this many predictions, doubling each time the
# probe is slow too, up to PROBE_MAX (one threshold stall per 1024 calls at most: 0.1%).
PROBE_FIRST = 8
PROBE_MAX = 1024

# In debug mode, warn about a callable once it has blocked the loop this many times.
WARN_AFTER_MIGRATIONS = 3


def profile_key(fn: object) -> object:
    """What identifies a callable for the profile table."""
    while isinstance(fn, functools.partial):
        inner = fn.func
        if fn.args and isinstance(getattr(inner, "__self__", None), contextvars.Context):
            fn = fn.args[0]  # to_thread: partial(ctx.run, fn, *args)
        else:
            fn = inner
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    return code if isinstance(code, types.CodeType) else fn


def describe(fn: object) -> str:
    key = profile_key(fn)
    if isinstance(key, types.CodeType):
        filename = os.path.basename(key.co_filename)
        return f"{key.co_qualname} ({filename}:{key.co_firstlineno})"
    # Any callable object may stand here (a Mock answers every attribute): use only
    # string attributes, and never let describing a callable fail the call.
    module = getattr(key, "__module__", None)
    name = getattr(key, "__qualname__", None) or getattr(key, "__name__", None)
    if not isinstance(name, str):
        try:
            name = repr(key)
        except Exception:
            name = type(key).__qualname__
    return f"{module}.{name}" if isinstance(module, str) else name


class Profile:
    __slots__ = (
        "blocked_seconds",
        "direct_fast",
        "inline",
        "last_blocked",
        "migrations",
        "name",
        "nowait_hits",
        "predicted",
        "probe_interval",
        "slow_streak",
        "timed_cpu",
        "until_probe",
        "warned",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.inline = 0  # finished inline within the threshold
        self.migrations = 0  # blocked inline: the loop moved away
        self.predicted = 0  # sent straight to a spare thread by the predictor
        self.direct_fast = 0  # ...and then finished within the threshold (mispredicted)
        self.nowait_hits = 0  # positional reads served from the page cache (RWF_NOWAIT)
        self.blocked_seconds = 0.0  # time spent in calls that blocked or were sent away
        self.last_blocked = False
        self.slow_streak = 0  # consecutive inline calls that took SLOW_CALL or more
        self.probe_interval = PROBE_FIRST
        self.until_probe = 0  # predictions left before the next inline probe
        self.warned = False
        # Set once a call ran inline for SLOW_CALL or more: from then on the loop reads
        # the thread's CPU time around its inline calls, to tell waiting from computing.
        self.timed_cpu = False

    def should_send_away(self) -> bool:
        """Called once per call about to start: send it to a spare thread?"""
        if not self.last_blocked:
            return False
        if self.until_probe > 0:
            self.until_probe -= 1
            return True
        self.probe_interval = min(self.probe_interval * 2, PROBE_MAX)
        self.until_probe = self.probe_interval
        return False  # this one runs inline: a probe

    def _predict(self) -> None:
        if not self.last_blocked:
            self.last_blocked = True
            self.until_probe = self.probe_interval

    def _forget(self) -> None:
        self.last_blocked = False
        self.slow_streak = 0
        self.probe_interval = PROBE_FIRST

    def note_inline(self, seconds: float, cpu: float | None = None) -> None:
        """An inline call took ``seconds``, ``cpu`` of them on the CPU (None: not read)."""
        self.inline += 1
        if seconds >= SLOW_CALL:
            self.timed_cpu = True
        if seconds >= SLOW_CALL and (cpu is None or seconds - cpu >= SLOW_CALL):
            self.slow_streak += 1
            if self.slow_streak >= 2:
                self._predict()
        else:
            self._forget()

    def note_migration(self) -> None:
        self.migrations += 1
        self._predict()

    def note_direct(self, seconds: float) -> None:
        """A call sent straight to a spare finished after ``seconds``."""
        self.blocked_seconds += seconds
        if seconds < SLOW_CALL:
            self.direct_fast += 1
            self._forget()

    def snapshot(self) -> CallableStats:
        return CallableStats(
            name=self.name,
            inline_completions=self.inline,
            migrations=self.migrations,
            predicted=self.predicted,
            mispredicted=self.direct_fast,
            nowait_hits=self.nowait_hits,
            blocked_seconds=self.blocked_seconds,
        )


@dataclass(frozen=True, slots=True)
class CallableStats:
    """Telemetry of one callable, as :meth:`SysletEventLoop.syslet_callables` reports it.

    ``migrations`` counts calls that blocked inline (each cost the loop one threshold);
    ``predicted`` calls the predictor sent straight to a spare thread, of which
    ``mispredicted`` finished quickly (under ``SLOW_CALL``); ``blocked_seconds`` is the time
    spent in calls that blocked or were sent away."""

    name: str
    inline_completions: int
    migrations: int
    predicted: int
    mispredicted: int
    nowait_hits: int
    blocked_seconds: float


class ProfileTable:
    """Profiles by key, least recently used forgotten first. Owner only."""

    __slots__ = ("_profiles",)

    def __init__(self) -> None:
        self._profiles: OrderedDict[object, Profile] = OrderedDict()

    def get(self, fn: object) -> Profile:
        kind = type(fn)
        # profile_key's answer for the two commonest kinds, without a call.
        if kind is types.BuiltinFunctionType:
            key = fn
        elif kind is types.FunctionType:
            key = fn.__code__  # type: ignore[attr-defined]  # a function has one
        else:
            key = profile_key(fn)
        profiles = self._profiles
        try:
            profile = profiles.get(key)
        except TypeError:  # an unhashable callable object: profile it by its class
            key = type(key)
            profile = profiles.get(key)
        if profile is None:
            profile = profiles[key] = Profile(describe(key))
            if len(profiles) > MAX_PROFILES:
                profiles.popitem(last=False)
        else:
            profiles.move_to_end(key)
        return profile

    def snapshots(self) -> list[CallableStats]:
        return [p.snapshot() for p in self._profiles.values()]

    def __len__(self) -> int:
        return len(self._profiles)
