"""Helpers shared by the io_uring loop tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sysletloop import uring

T = TypeVar("T")


def unavailable_reason() -> str | None:
    """Why no io_uring loop can be made here (the loop's own message), or None."""
    try:
        loop = uring.new_event_loop()
    except uring.UringUnsupportedError as exc:
        return f"io_uring is unavailable here: {exc}"
    loop.close()
    return None


UNAVAILABLE = unavailable_reason()
# Tests that need a real ring: skipped with the loop's own reason where there is none (not
# Linux, kernel.io_uring_disabled, a seccomp filter, a kernel older than 5.6).
needs_uring = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")


def run(main: Callable[[uring.UringEventLoop], Coroutine[Any, Any, T]], **options: Any) -> T:
    """Run ``main(loop)`` on a fresh io_uring loop through ``asyncio.Runner``, then close."""
    with asyncio.Runner(loop_factory=lambda: uring.new_event_loop(**options)) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, uring.UringEventLoop)
        return runner.run(main(loop))


async def wait_for(condition: Callable[[], bool]) -> None:
    """Yield to the loop until *condition* holds (the test's timeout bounds it)."""
    while not condition():
        await asyncio.sleep(0.001)


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


def ring_fds() -> int:
    """io_uring instances this process holds an fd of."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[io_uring]":
                count += 1
        except OSError:
            continue  # the listing's own fd, closed meanwhile
    return count


PF_IO_WORKER = 0x10  # include/linux/sched.h: an io_uring io-wq worker (iou-wrk-*)


def threads() -> tuple[int, int]:
    """This process's threads: (ours, io_uring io-wq workers). The workers are kernel
    threads of the process (PF_IO_WORKER in /proc/self/task/*/stat's flags, field 9);
    while one starts it still bears the parent's name, so names cannot tell them apart."""
    ours = workers = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        flags = int(stat[stat.rindex(")") + 2 :].split()[6])
        if flags & PF_IO_WORKER:
            workers += 1
        else:
            ours += 1
    return ours, workers


def resizable(buffer: bytearray) -> bool:
    """Whether *buffer* is free of exports (so nothing can be pinning it)."""
    try:
        buffer.append(0)
    except BufferError:
        return False
    buffer.pop()
    return True


def open_file(path: Path, *, direct: bool, size: int = 0) -> int:
    """Open *path* read-write, optionally O_DIRECT, emptied and then sized to *size*."""
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
    fd = os.open(path, flags, 0o600)
    os.ftruncate(fd, size)
    return fd
