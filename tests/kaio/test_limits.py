"""The KAIO loop's own resources running out (issue 15's review for this loop): an AIO
context (io_setup at fs.aio-max-nr, tested in test_errors) and an eventfd (at
RLIMIT_NOFILE). Either fails the constructor at once with the cause, leaks nothing
(no context, no descriptor), and leaves the process able to make a loop later."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from sysletloop.kaio import _loop as kaio_loop
from sysletloop.kaio._backend import Backend

from ._support import NO_LIBAIO, libaio_installed  # noqa: F401  (conftest's backends)

CHILD = textwrap.dedent(
    """
    import asyncio, errno, os, resource, sys
    from sysletloop.kaio import new_event_loop

    backend = sys.argv[1]
    open_now = len(os.listdir("/proc/self/fd")) - 1  # less listdir's own
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Room for the selector (epoll) and the self-pipe (2), not for the eventfd.
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 3, hard))
    before = sorted(os.listdir("/proc/self/fd"))
    try:
        new_event_loop(backend=backend)
    except OSError as exc:
        print("refused", errno.errorcode.get(exc.errno))
    else:
        print("not refused")
    after = sorted(os.listdir("/proc/self/fd"))
    print("leaked", len(set(after) - set(before)))
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    async def main():
        return await asyncio.sleep(0, "ran")

    loop = new_event_loop(backend=backend)
    try:
        print(loop.run_until_complete(main()))
    finally:
        loop.close()
    """
)


def test_no_file_descriptor_left_for_the_eventfd(backend: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, backend], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] in ("refused EMFILE", "refused ENFILE"), proc.stdout
    assert lines[1] == "leaked 0"
    assert lines[2] == "ran"


def test_an_eventfd_failure_destroys_the_aio_context(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    destroyed: list[int] = []
    real_load = kaio_loop.load_backend

    def spying_load(name: str | None) -> Backend:
        loaded = real_load(name)
        real_destroy = loaded.destroy

        def destroy(ctx: int) -> int:
            destroyed.append(ctx)
            return real_destroy(ctx)

        monkeypatch.setattr(loaded, "destroy", destroy)
        return loaded

    def no_eventfd(*args: object) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(kaio_loop, "load_backend", spying_load)
    monkeypatch.setattr(os, "eventfd", no_eventfd)
    with pytest.raises(OSError) as info:
        kaio_loop.KaioEventLoop(backend=backend)
    assert info.value.errno == errno.EMFILE
    assert len(destroyed) == 1 and destroyed[0] != 0
