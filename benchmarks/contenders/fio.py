"""fio: not a loop, the device's physical limit for the random-read workload.

The fio invocation belongs to ``benchmarks/kaio_fio.py`` (the KAIO engineer's module);
this contender only adapts its ``run_fio_random_reads(path, depth, seconds)`` to the
harness. Missing when fio is not on PATH or that module or function is not there yet.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from typing import Any, TypeVar, cast

from benchmarks.contenders.base import FIO, Availability, Contender, Main
from benchmarks.machine import fio_version

T = TypeVar("T")

FioRandomReads = Callable[[str, int, float], "dict[str, Any] | None"]


class FioContender(Contender):
    family = "external"

    def __init__(self) -> None:
        self.name = "fio"
        self.description = "fio (libaio, O_DIRECT): the device's physical limit"
        self.provides = frozenset({FIO})

    def _probe(self) -> Availability:
        if shutil.which("fio") is None:
            return Availability(False, "fio is not on PATH")
        try:
            self.random_reads()
        except (ImportError, AttributeError) as exc:
            return Availability(False, f"benchmarks.kaio_fio is not usable yet ({exc})")
        return Availability(True, version=fio_version())

    @staticmethod
    def random_reads() -> FioRandomReads:
        module = importlib.import_module("benchmarks.kaio_fio")
        return cast(FioRandomReads, module.run_fio_random_reads)

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        raise TypeError("fio is not a loop: workloads call FioContender.random_reads()")
