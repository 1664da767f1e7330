"""How many more threads this process may start: the limits the kernel will enforce.

A syslet loop needs one thread per blocked call, plus its own few (watchdog, starter,
spare, and a worker owning the loop while the home thread is blocked). Where the process
may start only a few threads, ``Thread.start`` fails (``EAGAIN``, "can't start new
thread") and the loop must not have promised the loop to such a thread. This module
reads what bounds the thread count, where it can be read, and turns it into a cap on
blocked calls (``cap_for``). It holds no state and starts no thread; the loop calls it
when it starts its threads and when a start fails (reading /proc and /sys costs tens of
microseconds, a scan of /proc for RLIMIT_NPROC a few milliseconds: never per call).

The bounds (each gives "how many more tasks may start"; the smallest wins):
    RLIMIT_NPROC   per real user, counting every thread of every process of that user;
                   not enforced for root (CAP_SYS_RESOURCE/CAP_SYS_ADMIN), so skipped
                   there. The user's current count is a scan of /proc/*/status.
    pids cgroup    ``pids.max`` minus ``pids.current`` of this process's cgroup and of
                   every ancestor (a parent's limit binds its children): cgroup v1 (the
                   ``pids`` line of /proc/self/cgroup, under /sys/fs/cgroup/pids) and v2
                   (the ``0::`` line, under /sys/fs/cgroup or /sys/fs/cgroup/unified).
    threads-max    /proc/sys/kernel/threads-max minus every task on the machine (the
                   fourth field of /proc/loadavg).
Memory limits (a cgroup's memory.max, RLIMIT_AS) also make a start fail, with the same
error; they are not translated into a thread count (a thread's cost depends on its stack
and on what it touches): the loop learns about them only from a failed start.

Rejected: ``os.sysconf("SC_THREAD_THREADS_MAX")`` (-1 on glibc: no fixed limit); counting
our own threads only (the limits are shared with the application and, for cgroups and
RLIMIT_NPROC, with other processes).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThreadLimit", "cap_for", "read_thread_limit"]

# Threads the application may want to start itself, besides the loop's: we leave this
# share of what is left (at least one thread) unused by blocked calls. One eighth is a
# judgement call: enough for a logging or metrics thread in a 12-task container, not so
# much that a large limit idles hundreds of threads' worth.
HEADROOM_SHARE = 8
# Threads a loop starts besides one per blocked call: the watchdog (a C pthread or a
# Python thread), the starter and the spare. The thread that owns the loop is the home
# thread, or, while the home thread holds a blocked call, a worker in place of the one
# that call would otherwise take: B blocked calls need B + 3 threads besides the home.
MACHINERY_THREADS = 3


@dataclass(frozen=True, slots=True)
class ThreadLimit:
    """The tightest bound found: ``available`` more tasks may start, per ``source``."""

    available: int
    source: str  # e.g. "cgroup pids.max=12 (pids.current=12) at /sys/fs/cgroup/pids/x"

    def __str__(self) -> str:
        return f"{self.available} more thread(s) may start ({self.source})"


def read_thread_limit() -> ThreadLimit | None:
    """The tightest readable bound on starting threads now, or ``None`` if none is
    readable or all are unlimited. Never raises (a bound that cannot be read is
    skipped)."""
    found: list[ThreadLimit] = []
    for reader in (_cgroup_limits, _nproc_limit, _threads_max_limit):
        try:
            found.extend(reader())
        except (OSError, ValueError, IndexError):
            continue
    if not found:
        return None
    return min(found, key=lambda limit: limit.available)


def cap_for(limit: ThreadLimit | None, *, configured: int, blocked_now: int,
            machinery_to_start: int) -> int:
    """The cap on blocked calls that keeps the loop under ``limit``.

    ``blocked_now`` calls already hold a thread each (they are inside the count the
    limit was read against); ``machinery_to_start`` of the loop's own threads do not
    exist yet. Of what is left, ``1/HEADROOM_SHARE`` (at least one) stays free for the
    application. Never below 1 (a cap of 0 would hold every call forever; the loop's
    short-of-threads rule deals with a process that cannot start even one) and never
    above ``configured``.
    """
    if limit is None:
        return configured
    left = limit.available - machinery_to_start
    headroom = max(1, limit.available // HEADROOM_SHARE)
    return max(1, min(configured, blocked_now + left - headroom))


# ---------------------------------------------------------------- the readers


def _read(path: Path) -> str:
    return path.read_text().strip()


def _cgroup_limits() -> list[ThreadLimit]:
    out: list[ThreadLimit] = []
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        hierarchy, controllers, rel = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            roots = [Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")]
        elif "pids" in controllers.split(","):
            roots = [Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup") / controllers]
        else:
            continue
        for root in roots:
            if not root.is_dir():
                continue
            path = root / rel.lstrip("/")
            while True:  # this cgroup and each ancestor, up to (not including) the root
                max_file = path / "pids.max"
                if max_file.exists():
                    text = _read(max_file)
                    if text != "max":
                        current = int(_read(path / "pids.current"))
                        out.append(ThreadLimit(
                            max(0, int(text) - current),
                            f"cgroup pids.max={text} (pids.current={current}) at {path}",
                        ))
                if path == root or path.parent == path:
                    break
                path = path.parent
            break
    return out


def _nproc_limit() -> list[ThreadLimit]:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY or os.geteuid() == 0:
        return []
    uid = os.getuid()
    used = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        fields = dict(
            line.split(":", 1) for line in status.splitlines() if ":" in line
        )
        if int(fields.get("Uid", "-1 0").split()[0]) == uid:
            used += int(fields.get("Threads", "1"))
    return [ThreadLimit(max(0, soft - used),
                        f"RLIMIT_NPROC={soft} (uid {uid} runs {used} threads)")]


def _threads_max_limit() -> list[ThreadLimit]:
    limit = int(_read(Path("/proc/sys/kernel/threads-max")))
    tasks = int(_read(Path("/proc/loadavg")).split()[3].split("/")[1])
    return [ThreadLimit(max(0, limit - tasks),
                        f"kernel.threads-max={limit} ({tasks} tasks on the machine)")]
