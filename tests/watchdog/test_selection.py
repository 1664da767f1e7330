"""Which watchdog a loop gets (``sysletloop._watchdog``), and that a loop really uses it.

``SYSLETLOOP_WATCHDOG`` is read when a watchdog is made, so the tests set it with
``monkeypatch`` before the loop's first blocking call.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import sysletloop
from sysletloop import _watchdog
from sysletloop._pywatchdog import PythonWatchdog

from ._support import C_WATCHDOG, KINDS, needs_c, thread_exists, wait_until

ENV = "SYSLETLOOP_WATCHDOG"


def _make(threshold: float = 1.0) -> _watchdog.Watchdog:
    return _watchdog.make_watchdog(threshold, lambda token: None, name="sysletloop-test")


def test_python_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "python")
    assert _watchdog.watchdog_kind() == "python"
    dog = _make()
    try:
        assert type(dog) is PythonWatchdog
        assert dog.kind == "python"
    finally:
        dog.close()


@needs_c
@pytest.mark.parametrize("value", ["c", "C", " c "])
def test_c_is_forced(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV, value)
    assert _watchdog.watchdog_kind() == "c"
    dog = _make()
    try:
        assert type(dog) is C_WATCHDOG
        assert dog.kind == "c"
    finally:
        dog.close()


@needs_c
@pytest.mark.parametrize("value", [None, ""])
def test_c_is_the_default_when_built(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    assert _watchdog.watchdog_kind() == "c"


@pytest.mark.parametrize("value", ["rust", "cc", "0"])
def test_a_bad_value_is_an_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ValueError, match=ENV):
        _watchdog.watchdog_kind()
    with pytest.raises(ValueError, match=ENV):
        _make()


def test_a_missing_extension_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(_watchdog, "_c_factory", lambda: None)
    assert _watchdog.watchdog_kind() == "python"
    dog = _make()
    try:
        assert type(dog) is PythonWatchdog
    finally:
        dog.close()


def test_a_missing_extension_cannot_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "c")
    monkeypatch.setattr(_watchdog, "_c_factory", lambda: None)
    with pytest.raises(ImportError, match="not built"):
        _watchdog.watchdog_kind()


def test_a_loop_without_the_extension_reports_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(_watchdog, "_c_factory", lambda: None)

    async def main() -> str:
        await sysletloop.call(time.sleep, 0)
        return asyncio.get_running_loop().syslet_stats().watchdog  # type: ignore[attr-defined, no-any-return]

    assert sysletloop.run(main()) == "python"


# -- end to end: a blocking call migrates the loop, with each kind ------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_blocking_call_migrates_the_loop(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    if kind == "c" and C_WATCHDOG is None:
        pytest.skip("sysletloop._cwatchdog is not built")
    monkeypatch.setenv(ENV, kind)
    watchdog_ids: list[int | None] = []

    async def main() -> tuple[sysletloop.SysletStats, int, int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, sysletloop.SysletEventLoop)
        before = threading.get_ident()
        await sysletloop.call(time.sleep, 0.05)
        watchdog_ids.append(loop._syslet.watchdog.native_id if loop._syslet.watchdog else None)
        return loop.syslet_stats(), before, threading.get_ident()

    # home_affinity=False: the loop stays on the thread it moved to, for the test to see
    stats, before, after = sysletloop.run(main(), home_affinity=False)
    assert stats.watchdog == kind
    assert stats.migrations >= 1
    assert after != before  # the loop carried on in another thread
    native_id = watchdog_ids[0]
    assert native_id is not None
    assert wait_until(lambda: not thread_exists(native_id))  # closed with the loop


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_that_holds_the_gil_migrates_too(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Pure-Python work: the C watchdog sees it without the GIL, but both kinds need the
    GIL to hand over, so both get it at a GIL switch."""
    if kind == "c" and C_WATCHDOG is None:
        pytest.skip("sysletloop._cwatchdog is not built")
    monkeypatch.setenv(ENV, kind)

    def spin(seconds: float) -> int:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        return n

    async def main() -> sysletloop.SysletStats:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, sysletloop.SysletEventLoop)
        await sysletloop.call(spin, 0.1)
        return loop.syslet_stats()

    stats = sysletloop.run(main())
    assert stats.watchdog == kind
    assert stats.migrations == 1
