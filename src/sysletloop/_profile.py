"""What the loop learns about each callable: the blocking predictor and its telemetry.

A *profile* is kept per callable (keyed by what the call really runs: ``to_thread``'s
``partial(ctx.run, fn, ...)`` and other partials are unwrapped, bound methods count as
their function, and functions sharing a code object -- a lambda written once and
created afresh on every call -- share a profile).

The predictor (Go's ``entersyscallblock``, learned instead of declared): a callable whose
most recent outcome was "blocked" is *predicted to block*, and its next call is handed
to a spare thread at once instead of stalling the loop for the threshold first. Its
outcome there is measured: finished within the threshold means it would not have
blocked, so the prediction is dropped and the callable is back on the inline path. So
the predictor forgets after one fast outcome; a callable that blocks now and then costs
one thread hand-off per block, never a lasting exile from the inline path.

Thread rules: profiles are read and written by the loop's owner only (the owner of the
moment: a new owner records the claim that made it owner). The table is bounded:
beyond ``MAX_PROFILES`` callables, the least recently used profile is forgotten.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["MAX_PROFILES", "CallableStats", "Profile", "ProfileTable", "profile_key"]

# Enough for every distinct blocking callable a real program has; small enough that a
# program creating fresh callables (not sharing code) cannot grow it without bound.
MAX_PROFILES = 1024

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
    return getattr(fn, "__code__", fn)


def describe(fn: object) -> str:
    key = profile_key(fn)
    code_name = getattr(key, "co_qualname", None) or getattr(key, "co_name", None)
    if code_name is not None:
        filename = os.path.basename(getattr(key, "co_filename", "?"))
        return f"{code_name} ({filename}:{getattr(key, 'co_firstlineno', '?')})"
    module = getattr(key, "__module__", None)
    name = getattr(key, "__qualname__", None) or getattr(key, "__name__", None) or repr(key)
    return f"{module}.{name}" if module else str(name)


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
        self.warned = False

    @property
    def predicts_block(self) -> bool:
        return self.last_blocked

    def note_inline(self) -> None:
        self.inline += 1
        self.last_blocked = False

    def note_migration(self) -> None:
        self.migrations += 1
        self.last_blocked = True

    def note_direct(self, seconds: float, threshold: float) -> None:
        """A call sent straight to a spare finished after ``seconds``."""
        self.blocked_seconds += seconds
        if seconds < threshold:
            self.direct_fast += 1
            self.last_blocked = False
        else:
            self.last_blocked = True

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
    ``mispredicted`` finished within the threshold; ``blocked_seconds`` is the time
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
        key = profile_key(fn)
        profiles = self._profiles
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
