"""The runner's method: interleaving, warm-up, ratios within the run, missing and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.contenders import BASELINE
from benchmarks.runner import Settings, run, select
from benchmarks.schema import validate

from .fakes import FakeContender, FakeWorkload


def _contenders() -> list[FakeContender]:
    return [
        FakeContender(BASELINE, 2.0),
        FakeContender("fast", 1.0),
        FakeContender("absent", missing="absent is not installed"),
        FakeContender("flaky", 3.0, fail_on=3),  # warm-up, repeat 1, then fails in repeat 2
    ]


def test_repeats_are_interleaved_after_one_warmup_each(tmp_path: Path) -> None:
    w = FakeWorkload()
    run(
        Settings(profile="smoke", repeat=2, scratch=str(tmp_path)),
        contenders=_contenders(),
        workloads=[w],
    )
    warm = [BASELINE, "fast", "flaky"]
    assert w.order == [*warm, *warm, BASELINE, "fast", "flaky"]
    assert w.prepared == 1 and w.cleaned == 1


def test_document_records_missing_errors_ratios_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    doc = run(
        Settings(profile="smoke", repeat=2, scratch=str(tmp_path)),
        str(out),
        contenders=_contenders(),
        workloads=[FakeWorkload()],
    )
    assert validate(doc) == []
    assert json.loads((out / "results.json").read_text()) == doc
    assert doc["contenders"]["absent"] == {
        "status": "missing",
        "reason": "absent is not installed",
        "version": None,
        "family": "asyncio",
        "description": "fake absent",
    }
    results = doc["workloads"]["fake"]["results"]
    assert results["absent"]["status"] == "missing"
    assert results["absent"]["error"] == "absent is not installed"
    # flaky: repeat 1 kept, repeat 2 failed; the leaf of the exception group is shown
    assert results["flaky"]["status"] == "error"
    assert results["flaky"]["error"] == "RuntimeError: boom"
    t = results["flaky"]["cases"]["a"]["metrics"]["t"]
    assert t["values"] == [3.0, None] and t["n"] == 1
    # fast is 1.0 x repeat, baseline 2.0 x repeat: ratio 0.5 in each repeat
    fast = results["fast"]["cases"]["a"]["metrics"]["t"]
    assert fast["values"] == [1.0, 2.0]
    assert fast["median"] == 1.5 and fast["min"] == 1.0 and fast["max"] == 2.0
    assert fast["ratio"]["values"] == [0.5, 0.5]
    assert results[BASELINE]["cases"]["a"]["metrics"]["t"]["ratio"]["median"] == 1.0
    assert results["fast"]["cases"]["b"]["unsupported"] == "no such op"
    ref = doc["workloads"]["fake"]["reference"]["a"]["ref_s"]
    assert ref["values"] == [1.0, 2.0]
    assert doc["machine"]["cpu_count"] >= 1
    assert doc["settings"]["repeat"] == 2


def test_select_always_adds_the_baseline_and_checks_names() -> None:
    cs = _contenders()
    chosen, _ = select(Settings(loops=["fast"]), cs, [FakeWorkload()])
    assert [c.name for c in chosen] == [BASELINE, "fast"]
    with pytest.raises(ValueError, match="unknown contender"):
        select(Settings(loops=["nope"]), cs, [FakeWorkload()])
    with pytest.raises(ValueError, match="unknown workload"):
        select(Settings(workloads=["nope"]), cs, [FakeWorkload()])
    _, ws = select(Settings(workloads=["9"]), cs, [FakeWorkload()])
    assert [w.name for w in ws] == ["fake"]


def test_not_applicable_contenders_are_listed(tmp_path: Path) -> None:
    w = FakeWorkload()
    odd = FakeContender("kaio-like")
    odd.provides = frozenset({"file"})
    doc = run(
        Settings(profile="smoke", repeat=1, scratch=str(tmp_path), warmup=False),
        contenders=[FakeContender(BASELINE), odd],
        workloads=[w],
    )
    assert doc["workloads"]["fake"]["results"]["kaio-like"] == {
        "status": "not_applicable",
        "error": None,
        "cases": {},
    }
    assert w.order == [BASELINE]
    assert validate(doc) == []


def test_a_rotating_workload_turns_the_order_every_repeat(tmp_path: Path) -> None:
    w = FakeWorkload()
    w.rotate = True
    run(
        Settings(profile="smoke", repeat=3, scratch=str(tmp_path)),
        contenders=[FakeContender(BASELINE), FakeContender("b"), FakeContender("c")],
        workloads=[w],
    )
    warm = [BASELINE, "b", "c"]
    assert w.order == [*warm, BASELINE, "b", "c", "b", "c", BASELINE, "c", BASELINE, "b"]


class NeedsAPackage(FakeWorkload):
    def missing(self) -> str | None:
        return "somepackage is not installed"


def test_a_workload_that_cannot_run_here_reports_every_contender_skipped(tmp_path: Path) -> None:
    w = NeedsAPackage()
    doc = run(
        Settings(profile="smoke", repeat=2, scratch=str(tmp_path)),
        contenders=_contenders(),
        workloads=[w],
    )
    assert validate(doc) == []
    assert w.order == [] and w.prepared == 0
    results = doc["workloads"]["fake"]["results"]
    assert {n: r["status"] for n, r in results.items()} == {
        BASELINE: "missing",
        "fast": "missing",
        "absent": "missing",
        "flaky": "missing",
    }
    assert results["fast"]["error"] == "somepackage is not installed"
    assert results["absent"]["error"] == "absent is not installed"
    table = report.terminal_table(doc)
    assert "skipped: fast: somepackage is not installed" in table
    assert "skipped: absent" not in table  # missing itself, listed once under "missing:"
