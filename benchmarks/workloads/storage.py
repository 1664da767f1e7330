"""Where a file workload's files live: the storages it can be asked to run on.

``disk``
    A real file system under the run's scratch directory, read with ``O_DIRECT``: every
    read reaches the device (on the VM: the host's cache, about 80 us per 4 KiB).
``cache``
    The same kind of file, read through the page cache after it was read once: a read is
    a copy, microseconds, and never blocks (what most file reads on a server are).
``latencyfs``
    The same file, read through :mod:`benchmarks.latencyfs` mounted over its directory:
    every read (and, for the metadata workload, every lookup, open and stat) is answered
    a set latency after it arrives, as on a network file system. Where FUSE cannot be
    had, the workload's latencyfs cases say "unsupported" with the reason, beside the
    other storages' numbers.

A workload mounts latencyfs in ``prepare`` and unmounts it in ``cleanup`` (the runner
calls ``cleanup`` in a ``finally``, so an interrupted run unmounts too): one mount serves
every contender and repeat of the workload.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmarks.latencyfs import Latency, LatencyFsUnavailable, Mount, mounted

Storage = Literal["disk", "cache", "latencyfs"]
STORAGES: tuple[Storage, ...] = ("disk", "cache", "latencyfs")


@dataclass
class LatencyStorage:
    """latencyfs mounted over one directory for a workload's run, or why it is not."""

    source: str
    latency: Latency
    mount: Mount | None = None
    missing: str | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @classmethod
    def open(cls, source: str, latency: Latency) -> LatencyStorage:
        storage = cls(source, latency)
        try:
            storage.mount = storage._stack.enter_context(mounted(source, latency))
        except LatencyFsUnavailable as exc:
            storage.missing = f"latencyfs is missing here: {exc.reason}"
        return storage

    def path(self, name: str) -> str:
        """``name`` (relative to the source) as seen through the mount."""
        if self.mount is None:
            raise RuntimeError(self.missing or "latencyfs is not mounted")
        return os.path.join(self.mount.path, name)

    @contextlib.contextmanager
    def window(self, into: dict[str, Any]) -> Iterator[None]:
        """Record into ``into`` what the server did during the block: its CPU share
        (CPU seconds per second; 1.0 is a core), requests served and how late its
        replies left past their deadlines on average (us): the numbers that say whether
        the file system, not the contender, was the limit."""
        assert self.mount is not None
        fs = self.mount
        cpu0, stats0, t0 = fs.cpu_seconds(), fs.stats(), time.perf_counter()
        yield
        wall = time.perf_counter() - t0
        cpu1, stats1 = fs.cpu_seconds(), fs.stats()
        sent = int(stats1["sent"]) - int(stats0["sent"])
        late = int(stats1["late_ns_sum"]) - int(stats0["late_ns_sum"])
        into["latencyfs"] = {
            "server_cpu_share": (cpu1 - cpu0) / wall if wall > 0 else None,
            "replies": sent,
            "late_mean_us": late / sent / 1000 if sent else None,
            "reads": int(stats1["reads"]) - int(stats0["reads"]),
        }

    def close(self) -> None:
        self._stack.close()
        self.mount = None
