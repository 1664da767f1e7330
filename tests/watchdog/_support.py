"""What the watchdog tests share: the implementations under test, and small tools."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sysletloop._pywatchdog import PythonWatchdog
from sysletloop._watchdog import Watchdog

WatchdogClass = Callable[..., Watchdog]

try:
    from sysletloop._cwatchdog import Watchdog as CWatchdog
except ImportError:  # not built: the C cases skip, test_c_watchdog_is_built says why
    C_WATCHDOG: WatchdogClass | None = None
else:
    C_WATCHDOG = CWatchdog

C_BUILT = C_WATCHDOG is not None
needs_c = pytest.mark.skipif(not C_BUILT, reason="sysletloop._cwatchdog is not built")
KINDS = ["python", "c"]


def implementation(kind: str) -> WatchdogClass:
    if kind == "python":
        return PythonWatchdog
    if C_WATCHDOG is None:
        pytest.skip("sysletloop._cwatchdog is not built")
    return C_WATCHDOG


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (a generous bound:
    these tests assert behaviour, never speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def thread_exists(native_id: int) -> bool:
    try:
        with open(f"/proc/self/task/{native_id}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone, or going (ESRCH on read)
        return False
    return state not in ("Z", "X")


class Reports:
    """An ``on_overdue`` that records the tokens and the thread that reported them."""

    def __init__(self) -> None:
        self.tokens: list[object] = []
        self.threads: list[int] = []

    def __call__(self, token: object) -> None:
        self.threads.append(threading.get_native_id())
        self.tokens.append(token)
