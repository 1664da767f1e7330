"""Which watchdog a loop gets, and what every watchdog promises.

Two implementations keep one contract (:class:`Watchdog`): ``sysletloop._cwatchdog``, a
C extension whose thread looks at the armed call without taking the GIL, and
:class:`~sysletloop._pywatchdog.PythonWatchdog`, the fallback when the extension was not
built. ``SYSLETLOOP_WATCHDOG=python`` (or ``c``) forces one; a forced ``c`` that cannot be
loaded is an error, not a silent fallback.

The contract (thread rules in each implementation's header):
    ``arm(token) -> float``  owner only: start watching ``token``; returns the arming
                             time on the ``time.monotonic()`` clock.
    ``disarm()``             owner only: the call returned.
    ``on_overdue(token)``    called from the watchdog's thread, with the GIL held, once
                             per arming, when ``token`` is still armed ``threshold``
                             seconds after ``arm``.
    ``close()``              any thread: stop and join the watchdog's thread.
    ``is_alive()``, ``native_id``, ``kind`` (``"c"``, ``"python"`` or ``"none"``).

When no watchdog thread can be started (a PID limit, RLIMIT_NPROC, memory), the loop
builds ``make_watchdog(..., fallback=True)``: the chosen kind, else the Python one, else
:class:`NoWatchdog`, which never reports, so calls run inline to the end, as a stock
loop runs a blocking callback (a stall, never a hang). The loop tries again later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

from ._pywatchdog import PythonWatchdog

__all__ = ["NoWatchdog", "Watchdog", "make_watchdog", "watchdog_kind"]


class Watchdog(Protocol):
    @property
    def kind(self) -> str: ...
    def arm(self, token: object, /) -> float: ...
    def disarm(self) -> None: ...
    def close(self) -> None: ...
    def is_alive(self) -> bool: ...
    @property
    def native_id(self) -> int | None: ...


WatchdogFactory = Callable[..., Watchdog]


def _c_factory() -> WatchdogFactory | None:
    try:
        from . import _cwatchdog
    except ImportError:
        return None
    factory: WatchdogFactory = _cwatchdog.Watchdog
    return factory


def _choose() -> WatchdogFactory:
    forced = os.environ.get("SYSLETLOOP_WATCHDOG", "").strip().lower()
    if forced == "python":
        return PythonWatchdog
    c = _c_factory()
    if forced == "c":
        if c is None:
            raise ImportError(
                "SYSLETLOOP_WATCHDOG=c but the C watchdog (sysletloop._cwatchdog) is not built"
            )
        return c
    if forced:
        raise ValueError(f"SYSLETLOOP_WATCHDOG must be 'c' or 'python', got {forced!r}")
    return c if c is not None else PythonWatchdog


class NoWatchdog:
    """Watches nothing: no thread could be started for a real one."""

    kind = "none"

    def __init__(self, error: BaseException) -> None:
        self.error = error  # why: what starting the real ones raised

    def arm(self, token: object, /) -> float:
        return time.monotonic()

    def disarm(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_alive(self) -> bool:
        return False

    @property
    def native_id(self) -> int | None:
        return None


def make_watchdog(
    threshold: float,
    on_overdue: Callable[[object], None],
    *,
    name: str,
    fallback: bool = False,
) -> Watchdog:
    """A watchdog of the kind this process uses (chosen when first asked). With
    ``fallback``, a watchdog whose thread cannot start gives way to the Python one, and
    that to :class:`NoWatchdog` (carrying the first error); a bad
    ``SYSLETLOOP_WATCHDOG`` still raises."""
    factory = _choose()
    if not fallback:
        return factory(threshold, on_overdue, name=name)
    try:
        return factory(threshold, on_overdue, name=name)
    except Exception as exc:  # RuntimeError/MemoryError: no thread for it
        first = exc
    if factory is not PythonWatchdog:
        try:
            return PythonWatchdog(threshold, on_overdue, name=name)
        except Exception:
            pass
    return NoWatchdog(first)


def watchdog_kind() -> str:
    """``"c"`` or ``"python"``: what :func:`make_watchdog` would build now."""
    factory = _choose()
    return "python" if factory is PythonWatchdog else "c"
