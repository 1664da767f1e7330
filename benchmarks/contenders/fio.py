"""fio: not a loop, the device's physical limit for the random-read workload.

The fio invocation belongs to ``benchmarks/kaio_fio.py`` (the KAIO engineer's module);
this contender only adapts its ``run_fio_random_reads(path, depth, seconds, engine=...)``
to the harness. Two rows: ``fio`` (the libaio engine, the KAIO loop's yardstick) and
``fio-io_uring`` (the io_uring loop's). Missing when fio is not on PATH, that module or
function is not there yet, or (``fio-io_uring``) this fio was built without io_uring.
"""

from __future__ import annotations

import functools
import importlib
import shutil
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar, cast

from benchmarks.contenders.base import FIO, Availability, Contender, Main
from benchmarks.machine import fio_version

T = TypeVar("T")

FioRandomReads = Callable[[str, int, float], "dict[str, Any] | None"]


class FioContender(Contender):
    family = "external"

    def __init__(self, engine: str = "libaio") -> None:
        self.engine = engine
        self.name = "fio" if engine == "libaio" else f"fio-{engine}"
        self.description = f"fio ({engine}, O_DIRECT): the device's physical limit"
        self.provides = frozenset({FIO})

    def _probe(self) -> Availability:
        exe = shutil.which("fio")
        if exe is None:
            return Availability(False, "fio is not on PATH")
        try:
            self.random_reads()
        except (ImportError, AttributeError) as exc:
            return Availability(False, f"benchmarks.kaio_fio is not usable yet ({exc})")
        if self.engine != "libaio":
            listed = subprocess.run(
                [exe, "--enghelp"], capture_output=True, text=True, timeout=30, check=False
            )
            engines = {line.strip() for line in listed.stdout.splitlines()}
            if self.engine not in engines:
                return Availability(False, f"this fio has no {self.engine} engine", fio_version())
        return Availability(True, version=fio_version())

    def random_reads(self) -> FioRandomReads:
        module = importlib.import_module("benchmarks.kaio_fio")
        run = module.run_fio_random_reads
        if self.engine == "libaio":
            return cast(FioRandomReads, run)
        return cast(FioRandomReads, functools.partial(run, engine=self.engine))

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        raise TypeError("fio is not a loop: workloads call FioContender.random_reads()")
