"""Helpers shared by the KAIO tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sysletloop import kaio
from sysletloop.kaio._libaio import LIBAIO_SONAMES

T = TypeVar("T")

NO_LIBAIO = "libaio is not installed (Debian: apt-get install -y libaio1, or libaio1t64)"


def libaio_installed() -> bool:
    for soname in LIBAIO_SONAMES:
        try:
            ctypes.CDLL(soname)
        except OSError:
            continue
        return True
    return False


def run(main: Callable[[kaio.KaioEventLoop], Coroutine[Any, Any, T]], **options: Any) -> T:
    """Run ``main(loop)`` on a fresh KAIO loop through ``asyncio.Runner``, then close it."""
    with asyncio.Runner(loop_factory=lambda: kaio.new_event_loop(**options)) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, kaio.KaioEventLoop)
        return runner.run(main(loop))


def direct_supported(directory: Path) -> bool:
    probe = directory / ".o_direct_probe"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def aio_mappings() -> int:
    """AIO completion rings mapped into this process: one per live io context."""
    with open("/proc/self/maps") as maps:
        return sum("[aio]" in line for line in maps)


def open_file(path: Path, *, direct: bool, size: int = 0) -> int:
    """Open *path* read-write, optionally O_DIRECT, emptied and then sized to *size*
    (so it reads as zeros)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags, 0o600)
    os.ftruncate(fd, size)
    return fd
