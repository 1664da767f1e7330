"""``benchmarks.instructions``: every operation runs, on both loops, as its child does.

The counting itself needs valgrind (``python -m benchmarks.instructions``); this checks
that what it counts is real work that completes, on every supported Python.
"""

from __future__ import annotations

import sys

import pytest

from benchmarks import instructions

# sysletloop.call exists on the syslet loop only
CASES = [
    (op, loop)
    for op in instructions.OPERATIONS
    for loop in ("stock", "syslet")
    if not (loop == "stock" and op == "call")
]


@pytest.mark.parametrize(("operation", "loop"), CASES)
def test_every_operation_runs_on_both_loops(operation: str, loop: str) -> None:
    from sysletloop import _profile, _takeback

    before = _profile.SLOW_CALL, _takeback.SLOW_CALL
    instructions._child(operation, loop, 20)
    # the child scales the predictor to valgrind's clock; it must put it back
    assert before == (_profile.SLOW_CALL, _takeback.SLOW_CALL)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="migrate_steps needs 3.12+")
@pytest.mark.parametrize("operation", instructions.ITERATION_OPERATIONS)
def test_every_iteration_operation_runs_with_migrate_steps(operation: str) -> None:
    instructions._child(operation, "syslet+steps", 20)


def test_the_table_names_every_operation_and_its_ratio() -> None:
    rows = [
        {"operation": "future_rt", "stock": 100.0, "syslet": 120.0, "ratio": 1.2},
        {"operation": "call", "stock": None, "syslet": 80.0, "ratio": None},
    ]
    table = instructions._table("3.x", rows)
    assert "future_rt" in table and "1.20" in table
    assert "call" in table.splitlines()[-1] and "-" in table.splitlines()[-1]


@pytest.mark.parametrize("piece", instructions.PIECES)
def test_every_breakdown_variant_runs_and_puts_the_loop_back(piece: str) -> None:
    from sysletloop._threadstate import OwnerThreadState

    before = (OwnerThreadState.suspend, OwnerThreadState.resume)
    instructions._child("run_in_executor", f"syslet:{piece}", 20)
    assert (OwnerThreadState.suspend, OwnerThreadState.resume) == before


def test_an_unknown_piece_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'gil'"):
        instructions._child("run_in_executor", "syslet:gil", 2)


def test_the_breakdown_table_lists_each_piece() -> None:
    rows = [
        {"piece": "stock future_rt (the floor)", "instructions": 40000.0},
        {"piece": "run_in_executor, whole", "instructions": 55000.0},
        *({"piece": p, "instructions": 1000.0} for p in instructions.PIECES),
    ]
    table = instructions._breakdown_table("3.x", rows)
    assert all(p in table for p in instructions.PIECES) and "55,000" in table


@pytest.mark.parametrize("migrate_steps", [False, True])
def test_measure_asks_for_each_operation_on_both_loops(
    migrate_steps: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str, int, bool]] = []

    def fake(python: str, name: str, loop: str, n: int, *, main_only: bool = False) -> int:
        asked.append((name, loop, n, main_only))
        return n * (10 if loop == "stock" else 11)

    monkeypatch.setattr(instructions, "_instructions", fake)
    rows = instructions.measure(
        "python", ["callback", "idle_step"], 100, migrate_steps=migrate_steps
    )
    ours = "syslet+steps" if migrate_steps else "syslet"
    assert {(name, loop) for name, loop, _, _ in asked} == {
        (op, kind) for op in ("callback", "idle_step") for kind in ("stock", ours)
    }
    assert all(main_only is migrate_steps for _, _, _, main_only in asked)
    assert [round(row["ratio"], 2) for row in rows] == [1.1, 1.1]
