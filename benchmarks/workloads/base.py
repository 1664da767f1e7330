"""What a workload is, and the pieces of measurement every workload shares.

A workload measures *one repeat of one contender* and returns, per case (a concurrency
level, an operation, cold or warm cache...), its metrics as plain numbers, optionally raw
samples for plots and extra facts (the loop's own counters). It never aggregates: the
runner owns warm-up, repeats, interleaving and ratios, so every workload gets them alike.

Profiles scale a workload: ``smoke`` (a fraction of a second, for the test suite),
``quick`` (the README's command: a few minutes in all on 2 cores), ``full``.
"""

from __future__ import annotations

import itertools
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from benchmarks.contenders.base import Api, Contender

Profile = Literal["smoke", "quick", "full"]
PROFILES: tuple[Profile, ...] = ("smoke", "quick", "full")
Better = Literal["lower", "higher", "none"]

S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True)
class Metric:
    """One number a workload reports per case. ``better`` orients ratios and tables."""

    name: str
    unit: str
    better: Better
    description: str


@dataclass
class CaseResult:
    """One case of one repeat of one contender."""

    metrics: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # A case the contender cannot do (raised NotSupported): no metrics, this reason.
    unsupported: str | None = None


Cases = dict[str, CaseResult]


class Workload(ABC, Generic[S]):
    """A workload; ``S`` is what ``prepare`` builds (files...) and ``measure`` reads."""

    name: str  # short, stable, used on the command line and as the JSON key
    number: int  # the numbering (1-8)
    title: str
    claim: str  # the paper's claim under test, one sentence
    paper: str  # where in the paper ("§1.1")
    needs: frozenset[str] = frozenset()  # capabilities a contender needs (any of ``needs_any``)
    needs_any: frozenset[str] = frozenset()
    metrics: tuple[Metric, ...] = ()
    # (case, metric) pairs shown in the terminal table; the report shows every pair.
    headline: tuple[tuple[str, str], ...] = ()
    # Run each repeat of each contender in a fresh interpreter (RSS/thread counts).
    isolated: bool = False
    # Rotate the contenders' order every repeat (A B C, B C A, ...): for workloads whose
    # contenders are long and whose position in a repeat may matter (servers under load).
    rotate: bool = False
    # The profiles that run this workload when the run names no workloads; named with
    # ``--workloads``, it runs in any profile (with that profile's parameters).
    profiles: frozenset[Profile] = frozenset(PROFILES)
    # Contenders this workload applies to that run it only when the run names them
    # (``--loops``): a row worth having on demand that would lengthen every run it is in.
    on_demand: frozenset[str] = frozenset()

    def repeats(self, profile: Profile, default: int) -> int:
        """How many interleaved repeats (paired rounds) this workload runs, when the run's
        ``--repeat`` was not given: ``default`` (the profile's), unless the workload's
        ratios need more rounds than that to be told from the noise."""
        return default

    def applies_to(self, contender: Contender) -> bool:
        caps = contender.provides
        return self.needs <= caps and (not self.needs_any or bool(self.needs_any & caps))

    def runs_on(self, contender: Contender, named: Sequence[str] | None) -> bool:
        """Whether a run whose ``--loops`` are ``named`` (None: not given) measures this
        contender here: it applies, and if it is on demand, it was named."""
        if not self.applies_to(contender):
            return False
        return contender.name not in self.on_demand or contender.name in (named or ())

    def missing(self) -> str | None:
        """Why the workload cannot run here at all (a package it needs is not installed),
        or None. Every contender it applies to is then reported missing, with this reason."""
        return None

    @abstractmethod
    def params(self, profile: Profile) -> dict[str, Any]:
        """JSON-ready parameters for a profile (recorded in results.json)."""

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters for the warm-up run (discarded): by default the same."""
        return dict(params)

    @abstractmethod
    def prepare(self, scratch: str, params: Mapping[str, Any]) -> S:
        """Build what the workload needs (files under ``scratch``) once per run."""

    def cleanup(self, state: S) -> None:
        """Undo ``prepare`` (delete big files). Scratch itself is removed by the runner."""

    def reference(self, state: S, params: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """Per-repeat reference numbers measured without any loop, per case (optional)."""
        return {}

    @abstractmethod
    def measure(self, contender: Contender, state: S, params: Mapping[str, Any]) -> Cases:
        """One repeat of one contender: every case."""

    def complete(self, cases: Cases, reference: Mapping[str, Mapping[str, float]]) -> None:
        """Derive metrics that need the same repeat's reference numbers (in place)."""

    def labels(self, case: str, medians: Mapping[str, float]) -> dict[str, str]:
        """Verdicts derived from a case's median metrics (e.g. "blocks"), if any."""
        return {}

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def describe(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "claim": self.claim,
            "paper": self.paper,
            "metrics": {
                m.name: {"unit": m.unit, "better": m.better, "description": m.description}
                for m in self.metrics
            },
            "headline": [list(h) for h in self.headline],
        }


# ---------------------------------------------------------------------------------------
# Shared measurement pieces
# ---------------------------------------------------------------------------------------


def run_main(
    contender: Contender,
    main: Callable[[Api], Awaitable[T]],
    *,
    max_threads: int | None = None,
    timeout: float = 300.0,
) -> T:
    """Run ``main`` on the contender with a safety timeout (a hang is an error, not a halt)."""

    async def coro(api: Api) -> T:
        return await main(api)

    return contender.run(coro, max_threads=max_threads, timeout=timeout)


class Ticker:
    """A task that sleeps ``period`` in a loop and records how late each wake-up was.

    Lateness is the loop's timer lag: how long the loop could not run a ready timer. With
    a loop that never stalls it is the timer's resolution plus a scheduling hop; with a
    loop stalled by a 50 ms blocking call it is ~50 ms.
    """

    def __init__(self, api: Api, period: float = 0.001) -> None:
        self.api = api
        self.period = period
        self.stop = False
        self.start = 0.0
        self.times: list[float] = []  # seconds since start, at each wake-up
        self.lateness: list[float] = []  # seconds

    async def run(self) -> None:
        clock = self.api.clock
        self.start = clock()
        while not self.stop:
            before = clock()
            await self.api.sleep(self.period)
            after = clock()
            self.times.append(after - self.start)
            self.lateness.append(max(0.0, after - before - self.period))

    def max_gap_between(self, t0: float, t1: float) -> float:
        """The longest the loop went without a tick inside [t0, t1] (absolute clock)."""
        marks = [t0, *(self.start + t for t in self.times if t0 < self.start + t < t1), t1]
        return max(b - a for a, b in itertools.pairwise(marks))


class FirstStep:
    """Await a coroutine, timing its first step: how long the caller was held before the
    operation suspended (a submission's cost as the submitting task sees it).

    For KAIO that step is ``io_submit``; for a thread pool, queueing the work item; for
    sysletloop, queueing the call (it then runs inline at the loop's next iteration); for
    an eager call, the call itself until it completes or blocks past the threshold.
    """

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self.first_step = 0.0
        self.total = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        t0 = time.perf_counter()
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            self.first_step = self.total = time.perf_counter() - t0
            return done.value
        self.first_step = time.perf_counter() - t0
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    self.total = time.perf_counter() - t0
                    return done.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as done:
                    self.total = time.perf_counter() - t0
                    return done.value


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------

MiB = 1 << 20


def make_file(path: str, size: int, *, block: int = MiB) -> None:
    """A file of ``size`` bytes of incompressible data (a random block, repeated), synced."""
    pattern = os.urandom(block)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < size:
            chunk = pattern[: min(block, size - written)]
            written += os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def evict(path: str) -> None:
    """Drop the file's pages from the page cache (``POSIX_FADV_DONTNEED`` after a sync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path: str, piece: int = MiB) -> None:
    """Read the whole file once so that it sits in the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, piece):
            pass
    finally:
        os.close(fd)
