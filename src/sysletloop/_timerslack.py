"""Reduce the calling thread's timer slack, so a short sleep ends when asked.

Linux lets a sleeping thread's timer fire up to "timer slack" late (50 us by default) so
that wake-ups can be batched. A watchdog that sleeps until a deadline 1 ms away wants to
wake on time: ``prctl(PR_SET_TIMERSLACK, 1000)`` sets 1 us for the calling thread only.
Best effort: where prctl is not available (not Linux, no libc), nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["TIMER_SLACK_NS", "reduce_timer_slack"]

PR_SET_TIMERSLACK = 29  # <linux/prctl.h>
TIMER_SLACK_NS = 1000  # 1 us: below the watchdog's resolution needs, above zero


def reduce_timer_slack() -> bool:
    """Set this thread's timer slack to ``TIMER_SLACK_NS``; True if it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return False
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return int(prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0)) == 0
