"""What the served workloads share (``fastapi``, ``net_throughput``): the HTTP load
generator, a server in a child process, and the CPU a process spent.

Glossary
--------
load generator
    wrk when it is on PATH, else :mod:`benchmarks.http_load` (stdlib asyncio: far more CPU
    per request than wrk, so it caps what a small machine can measure). A workload records
    the one used, and why (:func:`choose_generator`). wrk takes whole seconds, so a window
    under one second runs for one.
server
    A child process listening on 127.0.0.1 (:class:`ServerProcess`): started, probed until
    it answers, stopped with SIGTERM (then SIGKILL after 15 s). Its output goes to a log
    whose last line is quoted when it fails to start.
CPU share
    CPU seconds (user + system) a process spent over a window, divided by the window:
    1.0 is one core kept busy. Read from ``/proc/PID/stat`` for a running process, from
    ``getrusage(RUSAGE_CHILDREN)`` for children that ran and were reaped inside the window.

Threads: everything here runs in the harness's main thread; the load is in child processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0  # seconds for a server to answer its first probe (a cold import)


# ---------------------------------------------------------------------------------------
# The HTTP load generator
# ---------------------------------------------------------------------------------------


def find_wrk(install: bool) -> str | None:
    """wrk's path; with ``install``, ``apt-get install wrk`` is tried first when root."""
    wrk = shutil.which("wrk")
    if wrk is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(argv, env=env, capture_output=True, check=False)
        wrk = shutil.which("wrk")
    return wrk


def choose_generator(requested: str, install: bool) -> tuple[str | None, str]:
    """(wrk's path or None for the stdlib generator, the note a case records).

    ``requested``: ``http_load`` (the stdlib one, always), ``wrk`` (wrk or an error),
    anything else (``auto``): wrk if it is there.
    """
    if requested == "http_load":
        return None, "benchmarks.http_load (asked for)"
    wrk = find_wrk(install=install)
    if wrk is None and requested == "wrk":
        raise RuntimeError("wrk is not on PATH (apt-get install wrk)")
    return wrk, "wrk" if wrk else "benchmarks.http_load (wrk is not on PATH)"


def generator_name(wrk: str | None) -> str:
    return "wrk" if wrk else "benchmarks.http_load"


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(match[1]) * _WRK_UNITS[match[2]]


def _wrk_field(pattern: str, out: str) -> str:
    match = re.search(pattern, out, re.M)
    if match is None:
        raise RuntimeError(f"wrk output has no {pattern!r}:\n{out}")
    return match[1]


def load(
    wrk: str | None, url: str, conns: int, seconds: float, rate: float | None = None
) -> dict[str, float]:
    """Closed-loop load on ``url``: req/s, latency p50/p99 (ms), errors. A server that
    stops answering is a TimeoutExpired a minute after the window, not a hang. With
    ``rate``, an open loop at that many requests per second instead, always by
    :mod:`benchmarks.http_load` (wrk has no constant-rate mode; wrk2 is not packaged)."""
    if wrk is None or rate is not None:
        argv = [sys.executable, "-m", "benchmarks.http_load", url,
                f"--conns={conns}", f"--seconds={seconds}"]  # fmt: skip
        if rate is not None:
            argv.append(f"--rate={rate}")
        done = subprocess.run(
            argv, capture_output=True, text=True, check=True, cwd=ROOT, timeout=seconds + 60
        )
        result: dict[str, float] = json.loads(done.stdout)
        return result
    threads = min(conns, max(1, (os.cpu_count() or 2)))
    duration = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds
    argv = [wrk, f"-t{threads}", f"-c{conns}", duration, "--timeout=10s", "--latency", url]
    ran = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    out = ran.stdout
    errors = 0.0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += float(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(float(g) for g in m.groups())
    return {
        "rps": float(_wrk_field(r"Requests/sec:\s+([\d.]+)", out)),
        "p50_ms": _wrk_ms(_wrk_field(r"^\s+50%\s+(\S+)", out)),
        "p99_ms": _wrk_ms(_wrk_field(r"^\s+99%\s+(\S+)", out)),
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------
# CPU spent
# ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        # the command name (field 2) may hold spaces: split after its closing parenthesis
        fields = f.read().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14 and 15


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants now (a server's worker processes), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        tree.append(p := todo.pop())
        todo += children.get(p, [])
    return tree


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes so far (one that has exited: 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(pid)
    return total


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every child reaped so far (take the difference)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------
# A server in a child process
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """``argv`` in a child process (cwd: the checkout, which is put on PYTHONPATH), up
    once ``probe()`` stops raising OSError; ``stop()`` ends it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        probe: Callable[[], object],
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                list(argv), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                probe()
                return
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name}: did not start: {self.log_tail()}") from exc
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        """The server log's last line (an error's last line is its message)."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def case_overrides(
    known: Sequence[str],
    *,
    seconds: float | None,
    warmup_s: float | None,
    cases: Sequence[str] | None,
    generator: str | None,
    generators: tuple[str | None, ...] | None = (None, "wrk", "http_load"),
) -> dict[str, Any]:
    """A served workload's constructor arguments, checked (cases it knows, a generator it
    can use; ``generators=None``: any) and kept where given, for its ``params``."""
    unknown = set(cases or ()) - set(known)
    if unknown:
        raise ValueError(f"unknown case(s): {', '.join(sorted(unknown))}")
    if generators is not None and generator not in generators:
        raise ValueError(f"generator {generator!r}: wrk or http_load")
    given = {
        "seconds": seconds,
        "warmup_s": warmup_s,
        "cases": list(cases) if cases else None,
        "generator": generator,
    }
    return {k: v for k, v in given.items() if v is not None}
