"""Fake contenders and workloads: the runner's logic tested without timing anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.contenders.base import Availability, Contender, Main, T
from benchmarks.workloads.base import CaseResult, Cases, Metric, Profile, Workload


class FakeContender(Contender):
    family = "asyncio"

    def __init__(
        self,
        name: str,
        value: float = 1.0,
        *,
        missing: str | None = None,
        fail_on: int | None = None,
    ) -> None:
        self.name = name
        self.description = f"fake {name}"
        self.provides = frozenset({"call"})
        self.value = value
        self.missing = missing
        self.fail_on = fail_on
        self.calls = 0

    def _probe(self) -> Availability:
        if self.missing:
            return Availability(False, self.missing)
        return Availability(True, version="0")

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        raise AssertionError("fake workloads never run a loop")


class FakeWorkload(Workload[list[str]]):
    """Records the order of measurements; each repeat's value is contender.value x repeat."""

    name = "fake"
    number = 9
    title = "Fake"
    claim = "the harness works"
    paper = "§0"
    needs = frozenset({"call"})
    metrics = (Metric("t", "s", "lower", "a time"), Metric("n", "ops", "higher", "a count"))
    headline = (("a", "t"),)

    def __init__(self) -> None:
        self.order: list[str] = []
        self.prepared = 0
        self.cleaned = 0
        self.rep = 0

    def params(self, profile: Profile) -> dict[str, Any]:
        return {"profile": profile}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> list[str]:
        self.prepared += 1
        return self.order

    def cleanup(self, state: list[str]) -> None:
        self.cleaned += 1

    def reference(self, state: list[str], params: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        self.rep += 1
        return {"a": {"ref_s": float(self.rep)}}

    def measure(self, contender: Contender, state: list[str], params: Mapping[str, Any]) -> Cases:
        assert isinstance(contender, FakeContender)
        contender.calls += 1
        state.append(contender.name)
        if contender.fail_on is not None and contender.calls == contender.fail_on:
            raise ExceptionGroup("group", [RuntimeError("boom")])
        v = contender.value * self.rep if self.rep else contender.value
        return {
            "a": CaseResult(metrics={"t": v, "n": 10 * v}, samples={"x": [1.0, 2.0]}),
            "b": CaseResult(unsupported="no such op"),
        }
