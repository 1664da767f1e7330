from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from benchmarks.contenders import BASELINE
from benchmarks.runner import Settings, run
from benchmarks.schema import SCHEMA_VERSION, validate

from .fakes import FakeContender, FakeWorkload


@pytest.fixture
def doc(tmp_path: Path) -> dict[str, Any]:
    return run(
        Settings(profile="smoke", repeat=2, scratch=str(tmp_path)),
        contenders=[FakeContender(BASELINE, 2.0), FakeContender("b", missing="not here")],
        workloads=[FakeWorkload()],
    )


def test_valid_document(doc: dict[str, Any]) -> None:
    assert doc["schema_version"] == SCHEMA_VERSION
    assert validate(doc) == []


def _broken(doc: dict[str, Any], path: list[str], value: Any) -> list[str]:
    bad = copy.deepcopy(doc)
    target = bad
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return validate(bad)


def test_problems_are_found(doc: dict[str, Any]) -> None:
    metric = ["workloads", "fake", "results", BASELINE, "cases", "a", "metrics", "t"]
    assert _broken(doc, ["machine"], KeyError) == ["machine: missing or wrong type"]
    assert _broken(doc, ["schema_version"], 99)
    assert _broken(doc, ["contenders", "b", "reason"], None)
    assert _broken(doc, [*metric, "median"], 1e9)
    assert _broken(doc, [*metric, "n"], 7)
    assert _broken(doc, ["workloads", "fake", "results", "b", "status"], "weird")
    assert _broken(doc, ["workloads", "fake", "results", "b"], KeyError)
    assert _broken(doc, ["workloads", "fake", "metrics", "t", "better"], "up")
    assert validate([]) == ["document: not an object"]
