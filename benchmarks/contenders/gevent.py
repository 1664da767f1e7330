"""gevent: not an asyncio loop, the other answer to blocking calls written straight in the
code. Monkey patching (``gevent.monkey.patch_all``) replaces ``time.sleep`` and the socket
module with versions that yield to gevent's hub, so twenty greenlets that each "block"
wait together on one thread.

Patching replaces those modules for the whole interpreter and cannot be undone, so gevent
never runs in the harness's process, nor is it imported there: the probe imports it in a
child, and the ``unwrapped`` workload runs each case in a fresh child
(:mod:`benchmarks.gevent_unwrapped`) that measures itself and prints JSON. Like fio, the
contender has no ``run``: the workload calls :meth:`GeventContender.unwrapped`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, TypeVar

from benchmarks.contenders.base import UNWRAPPED, Availability, Contender, Main
from benchmarks.loadgen import ROOT

T = TypeVar("T")

PROBE = "import gevent, gevent.monkey; print(gevent.__version__)"


class GeventContender(Contender):
    family = "external"

    def __init__(self) -> None:
        self.name = "gevent"
        self.description = (
            "gevent, monkey-patched (time.sleep and sockets yield to its hub), one greenlet "
            "per task; in a child process of its own, never the harness's"
        )
        self.provides = frozenset({UNWRAPPED})

    def _probe(self) -> Availability:
        proc = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            return Availability(False, f"gevent cannot be imported here ({last})")
        return Availability(True, version=proc.stdout.strip())

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        raise TypeError("gevent is not an asyncio loop: workloads call GeventContender.unwrapped()")

    def unwrapped(
        self,
        case: str,
        tasks: int,
        seconds: float,
        period: float,
        port: int | None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """One case of the ``unwrapped`` workload in a fresh, monkey-patched interpreter:
        ``{"wall_s", "times", "lateness", "gevent", "patched"}`` (seconds)."""
        argv = [sys.executable, "-m", "benchmarks.gevent_unwrapped", f"--case={case}",
                f"--tasks={tasks}", f"--seconds={seconds}", f"--period={period}"]  # fmt: skip
        if port is not None:
            argv.append(f"--port={port}")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"gevent child ({case}) failed: {tail}")
        reply: dict[str, Any] = json.loads(done.stdout)
        return reply
