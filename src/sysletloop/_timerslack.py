"""Reduce the calling thread's timer slack, so a short sleep ends when asked.

Linux lets a sleeping thread's timer fire up to "timer slack" late (50 us by default) so
that wake-ups can be batched. A watchdog that sleeps until a deadline 1 ms away wants to
wake on time: ``prctl(PR_SET_TIMERSLACK, 1000)`` sets 1 us for the calling thread only.
Best effort: where prctl is not available (not Linux), nothing happens.

The libc handle is the process's own symbol table (``CDLL(None)``), looked up once:
``ctypes.util.find_library`` runs a subprocess, which in a large process can take longer
than the first call the watchdog should be watching.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

__all__ = ["TIMER_SLACK_NS", "reduce_timer_slack"]

PR_SET_TIMERSLACK = 29  # <linux/prctl.h>
TIMER_SLACK_NS = 1000  # 1 us: below the watchdog's resolution needs, above zero


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return prctl


def reduce_timer_slack() -> bool:
    """Set this thread's timer slack to ``TIMER_SLACK_NS``; True if it took effect."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0) == 0
